"""Security events and incidents (owners and admins): the event log, newest first and
filterable, and the incident record with its 72-hour notification clock (P17)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from privacy import security
from privacy.models import Incident, SecurityEvent
from tenants.models import Role
from tenants.permissions import tenant_view

PAGE_SIZE = 100


class EventFilterForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False)
    since = forms.DateField(
        label=gettext_lazy("Since"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("Any")), *SecurityEvent.Kind.choices]

    def to_filter(self) -> security.EventFilter:
        data = self.cleaned_data if self.is_valid() else {}
        return security.EventFilter(kind=data.get("kind") or "", since=data.get("since"))


class IncidentForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("What happened, in a few words"), max_length=200)
    description = forms.CharField(
        label=gettext_lazy("Details"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    detected_at = forms.DateTimeField(
        label=gettext_lazy("Detected at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=gettext_lazy("The 72-hour notification clock starts here."),
    )


class NotificationForm(forms.Form):
    notified_whom = forms.CharField(
        label=gettext_lazy("Who was notified"),
        max_length=300,
        help_text=gettext_lazy("The supervisory authority, and the people affected if needed."),
    )
    notified_at = forms.DateTimeField(
        label=gettext_lazy("Notified at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    notes = forms.CharField(
        label=gettext_lazy("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@require_GET
@tenant_view(Role.ADMIN)
def security_page(request):
    form = EventFilterForm(request.GET or None)
    events = list(security.events(form.to_filter(), zone=request.tenant.zone)[:PAGE_SIZE])
    return render(request, "privacy/security.html", {"form": form, "events": events})


@tenant_view(Role.ADMIN)
def incidents_page(request):
    form = IncidentForm(request.POST or None, initial={"detected_at": _now_local(request)})
    if request.method == "POST" and _valid_in_business_zone(request, form):
        try:
            incident = security.open_incident(by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                _("Incident recorded; notify by %(when)s.")
                % {
                    "when": timezone.localtime(incident.notify_by, request.tenant.zone).strftime(
                        "%Y-%m-%d %H:%M"
                    )
                },
            )
            return redirect(
                "privacy:incident", tenant_slug=request.tenant.slug, incident_id=incident.pk
            )
    return render(
        request,
        "privacy/incidents.html",
        {"form": form, "incidents": security.incidents(), "now": timezone.now()},
        status=400 if form.errors else 200,
    )


@tenant_view(Role.ADMIN)
def incident(request, incident_id: int):
    incident = get_object_or_404(Incident, pk=incident_id)
    form = NotificationForm(request.POST or None, initial={"notified_at": _now_local(request)})
    if request.method == "POST" and _valid_in_business_zone(request, form):
        try:
            security.record_notification(incident=incident, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Notification recorded."))
            return redirect(
                "privacy:incident", tenant_slug=request.tenant.slug, incident_id=incident.pk
            )
    return render(
        request,
        "privacy/incident.html",
        {"incident": incident, "form": form, "now": timezone.now()},
        status=400 if form.errors else 200,
    )


@require_POST
@tenant_view(Role.ADMIN)
def incident_close(request, incident_id: int):
    incident = get_object_or_404(Incident, pk=incident_id)
    security.close_incident(incident=incident)
    messages.success(request, _("Incident closed."))
    return redirect("privacy:incident", tenant_slug=request.tenant.slug, incident_id=incident.pk)


def _valid_in_business_zone(request, form) -> bool:
    """Validate with the times typed read in the business's time zone, the one the form is
    filled in with (`_now_local`), not the server's."""
    with timezone.override(request.tenant.zone):
        return form.is_valid()


def _now_local(request) -> str:
    return timezone.localtime(timezone.now(), request.tenant.zone).strftime("%Y-%m-%dT%H:%M")
