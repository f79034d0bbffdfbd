"""The privacy centre (owners and admins): consent, requests, retention, sub-processors,
security events and incidents on one page, each card linking to its own page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from privacy import retention, security, selectors, subprocessors
from privacy.registry import entry_for
from tenants.models import Role
from tenants.permissions import tenant_view

RECENT_EVENTS = 8


@require_GET
@tenant_view(Role.ADMIN)
def centre(request):
    tenant = request.tenant
    incidents = security.incidents()
    return render(
        request,
        "privacy/centre.html",
        {
            "consent_rows": selectors.consent_numbers(),
            "chart": selectors.consent_chart(zone=tenant.zone),
            "policies": labelled_policies(tenant),
            "reports": retention.last_reports(limit=5),
            "subprocessors": subprocessors.subprocessors(),
            "events": list(
                security.events(security.EventFilter(), zone=tenant.zone)[:RECENT_EVENTS]
            ),
            "open_incidents": [i for i in incidents if i.status != i.Status.CLOSED],
            "is_owner": request.membership.is_owner,
            "backup_days": settings.BACKUP_RETENTION_DAYS,
            "now": timezone.now(),
        },
    )


@require_GET
@tenant_view(Role.ADMIN)
def subprocessors_text(request):
    """The sub-processor list as a text file the business can publish."""
    body = subprocessors.as_text(
        business_name=request.tenant.name, processors=subprocessors.subprocessors()
    )
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="sub-processors.txt"'
    return response


def labelled_policies(tenant) -> list[dict]:
    return [
        {"policy": policy, "label": policy_label(str(policy.category))}
        for policy in retention.policies(tenant=tenant)
    ]


def model_name(label: str) -> str:
    entry = entry_for(label)
    return str(entry.model._meta.verbose_name_plural) if entry else label


def describe_report(report) -> list[dict]:
    """A purge report's counts in words: [{"category": …, "rows": [(model, n), …]}]."""
    return [
        {
            "category": policy_label(category),
            "rows": [(model_name(label), n) for label, n in counts.items() if n],
        }
        for category, counts in report.counts.items()
    ]


def policy_label(category: str) -> str:
    return {
        "messages": _("Messages, after the conversation is resolved"),
        "webhook_payloads": _("Raw webhook payloads"),
        "access_log": _("Access log and security events"),
        "export_files": _("Export and import files"),
    }.get(category, category)
