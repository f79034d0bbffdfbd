"""Appointments: book, edit, confirm, cancel, mark no-show; and the members' private feeds.

Times are aware datetimes (stored in UTC); the pages enter and show them in the business's
time zone. Moving an appointment to another time sends its reminder again (for the new time).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Appointment, CalendarFeed, new_feed_token
from tenants.context import require_current_tenant

Status = Appointment.Status

FIELDS = (
    "title",
    "contact",
    "starts_at",
    "ends_at",
    "location",
    "link",
    "owner",
    "notes",
    "reminder_minutes_before",
    "reminder_channel",
)
MAX_REMINDER_MINUTES = 60 * 24 * 30


def _check(fields: dict) -> None:
    errors: dict[str, str] = {}
    if not (fields.get("title") or "").strip():
        errors["title"] = _("Give the appointment a title.")
    starts_at, ends_at = fields.get("starts_at"), fields.get("ends_at")
    if starts_at is None:
        errors["starts_at"] = _("Say when it starts.")
    if ends_at is None:
        errors["ends_at"] = _("Say when it ends.")
    for name in ("starts_at", "ends_at"):
        value = fields.get(name)
        if value is not None and timezone.is_naive(value):
            raise ValueError(f"{name} must be an aware datetime")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        errors["ends_at"] = _("The appointment must end after it starts.")
    if fields.get("contact") is None:
        errors["contact"] = _("Choose who the appointment is with.")
    minutes = fields.get("reminder_minutes_before")
    if minutes is not None and not (0 <= int(minutes) <= MAX_REMINDER_MINUTES):
        errors["reminder_minutes_before"] = _("A reminder can go at most 30 days before.")
    owner = fields.get("owner")
    if owner is not None and not owner.memberships.filter(tenant=require_current_tenant()).exists():
        errors["owner"] = _("Choose a member of this business.")
    channel = fields.get("reminder_channel")
    if channel is not None and not channel.is_active:
        errors["reminder_channel"] = _("This channel is switched off.")
    if errors:
        raise ValidationError(errors)


def create_appointment(*, by=None, **fields) -> Appointment:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown appointment fields: {sorted(unknown)}")
    fields.setdefault("reminder_minutes_before", 24 * 60)
    _check(fields)
    fields["title"] = fields["title"].strip()
    return Appointment.objects.create(created_by=by, **fields)


@transaction.atomic
def update_appointment(*, appointment: Appointment, **fields) -> Appointment:
    """Change an appointment; a new start time (or reminder delay) re-arms its reminder."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown appointment fields: {sorted(unknown)}")
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    merged = {name: getattr(appointment, name) for name in FIELDS} | fields
    _check(merged)
    rearm = (
        merged["starts_at"] != appointment.starts_at
        or merged["reminder_minutes_before"] != appointment.reminder_minutes_before
    )
    for name, value in fields.items():
        setattr(appointment, name, value.strip() if name == "title" else value)
    if rearm:
        appointment.reminder_sent_at = None
        appointment.reminder_message = None
        appointment.reminder_skipped_reason = ""
        appointment.customer_reply = ""
        appointment.customer_replied_at = None
        appointment.customer_reply_message = None
    appointment.save()
    return appointment


def set_status(*, appointment: Appointment, status: str) -> Appointment:
    """Confirm, cancel, mark as no-show or book again (the same status twice changes nothing)."""
    if status not in Status.values:
        raise ValidationError({"status": _("Unknown status.")})
    if status == Status.NO_SHOW and appointment.starts_at > timezone.now():
        raise ValidationError(
            {"status": _("An appointment that has not started yet cannot be a no-show.")}
        )
    Appointment.objects.filter(pk=appointment.pk).update(status=status, updated_at=timezone.now())
    appointment.status = status
    return appointment


# --- Private calendar feeds ------------------------------------------------------------------


def feed_for(*, user) -> CalendarFeed | None:
    return CalendarFeed.objects.filter(user=user).first()


def create_or_reset_feed(*, user) -> CalendarFeed:
    """The member's feed address, created on first use; called again it gets a new token and
    the old address stops working."""
    feed = feed_for(user=user)
    if feed is not None:
        feed.token = new_feed_token()
        feed.save(update_fields=["token"])
        return feed
    try:
        with transaction.atomic():
            return CalendarFeed.objects.create(user=user)
    except IntegrityError:
        return create_or_reset_feed(user=user)
