"""Data subject request pages: list, log a new one, see what was found, confirm or reject,
download the archive; and the inbox's "turn this message into a data request"."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from privacy import deadlines, dsr
from privacy.access_log import Action, record_access
from privacy.models import DataRequest
from tenants.models import Role
from tenants.permissions import tenant_view

PAGE_SIZE = 100


class DataRequestForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Request"), choices=DataRequest.Kind.choices)
    phone = forms.CharField(label=gettext_lazy("Phone"), required=False, max_length=40)
    email = forms.CharField(label=gettext_lazy("E-mail"), required=False, max_length=254)
    new_name = forms.CharField(label=gettext_lazy("Corrected name"), required=False, max_length=200)
    new_phone = forms.CharField(
        label=gettext_lazy("Corrected phone"), required=False, max_length=40
    )
    new_email = forms.CharField(
        label=gettext_lazy("Corrected e-mail"), required=False, max_length=254
    )
    notes = forms.CharField(
        label=gettext_lazy("Notes"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("How the person asked and how you checked who they are."),
    )

    def changes(self) -> dict:
        data = self.cleaned_data
        return {
            name: data[f"new_{name}"]
            for name in dsr.RECTIFIABLE_FIELDS
            if data.get(f"new_{name}", "").strip()
        }


class FromMessageForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Request"), choices=DataRequest.Kind.choices)


class RejectForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Why"), max_length=250)


def _add_error(form, exc: dsr.DataRequestError) -> None:
    field = {"changes": "new_name"}.get(exc.field, exc.field)
    form.add_error(field if field in form.fields else None, exc.detail)


@require_GET
@tenant_view(Role.ADMIN)
def requests_page(request):
    status = request.GET.get("status", "open")
    queryset = DataRequest.objects.select_related("contact")
    if status == "open":
        queryset = queryset.filter(status__in=DataRequest.OPEN_STATUSES)
    elif status in DataRequest.Status.values:
        queryset = queryset.filter(status=status)
    else:
        status = "all"
    today = deadlines.today_for(request.tenant)
    rows = list(queryset.order_by("due_date", "-id")[:PAGE_SIZE])
    for row in rows:
        row.overdue = row.is_overdue(today)
    return render(
        request,
        "privacy/requests/list.html",
        {
            "rows": rows,
            "status": status,
            "statuses": [("open", _("open")), *DataRequest.Status.choices, ("all", _("all"))],
            "summary": dsr.summary(tenant=request.tenant),
            "today": today,
        },
    )


@require_http_methods(["GET", "POST"])
@tenant_view(Role.ADMIN)
def request_new(request):
    form = DataRequestForm(request.POST or None, initial=request.GET.dict() or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            data_request = dsr.create_request(
                kind=data["kind"],
                phone=data["phone"],
                email=data["email"],
                notes=data["notes"],
                changes=form.changes(),
                source=DataRequest.Source.DASHBOARD,
                created_by=request.user,
            )
        except dsr.DataRequestError as exc:
            _add_error(form, exc)
        else:
            return redirect(_detail_url(request, data_request))
    return render(request, "privacy/requests/new.html", {"form": form})


def _thread_url(request, message) -> str:
    return reverse(
        "channels:inbox_thread",
        kwargs={"tenant_slug": request.tenant.slug, "conversation_id": message.conversation_id},
    )


def _detail_url(request, data_request) -> str:
    return reverse(
        "privacy:request_detail",
        kwargs={"tenant_slug": request.tenant.slug, "data_request_id": data_request.pk},
    )


@require_GET
@tenant_view(Role.ADMIN)
def request_detail(request, data_request_id: int):
    data_request = get_object_or_404(
        DataRequest.objects.select_related("contact", "message"), pk=data_request_id
    )
    record_access(
        request=request,
        action=Action.VIEWED_DATA_REQUEST,
        obj=data_request,
        subject=data_request.contact,
        detail=_("data request #%(id)s") % {"id": data_request.pk},
    )
    return render(
        request,
        "privacy/requests/detail.html",
        {
            "data_request": data_request,
            "overdue": data_request.is_overdue(deadlines.today_for(request.tenant)),
            "reject_form": RejectForm(),
            "export_available": data_request.export_available(),
            "export_expired": bool(
                data_request.export_expires_at and not data_request.export_available()
            ),
            "findings": sorted((data_request.findings or {}).get("models", {}).items()),
            "result_models": sorted((data_request.result or {}).get("models", {}).items()),
        },
    )


@require_POST
@tenant_view(Role.ADMIN)
def request_confirm(request, data_request_id: int):
    data_request = get_object_or_404(DataRequest, pk=data_request_id)
    waiting = (DataRequest.Status.RECEIVED, DataRequest.Status.AWAITING_CONFIRMATION)
    if data_request.status not in waiting:
        messages.info(request, _("This request has already been handled."))
    else:
        dsr.confirm_request(data_request=data_request, by=request.user)
        messages.success(request, _("The request is being carried out."))
    return redirect(_detail_url(request, data_request))


@require_POST
@tenant_view(Role.ADMIN)
def request_run_again(request, data_request_id: int):
    data_request = get_object_or_404(DataRequest, pk=data_request_id)
    try:
        dsr.run_again(data_request=data_request, by=request.user)
    except dsr.DataRequestError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("The request is being carried out again."))
    return redirect(_detail_url(request, data_request))


@require_POST
@tenant_view(Role.ADMIN)
def request_reject(request, data_request_id: int):
    data_request = get_object_or_404(DataRequest, pk=data_request_id)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the request is rejected."))
        return redirect(_detail_url(request, data_request))
    try:
        dsr.reject_request(
            data_request=data_request, reason=form.cleaned_data["reason"], by=request.user
        )
    except dsr.DataRequestError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("The request was rejected."))
    return redirect(_detail_url(request, data_request))


def export_response(request, data_request: DataRequest, *, gone, actor=None, via: str = ""):
    """The archive as a download (dashboard and API): 404 when the request has none, `gone()`
    after expiry; every download is written to the access log."""
    if not data_request.makes_archive or data_request.export_expires_at is None:
        raise Http404(_("This request has no archive."))
    if not data_request.export_available():
        return gone()
    try:
        handle = data_request.export_file.open("rb")
    except (FileNotFoundError, OSError):
        return gone()
    record_access(
        request=request,
        actor=actor,
        action=Action.DOWNLOADED_EXPORT,
        obj=data_request,
        subject=data_request.contact,
        detail=(_("data request #%(id)s") % {"id": data_request.pk}) + via,
    )
    return FileResponse(handle, as_attachment=True, filename=f"data-request-{data_request.pk}.zip")


@require_GET
@tenant_view(Role.ADMIN)
def request_download(request, data_request_id: int):
    data_request = get_object_or_404(
        DataRequest.objects.select_related("contact"), pk=data_request_id
    )

    def gone():
        return render(
            request,
            "privacy/requests/expired.html",
            {"data_request": data_request},
            status=410,
        )

    return export_response(request, data_request, gone=gone)


@require_http_methods(["GET", "POST"])
@tenant_view(Role.AGENT)
def request_from_message(request, message_id: int):
    """One click from the inbox: a data request for the conversation's contact, recording the
    customer's message it came from."""
    from channels_app.models import Message

    message = get_object_or_404(
        Message.objects.select_related("conversation__contact"),
        pk=message_id,
        direction=Message.Direction.INBOUND,
    )
    form = FromMessageForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            data_request = dsr.create_request(
                kind=form.cleaned_data["kind"],
                message=message,
                source=DataRequest.Source.MESSAGE,
                created_by=request.user,
                notes=_("From the customer's message of %(when)s.")
                % {
                    "when": timezone.localtime(message.created_at, request.tenant.zone).strftime(
                        "%Y-%m-%d %H:%M"
                    )
                },
            )
        except dsr.DuplicateRequest as exc:
            messages.info(request, exc.detail)
            data_request = exc.existing
            if request.membership.has_role(Role.ADMIN):
                return redirect(_detail_url(request, data_request))
            return redirect(_thread_url(request, message))
        except dsr.DataRequestError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(
                request,
                _("Data request #%(id)s recorded, due %(due)s.")
                % {"id": data_request.pk, "due": data_request.due_date.isoformat()},
            )
            if request.membership.has_role(Role.ADMIN):
                return redirect(_detail_url(request, data_request))
            return redirect(_thread_url(request, message))
    return render(request, "privacy/requests/from_message.html", {"form": form, "message": message})
