"""Demo data for the deals board and the calendar (called by `manage.py seed_demo`).

Idempotent: a deal or appointment that already exists (by title) is left as it is.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from crm.models import Appointment, Contact, Deal
from crm.services import appointments as appointment_services
from crm.services import deals as deal_services
from crm.services.pipelines import ensure_default_pipeline
from tenants.models import User

# (title, stage position, value, currency, contact index, owned by the agent)
DEMO_DEALS = (
    ("Invisalign treatment plan", 0, "3200", "USD", 0, False),
    ("Family check-up package", 1, "480", "USD", 1, True),
    ("Whitening, 3 sessions", 2, "750", "USD", 2, False),
    ("Dental implants", 3, "5400", "EUR", 0, True),
    ("Corporate dental plan (12 staff)", 4, "9600", "USD", None, False),
    ("Veneers consultation", 5, "300", "GBP", 1, True),
)

# (title, day of this week (0 = Monday), hour, minutes long, contact index, location)
DEMO_APPOINTMENTS = (
    ("Check-up", 1, 9, 30, 0, "Room 1"),
    ("Whitening session", 2, 14, 60, 2, "Room 2"),
    ("Implant consultation", 3, 11, 45, 1, "Room 1"),
    ("Video follow-up", 4, 16, 20, 0, ""),
)


def seed_deals_and_calendar(*, tenant, channel=None) -> None:
    """A pipeline with a handful of deals and a few appointments this week (tenant active)."""
    owner = User.objects.filter(memberships__tenant=tenant, memberships__role="owner").first()
    agent = User.objects.filter(memberships__tenant=tenant, memberships__role="agent").first()
    contacts = list(Contact.objects.order_by("id")[:3])
    pipeline = ensure_default_pipeline()
    stages = list(pipeline.stages.order_by("position", "id"))
    for title, position, value, currency, contact_index, by_agent in DEMO_DEALS:
        if Deal.objects.filter(title=title).exists() or position >= len(stages):
            continue
        deal_services.create_deal(
            pipeline=pipeline,
            stage=stages[position],
            title=title,
            value=Decimal(value),
            currency=currency,
            contact=_pick(contacts, contact_index),
            owner=agent if by_agent else owner,
            expected_close_date=timezone.localdate() + dt.timedelta(days=14 + 7 * position),
            by=owner,
        )
    if not contacts:
        return
    today = timezone.now().astimezone(tenant.zone).date()
    monday = today - dt.timedelta(days=today.weekday())
    for title, weekday, hour, minutes, contact_index, location in DEMO_APPOINTMENTS:
        if Appointment.objects.filter(title=title).exists():
            continue
        starts = dt.datetime.combine(
            monday + dt.timedelta(days=weekday), dt.time(hour), tzinfo=tenant.zone
        )
        appointment_services.create_appointment(
            title=title,
            contact=_pick(contacts, contact_index) or contacts[0],
            starts_at=starts,
            ends_at=starts + dt.timedelta(minutes=minutes),
            location=location,
            link="" if location else "https://meet.example.com/demo-follow-up",
            owner=owner,
            reminder_channel=channel,
            by=owner,
        )


def _pick(items, index):
    if index is None or not items:
        return None
    return items[index % len(items)]
