"""Appointment reminders by message, and the customer's YES / NO answer to them.

- `send_due_reminders` (the beat job, per business) sends each due reminder exactly once: the
  appointment is claimed by a conditional UPDATE of `reminder_sent_at` in the same transaction
  as the send, so a re-run, a retried task or a second worker finds nothing left to claim, and
  a crash before commit leaves it for the next run.
- Reminders go through the one send path (`send_to_contact`): the consent gate and the
  WhatsApp 24-hour window apply. Outside the window an approved template named
  `appointment_reminder` (the business's mark for "use this one for reminders") is sent
  instead of free text. A refusal is recorded as `reminder_skipped_reason`, never retried.
- `handle_reply` (an inbound follow-up, before the bot) confirms or cancels the upcoming
  appointment whose reminder went to this conversation when the customer answers YES / NO
  (1 / 2, and the same in Spanish, Portuguese and Russian), records the answer, and sends one
  short acknowledgement. STOP-family words (CANCEL, CANCELAR…) never reach it: they opt out.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connection, transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from channels_app import templating
from channels_app.models import Conversation, Message, MessageTemplate
from channels_app.services.sending import InvalidMessage, SendRefused, send_message, send_to_contact
from crm.models import Appointment
from privacy.keywords import normalise
from privacy.models import Purpose
from tenants.context import platform_access, require_current_tenant

logger = logging.getLogger(__name__)

Status = Appointment.Status
REMINDER_TEMPLATE_NAME = "appointment_reminder"
UPCOMING = (Status.BOOKED, Status.CONFIRMED)

CONFIRM = "confirm"
CANCEL = "cancel"
# Whole-message answers, compared after `privacy.keywords.normalise` (case, spaces and
# punctuation set aside). None of them is an opt-out keyword.
ANSWERS = {
    CONFIRM: {
        "yes", "y", "confirm", "confirmed", "1", "ok", "okay",
        "si", "sí", "confirmo", "confirmar",  # es
        "sim", "confirmado",  # pt
        "да", "подтверждаю", "подтвердить",  # ru
    },
    CANCEL: {
        "no", "n", "2",
        "nao", "não",  # pt (es "no" is above)
        "нет",  # ru
    },
}  # fmt: skip


def classify_answer(*, text: str) -> str | None:
    word = normalise(text)
    for answer, words in ANSWERS.items():
        if word in {normalise(w) for w in words}:
            return answer
    return None


# --- Which reminders are due --------------------------------------------------------------------


def _reminder_delay() -> ExpressionWrapper:
    """`reminder_minutes_before` as a duration, in SQL."""
    if connection.vendor == "postgresql":
        minute = Value(dt.timedelta(minutes=1))  # integer * interval
    else:
        minute = Value(60_000_000)  # SQLite keeps durations as microseconds
    return ExpressionWrapper(F("reminder_minutes_before") * minute, output_field=DurationField())


def _due(now: dt.datetime) -> Q:
    """Not sent yet, wanted, not cancelled, not started, and its moment has come."""
    send_until = ExpressionWrapper(
        Value(now, output_field=DateTimeField()) + _reminder_delay(),
        output_field=DateTimeField(),
    )
    return Q(
        reminder_sent_at__isnull=True,
        reminder_minutes_before__gt=0,
        status__in=UPCOMING,
        starts_at__gt=now,
        starts_at__lte=send_until,
    )


def tenants_with_due_reminders(*, now: dt.datetime | None = None) -> list[int]:
    """Ids of the businesses with a reminder due (across tenants, deliberately)."""
    now = now or timezone.now()
    with platform_access():
        return sorted(
            set(Appointment.unscoped.filter(_due(now)).values_list("tenant_id", flat=True))
        )


def send_due_reminders(*, now: dt.datetime | None = None) -> int:
    """Send the active business's due reminders; returns how many were sent."""
    now = now or timezone.now()
    ids = list(Appointment.objects.filter(_due(now)).values_list("pk", flat=True))
    sent = 0
    for appointment_id in ids:
        if send_reminder(appointment_id=appointment_id, now=now) == "sent":
            sent += 1
    return sent


# --- Sending one ----------------------------------------------------------------------------


@transaction.atomic
def send_reminder(*, appointment_id: int, now: dt.datetime | None = None) -> str:
    """Claim and send one reminder: "sent", "skipped" (reason recorded) or "not_due"."""
    now = now or timezone.now()
    claimed = (
        Appointment.objects.filter(_due(now), pk=appointment_id)
        .update(reminder_sent_at=now, updated_at=now)
    )  # fmt: skip
    if not claimed:
        return "not_due"  # sent by another run, or no longer due
    appointment = Appointment.objects.select_related("contact", "reminder_channel").get(
        pk=appointment_id
    )
    channel = appointment.reminder_channel or _latest_channel(appointment.contact)
    if channel is None:
        return _skip(appointment, _("The contact has no conversation to send it on."))
    conversation = Conversation.objects.filter(contact=appointment.contact, channel=channel).first()
    language = appointment.contact.language or require_current_tenant().language
    template = None
    if channel.is_whatsapp and (conversation is None or not conversation.window_open(now)):
        template = _reminder_template(channel, language)
    try:
        with translation.override(language):
            if template is not None:
                content = {"template": template, "variables": _variables(template, appointment)}
            else:
                content = {"body": reminder_text(appointment=appointment)}
        message = send_to_contact(
            contact=appointment.contact,
            channel=channel,
            purpose=Purpose.TRANSACTIONAL,
            sender_kind=Message.SenderKind.AUTOMATION,
            idempotency_key=idempotency_key(appointment=appointment),
            **content,
        )
    except (SendRefused, InvalidMessage) as refused:
        detail = refused.detail
        if getattr(refused, "reason", "") == "outside_window":
            detail = _(
                "%(detail)s To send reminders outside the window, get a template named "
                "“%(name)s” approved on this channel."
            ) % {"detail": detail, "name": REMINDER_TEMPLATE_NAME}
        return _skip(appointment, detail)
    appointment.reminder_message = message
    appointment.reminder_skipped_reason = ""
    appointment.save(update_fields=["reminder_message", "reminder_skipped_reason"])
    return "sent"


