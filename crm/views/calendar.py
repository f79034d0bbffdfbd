"""The calendar (month and week), appointment pages, `.ics` downloads and the feed link.

Every page here runs in the business's time zone: times are entered and shown there.
"""

from __future__ import annotations

import datetime as dt
import functools

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.shortcuts import render as render_page
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.calendar_forms import AppointmentForm
from crm.models import Appointment, Contact
from crm.selectors import calendar as selectors
from crm.services import appointments as services
from tenants.models import Role
from tenants.permissions import tenant_view

STATUS_ACTIONS = {
    "confirm": Appointment.Status.CONFIRMED,
    "cancel": Appointment.Status.CANCELLED,
    "no_show": Appointment.Status.NO_SHOW,
    "book": Appointment.Status.BOOKED,
}


def render(request, template, context=None, status=200):
    """A page of this section: the navigation highlights "Calendar" on all of them."""
    return render_page(
        request, template, {"nav_section": "crm:calendar", **(context or {})}, status=status
    )


def in_tenant_zone(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        with timezone.override(request.tenant.zone):
            return view(request, *args, **kwargs)

    return wrapper


def _day(value: str, zone) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return timezone.now().astimezone(zone).date()


@tenant_view(Role.AGENT)
@in_tenant_zone
def calendar(request):
    zone = request.tenant.zone
    view = "week" if request.GET.get("view") == "week" else "month"
    day = _day(request.GET.get("date", ""), zone)
    mine = request.GET.get("mine") == "1"
    owner = request.user if mine else None
    context = {
        "view": view,
        "day": day,
        "mine": mine,
        "today": timezone.now().astimezone(zone).date(),
        "previous": selectors.shift(day=day, view=view, step=-1),
        "next": selectors.shift(day=day, view=view, step=1),
        "zone_name": request.tenant.time_zone,
        "feed": services.feed_for(user=request.user),
    }
    if view == "week":
        context["days"] = selectors.week_days(day=day, zone=zone, owner=owner)
    else:
        context["weeks"] = selectors.month_weeks(day=day, zone=zone, owner=owner)
    if context["feed"] is not None:
        context["feed_url"] = request.build_absolute_uri(
            reverse("crm_public:calendar_feed", kwargs={"token": context["feed"].token})
        )
    return render(request, "crm/calendar/index.html", context)


def _form_initial(request) -> dict:
    zone = request.tenant.zone
    start = request.GET.get("date", "")
    try:
        day = dt.date.fromisoformat(start)
    except ValueError:
        day = timezone.now().astimezone(zone).date() + dt.timedelta(days=1)
    starts_at = dt.datetime.combine(day, dt.time(9, 0), tzinfo=zone)
    initial = {
        "starts_at": starts_at,
        "ends_at": starts_at + dt.timedelta(minutes=30),
        "owner": request.user,
        "reminder_minutes_before": 24 * 60,
    }
    contact_id = request.GET.get("contact", "")
    if contact_id.isdigit():
        initial["contact"] = Contact.objects.filter(pk=int(contact_id)).first()
    return initial


def _add_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, errors in error.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@tenant_view(Role.AGENT)
@in_tenant_zone
def appointment_new(request):
    form = AppointmentForm(request.POST or None, initial=_form_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            appointment = services.create_appointment(by=request.user, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Appointment booked."))
            return redirect(
                "crm:appointment", tenant_slug=request.tenant.slug, appointment_id=appointment.pk
            )
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "crm/calendar/form.html",
        {"form": form, "appointment": None, "zone_name": request.tenant.time_zone},
        status=status,
    )


@tenant_view(Role.AGENT)
@in_tenant_zone
def appointment_edit(request, appointment_id):
    appointment = get_object_or_404(Appointment, pk=appointment_id)
    initial = {name: getattr(appointment, name) for name in services.FIELDS}
    form = AppointmentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_appointment(appointment=appointment, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Appointment saved."))
            return redirect(
                "crm:appointment", tenant_slug=request.tenant.slug, appointment_id=appointment.pk
            )
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "crm/calendar/form.html",
        {"form": form, "appointment": appointment, "zone_name": request.tenant.time_zone},
        status=status,
    )


@tenant_view(Role.AGENT)
@in_tenant_zone
def appointment_detail(request, appointment_id):
    appointment = get_object_or_404(
        Appointment.objects.select_related(
            "contact", "owner", "reminder_channel", "reminder_message"
        ),
        pk=appointment_id,
    )
    return render(
        request,
        "crm/calendar/detail.html",
        {
            "appointment": appointment,
            "zone_name": request.tenant.time_zone,
            "has_started": appointment.starts_at <= timezone.now(),
        },
    )


@require_POST
@tenant_view(Role.AGENT)
def appointment_status(request, appointment_id):
    appointment = get_object_or_404(Appointment, pk=appointment_id)
    status = STATUS_ACTIONS.get(request.POST.get("action", ""))
    if status is None:
        messages.error(request, _("Choose confirm, cancel, no-show or book again."))
    else:
        try:
            services.set_status(appointment=appointment, status=status)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _("The appointment is now %(status)s.")
                % {"status": appointment.get_status_display()},
            )
    return redirect(
        "crm:appointment", tenant_slug=request.tenant.slug, appointment_id=appointment.pk
    )


@tenant_view(Role.AGENT)
def appointment_ics(request, appointment_id):
    appointment = get_object_or_404(
        Appointment.objects.select_related("contact"), pk=appointment_id
    )
    body = selectors.ics([appointment], name=request.tenant.name, host=request.tenant.slug)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="appointment-{appointment.pk}.ics"'
    return response


@require_POST
@tenant_view(Role.AGENT)
def calendar_feed(request):
    had_one = services.feed_for(user=request.user) is not None
    services.create_or_reset_feed(user=request.user)
    if had_one:
        messages.success(
            request, _("Your calendar address was changed; the old one no longer works.")
        )
    else:
        messages.success(request, _("Your private calendar address is ready."))
    return redirect(reverse("crm:calendar", kwargs={"tenant_slug": request.tenant.slug}) + "#feed")


@tenant_view(Role.AGENT)
def appointment_contacts(request):
    """The contact picker's options for a search (HTMX swaps them into the select)."""
    from crm.calendar_forms import ContactChoiceField

    field = ContactChoiceField(queryset=Contact.objects.none())
    contacts = selectors.contacts_matching(request.GET.get("q", ""))
    return render(
        request,
        "crm/calendar/_contact_options.html",
        {"options": [(c.pk, field.label_from_instance(c)) for c in contacts]},
    )
