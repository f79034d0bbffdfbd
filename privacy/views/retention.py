"""Retention (admins): the policies, the last purge reports, and what the next purge would
remove (a dry run: counted, nothing deleted)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from privacy import retention
from privacy.views.centre import describe_report, labelled_policies, model_name, policy_label
from tenants.models import Role
from tenants.permissions import tenant_view


@tenant_view(Role.ADMIN)
def retention_page(request):
    if request.method == "POST":
        retention.record_dry_run()
        messages.success(
            request, _("Counted what the next purge would remove; nothing was deleted.")
        )
        return redirect("privacy:retention", tenant_slug=request.tenant.slug)
    preview = retention.preview()
    return render(
        request,
        "privacy/retention.html",
        {
            "policies": labelled_policies(request.tenant),
            "preview": [
                {
                    "category": policy_label(category),
                    "rows": [
                        {"label": model_name(label), "count": n} for label, n in counts.items()
                    ],
                    "total": sum(counts.values()),
                }
                for category, counts in preview.items()
            ],
            "reports": [
                (report, describe_report(report)) for report in retention.last_reports(limit=20)
            ],
        },
    )