def idempotency_key(*, appointment: Appointment) -> str:
    # A moved appointment is reminded again, under a new key.
    return f"appointment-reminder-{appointment.pk}-{int(appointment.starts_at.timestamp())}"


def _skip(appointment: Appointment, reason: str) -> str:
    appointment.reminder_skipped_reason = str(reason)[:200]
    appointment.save(update_fields=["reminder_skipped_reason"])
    logger.info("reminder of appointment %s not sent: %s", appointment.pk, reason)
    return "skipped"


def _latest_channel(contact):
    conversation = (
        Conversation.objects.filter(contact=contact)
        .select_related("channel")
        .order_by(F("last_inbound_at").desc(nulls_last=True), "-last_message_at", "-id")
        .first()
    )
    return conversation.channel if conversation is not None else None


def _reminder_template(channel, language: str):
    templates = MessageTemplate.objects.filter(
        channel=channel, name=REMINDER_TEMPLATE_NAME, status=MessageTemplate.Status.APPROVED
    )
    by_language = {t.language.split("_")[0].split("-")[0].lower(): t for t in templates}
    return by_language.get(language) or by_language.get("en") or templates.first()


def _when(appointment: Appointment) -> tuple[str, str]:
    local = appointment.starts_at.astimezone(require_current_tenant().zone)
    return formats.date_format(local, "DATE_FORMAT"), local.strftime("%H:%M")


def reminder_text(*, appointment: Appointment) -> str:
    """The reminder in the active language: what, when (business time), where, how to reply."""
    day, time = _when(appointment)
    where = appointment.location or appointment.link
    if where:
        text = _("Reminder: %(title)s on %(day)s at %(time)s, %(where)s.") % {
            "title": appointment.title,
            "day": day,
            "time": time,
            "where": where,
        }
    else:
        text = _("Reminder: %(title)s on %(day)s at %(time)s.") % {
            "title": appointment.title,
            "day": day,
            "time": time,
        }
    return text + " " + _("Reply YES to confirm or NO to cancel.")


def _variables(template, appointment: Appointment) -> dict[str, str]:
    day, time = _when(appointment)
    contact = appointment.contact
    by_name = {
        "name": contact.name or "",
        "first_name": (contact.name or "").split(" ")[0],
        "title": appointment.title,
        "date": day,
        "day": day,
        "time": time,
        "when": f"{day} {time}",
        "location": appointment.location or appointment.link,
    }
    positional = [by_name["first_name"] or by_name["name"], day, time, by_name["location"]]
    values = {}
    for index, name in enumerate(templating.variable_names(template)):
        if name in by_name:
            values[name] = by_name[name]
        elif name.isdigit() and int(name) - 1 < len(positional):
            values[name] = positional[int(name) - 1]
        else:
            values[name] = positional[index] if index < len(positional) else ""
    return values


# --- The customer's answer ----------------------------------------------------------------------


def handle_reply(message: Message) -> bool | None:
    """Inbound follow-up: YES / NO to a reminder confirms / cancels the appointment.

    Returns True when the message was such an answer (the bot then leaves it alone). Safe to
    run twice for the same message: the second run finds it recorded and does nothing.
    """
    if message.direction != Message.Direction.INBOUND:
        return None
    answer = classify_answer(text=message.body)
    if answer is None:
        return None
    conversation = message.conversation
    now = timezone.now()
    with transaction.atomic():
        if Appointment.objects.filter(customer_reply_message=message).exists():
            return True  # a retried task: already acted and acknowledged
        appointment = (
            Appointment.objects.select_for_update(of=("self",))
            .filter(
                contact_id=conversation.contact_id,
                reminder_message__conversation=conversation,
                status__in=UPCOMING,
                starts_at__gt=now,
            )
            .order_by("starts_at", "id")
            .first()
        )
        if appointment is None:
            return None
        appointment.status = Status.CONFIRMED if answer == CONFIRM else Status.CANCELLED
        appointment.customer_reply = message.body.strip()[:200]
        appointment.customer_replied_at = now
        appointment.customer_reply_message = message
        appointment.save(
            update_fields=[
                "status",
                "customer_reply",
                "customer_replied_at",
                "customer_reply_message",
                "updated_at",
            ]
        )
        contact = conversation.contact
        with translation.override(contact.language or require_current_tenant().language):
            day, time = _when(appointment)
            if answer == CONFIRM:
                ack = _("Thank you, your appointment on %(day)s at %(time)s is confirmed.")
            else:
                ack = _(
                    "Your appointment on %(day)s at %(time)s is cancelled. "
                    "Thank you for telling us."
                )
            ack = ack % {"day": day, "time": time}
        try:
            send_message(
                conversation=conversation,
                body=ack,
                purpose=Purpose.TRANSACTIONAL,
                sender_kind=Message.SenderKind.AUTOMATION,
                idempotency_key=f"appointment-reply-{message.pk}",
            )
        except (SendRefused, InvalidMessage) as refused:
            logger.info("no acknowledgement for appointment %s: %s", appointment.pk, refused)
    return True
