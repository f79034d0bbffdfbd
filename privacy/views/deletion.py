"""Deleting the business (owners): export everything (prepared by Celery, then downloaded),
request deletion (confirmed by typing the address), and, during the grace period, restore it
or still export. While deletion is scheduled every other page of the business answers with
`deletion_scheduled`."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from privacy import access_log, security, tenant_deletion
from privacy.models import AccessLogEntry, BusinessExport
from tenants.models import Role
from tenants.permissions import tenant_view


class DeletionForm(forms.Form):
    confirm_slug = forms.CharField(label=gettext_lazy("Type the business's address to confirm"))


def deletion_scheduled(request):
    """What every page of a business scheduled for deletion shows (423 Locked)."""
    is_owner = request.membership.is_owner
    return render(
        request,
        "privacy/deletion_scheduled.html",
        {
            "is_owner": is_owner,
            "backup_days": settings.BACKUP_RETENTION_DAYS,
            "business_export": tenant_deletion.latest_export() if is_owner else None,
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
            "business_export": tenant_deletion.latest_export(),
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


@require_POST
@tenant_view(Role.OWNER, allow_locked=True)
def export_prepare(request):
    """Queue an export of everything; while one is being prepared, a second click waits for it
    (one that has stalled is queued again)."""
    try:
        _export, queued = tenant_deletion.request_export(
            tenant=request.tenant, by=request.membership
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if queued:
            messages.success(
                request, _("The export is being prepared; this page offers it when it is ready.")
            )
        else:
            messages.info(request, _("An export is already being prepared."))
    return redirect("privacy:deletion", tenant_slug=request.tenant.slug)


@require_GET
@tenant_view(Role.OWNER, allow_locked=True)
def export_status(request):
    """The export's part of the page, polled by HTMX while the export is being prepared."""
    return render(
        request,
        "privacy/_business_export.html",
        {"business_export": tenant_deletion.latest_export()},
    )


@require_GET
@tenant_view(Role.OWNER, allow_locked=True)
def export_download(request, business_export_id: int):
    """The zip of every row of the business (one JSON-lines file per table), until its link
    expires; then 410, and its file is deleted. Every download is logged."""
    export = get_object_or_404(BusinessExport, pk=business_export_id)
    if export.status != BusinessExport.Status.READY:
        raise Http404(_("This export is not ready."))
    if not export.is_available():
        tenant_deletion.withdraw_file(export)
        return _export_gone(request, export)
    try:
        handle = export.file.open("rb")
    except (FileNotFoundError, OSError):
        return _export_gone(request, export)
    access_log.record_access(
        request=request,
        action=AccessLogEntry.Action.EXPORTED_BUSINESS,
        obj=export,
        detail=_("export of the whole business: %(rows)s rows") % {"rows": export.rows},
    )
    security.note_export(
        rows=export.rows,
        what=_("export of the whole business"),
        user=request.user,
        ip_address=access_log.client_ip(request),
    )
    return FileResponse(handle, as_attachment=True, filename=f"{request.tenant.slug}-export.zip")


def _export_gone(request, export):
    return render(
        request, "privacy/business_export_expired.html", {"business_export": export}, status=410
    )
