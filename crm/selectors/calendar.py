"""Reads for the calendar: month and week grids in the business's time zone, and `.ics` files.

A day is a local calendar day of the business (`tenant.zone`): its bounds are local midnights
converted to UTC, so a week that crosses a daylight-saving change still holds 7 whole days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import icalendar
from django.utils import timezone

from crm.models import Appointment

ICS_STATUS = {
    Appointment.Status.BOOKED: "TENTATIVE",
    Appointment.Status.CONFIRMED: "CONFIRMED",
    Appointment.Status.CANCELLED: "CANCELLED",
    Appointment.Status.NO_SHOW: "CONFIRMED",
}


@dataclass
class Day:
    date: dt.date
    in_month: bool = True
    is_today: bool = False
    appointments: list[Appointment] = field(default_factory=list)


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def between(*, start: dt.date, end: dt.date, zone: ZoneInfo, owner=None) -> list[Appointment]:
    """Appointments overlapping the local days [start, end), earliest first."""
    appointments = Appointment.objects.filter(
        starts_at__lt=local_midnight(end, zone), ends_at__gt=local_midnight(start, zone)
    ).select_related("contact", "owner")
    if owner is not None:
        appointments = appointments.filter(owner=owner)
    return list(appointments.order_by("starts_at", "id"))


def _days(start: dt.date, end: dt.date, zone: ZoneInfo, *, month: int | None, owner) -> list[Day]:
    today = timezone.now().astimezone(zone).date()
    days = {}
    current = start
    while current < end:
        days[current] = Day(
            date=current,
            in_month=month is None or current.month == month,
            is_today=current == today,
        )
        current += dt.timedelta(days=1)
    for appointment in between(start=start, end=end, zone=zone, owner=owner):
        local_day = appointment.starts_at.astimezone(zone).date()
        if local_day in days:
            days[local_day].appointments.append(appointment)
    return list(days.values())


def month_weeks(*, day: dt.date, zone: ZoneInfo, owner=None) -> list[list[Day]]:
    """The weeks (Monday first) covering the month of `day`."""
    first = day.replace(day=1)
    next_month = (first + dt.timedelta(days=32)).replace(day=1)
    start = first - dt.timedelta(days=first.weekday())
    last = next_month - dt.timedelta(days=1)
    end = last + dt.timedelta(days=7 - last.weekday())
    days = _days(start, end, zone, month=first.month, owner=owner)
    return [days[i : i + 7] for i in range(0, len(days), 7)]


def week_days(*, day: dt.date, zone: ZoneInfo, owner=None) -> list[Day]:
    """Monday to Sunday of the week of `day`."""
    start = day - dt.timedelta(days=day.weekday())
    return _days(start, start + dt.timedelta(days=7), zone, month=None, owner=owner)


def shift(*, day: dt.date, view: str, step: int) -> dt.date:
    """The same place one week or one month earlier (step -1) or later (+1)."""
    if view == "week":
        return day + dt.timedelta(days=7 * step)
    month_index = day.year * 12 + (day.month - 1) + step
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


# --- .ics --------------------------------------------------------------------------------


def ics(appointments, *, name: str, host: str) -> bytes:
    """An iCalendar file of `appointments` (one per event; UIDs stable across downloads)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Sales OS//Calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    stamp = timezone.now()
    for appointment in appointments:
        event = icalendar.Event()
        event.add("uid", f"appointment-{appointment.pk}@{host}.salesos")
        event.add("dtstamp", stamp)
        event.add("dtstart", appointment.starts_at.astimezone(dt.UTC))
        event.add("dtend", appointment.ends_at.astimezone(dt.UTC))
        event.add("last-modified", appointment.updated_at.astimezone(dt.UTC))
        contact = appointment.contact
        who = contact.name or contact.phone
        event.add("summary", f"{appointment.title} · {who}" if who else appointment.title)
        if appointment.location:
            event.add("location", appointment.location)
        if appointment.link:
            event.add("url", appointment.link)
        description = "\n".join(
            part for part in (appointment.notes, appointment.link, contact.phone) if part
        )
        if description:
            event.add("description", description)
        event.add("status", ICS_STATUS[appointment.status])
        calendar.add_component(event)
    return calendar.to_ical()


def contacts_matching(query: str, *, limit: int = 50):
    """Contacts whose name, phone or e-mail contains `query` (the appointment picker)."""
    from django.db.models import Q

    from crm.models import Contact

    query = (query or "").strip()
    contacts = Contact.objects.order_by("name", "id")
    if query:
        contacts = contacts.filter(
            Q(name__icontains=query) | Q(phone__icontains=query) | Q(email__icontains=query)
        )
    return list(contacts[:limit])
