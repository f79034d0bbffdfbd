"""Deleting the business (owners): export everything, request deletion (confirmed by typing
the address), and, during the grace period, restore it. While deletion is scheduled every
other page of the business answers with `deletion_scheduled`."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from privacy import access_log, security, tenant_deletion
from privacy.models import AccessLogEntry
from tenants.models import Role
from tenants.permissions import tenant_view


class DeletionForm(forms.Form):
    confirm_slug = forms.CharField(label=gettext_lazy("Type the business's address to confirm"))


def deletion_scheduled(request):
    """What every page of a business scheduled for deletion shows (423 Locked)."""
    return render(
        request,
        "privacy/deletion_scheduled.html",
        {
            "is_owner": request.membership.is_owner,
            "backup_days": settings.BACKUP_RETENTION_DAYS,
        },
        status=423,
    )


@tenant_view(Role.OWNER, allow_locked=True)
def deletion_page(request):
    if request.tenant.is_locked:
        return deletion_scheduled(request)
    form = DeletionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant_deletion.request_deletion(
                tenant=request.tenant,
                by=request.membership,
                confirm_slug=form.cleaned_data["confirm_slug"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc.messages)
        else:
            return redirect("privacy:deletion", tenant_slug=request.tenant.slug)
    return render(
        request,
        "privacy/deletion.html",
        {
            "form": form,
            "grace_days": settings.TENANT_DELETION_GRACE_DAYS,
            "backup_days": settings.BACKUP_RETENTION_DAYS,
        },
        status=400 if form.errors else 200,
    )


@require_POST
@tenant_view(Role.OWNER, allow_locked=True)
def deletion_restore(request):
    try:
        tenant_deletion.restore(tenant=request.tenant, by=request.membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("privacy:deletion", tenant_slug=request.tenant.slug)
    messages.success(
        request,
        _("The deletion is cancelled; %(name)s works again.") % {"name": request.tenant.name},
    )
    return redirect("tenant:home", tenant_slug=request.tenant.slug)


@require_GET
@tenant_view(Role.OWNER, allow_locked=True)
def export_everything(request):
    """Every row of the business as a zip (one JSON-lines file per table), as a download."""
    archive, rows = tenant_deletion.export_everything(tenant=request.tenant)
    access_log.record_access(
        request=request,
        action=AccessLogEntry.Action.EXPORTED_BUSINESS,
        detail=_("export of the whole business: %(rows)s rows") % {"rows": rows},
    )
    security.note_export(
        rows=rows,
        what=_("export of the whole business"),
        user=request.user,
        ip_address=access_log.client_ip(request),
    )
    return FileResponse(archive, as_attachment=True, filename=f"{request.tenant.slug}-export.zip")
