"""Contact import pages: upload, mapping with preview and consent, progress, error report.

Owners and admins import (an import attests consent for many people at once). The work is in
crm.services.imports; the import itself runs in Celery.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.forms_imports import MappingForm, UploadForm
from crm.models import ContactImport
from crm.services import imports as services
from tenants.models import Role
from tenants.permissions import tenant_view


def _to_import(request, contact_import):
    return redirect(
        "crm:import_detail",
        tenant_slug=request.tenant.slug,
        contact_import_id=contact_import.pk,
    )


def _declared_size(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@tenant_view(Role.ADMIN)
def imports(request):
    form = UploadForm()
    if request.method == "POST" and _declared_size(request) > services.max_bytes() + 65536:
        # Refused before the body is read: the size the browser announced is already too much.
        form.add_error("file", _("The file is too large to import."))
    elif request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                contact_import = services.create_import(
                    uploaded_file=form.cleaned_data["file"], user=request.user
                )
            except services.ImportFileError as exc:
                form.add_error("file", exc.messages)
            else:
                return _to_import(request, contact_import)
    return render(
        request,
        "crm/imports/index.html",
        {
            "form": form,
            "imports": ContactImport.objects.select_related("created_by")[:20],
            "max_mb": round(services.max_bytes() / 1_048_576),
        },
        status=400 if form.errors else 200,
    )


@tenant_view(Role.ADMIN)
def import_detail(request, contact_import_id):
    contact_import = get_object_or_404(ContactImport, pk=contact_import_id)
    editable = contact_import.status in (ContactImport.Status.UPLOADED, ContactImport.Status.MAPPED)
    form = MappingForm(contact_import=contact_import) if editable else None
    if request.method == "POST" and editable:
        form = MappingForm(request.POST, contact_import=contact_import)
        if form.is_valid():
            try:
                services.configure_import(
                    contact_import=contact_import,
                    mapping=form.mapping(),
                    consent=form.cleaned_data["consent"],
                    consent_evidence=form.cleaned_data["consent_evidence"],
                    overwrite=form.cleaned_data["overwrite"],
                    default_region=form.cleaned_data["default_region"],
                )
                services.start_import(contact_import=contact_import)
            except services.MappingError as exc:
                if hasattr(exc, "error_dict"):
                    for name, errors in exc.message_dict.items():
                        form.add_error(None if name == "mapping" else name, errors)
                else:
                    form.add_error(None, exc.messages)
            else:
                messages.success(request, _("The import has started."))
                return _to_import(request, contact_import)
    return render(
        request,
        "crm/imports/detail.html",
        {
            "contact_import": contact_import,
            "form": form,
            "preview": services.preview(contact_import) if editable else [],
        },
        status=400 if form is not None and form.errors else 200,
    )


@tenant_view(Role.ADMIN)
def import_progress(request, contact_import_id):
    contact_import = get_object_or_404(ContactImport, pk=contact_import_id)
    return render(request, "crm/imports/_progress.html", {"contact_import": contact_import})


@tenant_view(Role.ADMIN)
@require_POST
def import_resume(request, contact_import_id):
    contact_import = get_object_or_404(ContactImport, pk=contact_import_id)
    try:
        services.start_import(contact_import=contact_import)
    except services.MappingError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("The import continues where it stopped."))
    return _to_import(request, contact_import)


@tenant_view(Role.ADMIN)
def import_errors(request, contact_import_id):
    contact_import = get_object_or_404(ContactImport, pk=contact_import_id)
    filename = f"import-{contact_import.pk}-errors.csv"
    try:
        handle = contact_import.error_report.open("rb") if contact_import.error_report else None
    except FileNotFoundError:
        handle = None
    if handle is None:
        # Nothing reported (yet, or its retention ended): the header alone says so.
        response = HttpResponse(
            ",".join(services.REPORT_HEADER) + "\r\n", content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    return FileResponse(
        handle, as_attachment=True, filename=filename, content_type="text/csv; charset=utf-8"
    )
