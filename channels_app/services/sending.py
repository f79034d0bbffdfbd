"""Sending: the one function every message to a customer goes through.

Agents, the bot, campaigns, automations, the API and the opt-out machinery all call
`send_message` (or `send_to_contact`). In order it:

1. returns the message already queued under the same idempotency key, if any (a caller that
   retries never queues twice);
2. checks the input and says what is wrong (`InvalidMessage`);
3. asks the consent gate, `privacy.gate.can_message` (P1), and the WhatsApp 24-hour window:
   outside it only an approved template may go (`SendRefused`, with a reason code and words);
4. saves the message as `queued` with an idempotency key and enqueues its delivery once the
   transaction commits (`channels_app.services.delivery`).
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app import templating
from channels_app.models import Channel, Conversation, Medium, Message
from privacy.gate import COMPLIANCE, can_message
from privacy.models import Purpose

logger = logging.getLogger(__name__)

# Longest text each medium carries in one message (characters): WhatsApp's text limit and
# Twilio's limit for an SMS (sent as up to ten concatenated segments).
MAX_BODY = {Medium.WHATSAPP: 4096, Medium.SMS: 1600}
# Attachments per message: WhatsApp takes one (with the text as its caption), MMS up to ten.
MAX_MEDIA = {Medium.WHATSAPP: 1, Medium.SMS: 10}
MAX_IDEMPOTENCY_KEY = 128
PURPOSES = (Purpose.TRANSACTIONAL, Purpose.MARKETING, COMPLIANCE)
SENDER_KINDS = frozenset(Message.SenderKind.values) - {Message.SenderKind.CUSTOMER}


class SendRefused(Exception):
    """The message may not be sent: the gate refused it or the WhatsApp window is closed.

    `reason` is a stable code (the gate's, or "outside_window"); `detail` says why in words an
    agent can act on.
    """

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class InvalidMessage(ValidationError):
    """The message itself is wrong (empty, too long, bad template values, ...).

    A ValidationError, so a form can show it as it is; `reason` is a stable code and `detail`
    the words.
    """

    def __init__(self, reason: str, detail: str, *, field: str | None = None):
        super().__init__(detail, code=reason)
        self.reason = reason
        self.detail = detail
        self.field = field

    def __str__(self) -> str:
        return self.detail


def new_idempotency_key() -> str:
    return f"msg-{uuid.uuid4().hex}"


def send_message(
    *,
    conversation: Conversation,
    body: str = "",
    template=None,
    variables=None,
    media=None,
    purpose: str,
    sender_kind: str,
    author=None,
    idempotency_key: str = "",
) -> Message:
    """Queue one outbound message on `conversation`'s channel, or refuse it with the reason.

    Raises `InvalidMessage` for bad input and `SendRefused` when it may not be sent.
    Returns the queued message (or the one already queued under `idempotency_key`).
    """
    idempotency_key = (idempotency_key or "").strip()
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidMessage(
            "idempotency_key_too_long",
            _("The idempotency key is longer than %(limit)d characters.")
            % {"limit": MAX_IDEMPOTENCY_KEY},
            field="idempotency_key",
        )
    if idempotency_key:
        existing = _existing(idempotency_key, conversation)
        if existing is not None:
            return existing

    channel = conversation.channel
    contact = conversation.contact
    body = body or ""
    media = _clean_media(media, channel)
    _check_sender(purpose=purpose, sender_kind=sender_kind)

    filled_variables: dict[str, str] = {}
    if template is not None:
        filled_variables = _check_template(template, variables, channel=channel, body=body)
        body = templating.render(template, filled_variables)
        # A marketing template is marketing, whatever the caller called it.
        if template.category_purpose == Purpose.MARKETING:
            purpose = Purpose.MARKETING
    else:
        if variables:
            raise InvalidMessage(
                "variables_without_template",
                _("Template variables were given but no template was chosen."),
                field="variables",
            )
        _check_body(body, channel=channel, has_media=bool(media))

    decision = can_message(contact, channel, purpose, sender_kind=sender_kind)
    if not decision.allowed:
        raise SendRefused(decision.reason, decision.detail)

    if channel.is_whatsapp and template is None and not conversation.window_open():
        raise SendRefused("outside_window", _outside_window_detail(conversation))

    now = timezone.now()
    message = Message(
        conversation=conversation,
        channel=channel,
        direction=Message.Direction.OUTBOUND,
        sender_kind=sender_kind,
        author=author,
        body=body,
        media=media,
        template=template,
        template_variables=filled_variables,
        purpose=purpose,
        # Generated when the caller has none: delivery and the provider lookup after an
        # interrupted send rely on every outbound message having one.
        idempotency_key=idempotency_key or new_idempotency_key(),
        status=Message.Status.QUEUED,
        created_at=now,
        status_changed_at=now,
    )
    try:
        with transaction.atomic():
            message.save()
            preview = _preview(message)
            Conversation.objects.filter(pk=conversation.pk).update(
                last_message_at=now, last_message_preview=preview
            )
            _enqueue_delivery(message)
    except IntegrityError:
        # The same key was queued at the same moment by another caller: theirs stands.
        winner = _existing(message.idempotency_key, conversation)
        if winner is None:
            raise
        logger.info("idempotency key %s was queued concurrently", message.idempotency_key)
        return winner
    conversation.last_message_at = now
    conversation.last_message_preview = preview
    return message


def send_to_contact(*, contact, channel: Channel, **kwargs) -> Message:
    """`send_message` to a contact on a channel, opening the conversation if there is none.

    A refused or invalid send leaves no empty conversation behind.
    """
    with transaction.atomic():
        conversation = _conversation_for(contact=contact, channel=channel)
        return send_message(conversation=conversation, **kwargs)


# --- checks ---------------------------------------------------------------------------------


def _existing(idempotency_key: str, conversation: Conversation) -> Message | None:
    existing = Message.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None and existing.conversation_id != conversation.pk:
        raise InvalidMessage(
            "idempotency_key_reused",
            _("This idempotency key was already used for a message in another conversation."),
            field="idempotency_key",
        )
    return existing


def _check_sender(*, purpose: str, sender_kind: str) -> None:
    if purpose not in PURPOSES:
        raise InvalidMessage(
            "invalid_purpose",
            _("The purpose must be one of: %(choices)s.") % {"choices": ", ".join(PURPOSES)},
            field="purpose",
        )
    if sender_kind not in SENDER_KINDS:
        raise InvalidMessage(
            "invalid_sender_kind",
            _("Unknown sender kind %(kind)r.") % {"kind": sender_kind},
            field="sender_kind",
        )
    # The gate lets compliance replies reach even an opted-out customer: only the opt-out
    # machinery itself may send them.
    if purpose == COMPLIANCE and sender_kind != Message.SenderKind.SYSTEM:
        raise InvalidMessage(
            "invalid_purpose",
            _("Only the system's replies to STOP, START and HELP are compliance messages."),
            field="purpose",
        )


def _check_body(body: str, *, channel: Channel, has_media: bool) -> None:
    if not isinstance(body, str):
        raise InvalidMessage("invalid_body", _("The message text must be text."), field="body")
    if not body.strip() and not has_media:
        raise InvalidMessage(
            "empty", _("Write a message, attach a file or choose a template."), field="body"
        )
    if "\x00" in body:
        raise InvalidMessage(
            "invalid_body", _("The message contains a NUL character."), field="body"
        )
    limit = MAX_BODY[channel.medium]
    if len(body) > limit:
        raise InvalidMessage(
            "too_long",
            _(
                "The message is %(length)d characters long; %(medium)s messages can have at "
                "most %(limit)d."
            )
            % {
                "length": len(body),
                "medium": Medium(channel.medium).label,
                "limit": limit,
            },
            field="body",
        )


def _check_template(template, variables, *, channel: Channel, body: str) -> dict[str, str]:
    if body and body.strip():
        raise InvalidMessage(
            "body_with_template",
            _("A template message takes its text from the template; leave the text empty."),
            field="body",
        )
    if template.channel_id != channel.pk:
        raise InvalidMessage(
            "template_other_channel",
            _("The template “%(name)s” belongs to another channel.") % {"name": template.name},
            field="template",
        )
    if not template.is_approved:
        raise InvalidMessage(
            "template_not_approved",
            _("The template “%(name)s” is not approved (%(status)s) and cannot be sent.")
            % {"name": template.name, "status": template.get_status_display().lower()},
            field="template",
        )
    try:
        return templating.normalise_variables(template, variables, whatsapp=channel.is_whatsapp)
    except templating.TemplateVariablesError as exc:
        raise InvalidMessage("template_variables", exc.message, field="variables") from exc


def _clean_media(media, channel: Channel) -> list[dict]:
    if not media:
        return []
    if not isinstance(media, list | tuple):
        raise InvalidMessage("invalid_media", _("Attachments must be a list."), field="media")
    limit = MAX_MEDIA[channel.medium]
    if len(media) > limit:
        raise InvalidMessage(
            "too_many_media",
            _("%(medium)s messages can carry at most %(limit)d attachment(s).")
            % {"medium": Medium(channel.medium).label, "limit": limit},
            field="media",
        )
    cleaned = []
    for index, item in enumerate(media, start=1):
        url = item.get("url", "") if isinstance(item, dict) else ""
        parts = urlsplit(url) if isinstance(url, str) else None
        if not parts or parts.scheme not in ("https", "http") or not parts.netloc:
            raise InvalidMessage(
                "invalid_media",
                _("Attachment %(index)d needs a public http(s) URL the provider can fetch.")
                % {"index": index},
                field="media",
            )
        entry = {"url": url[:2000]}
        for key in ("content_type", "filename"):
            value = item.get(key)
            if value:
                entry[key] = str(value)[:200]
        cleaned.append(entry)
    return cleaned


def _outside_window_detail(conversation: Conversation) -> str:
    if conversation.last_inbound_at is None:
        return _(
            "The customer has not written on WhatsApp yet, so a free-form message cannot be "
            "sent. Choose an approved template to start the conversation."
        )
    return _(
        "The customer's last message was more than 24 hours ago (%(when)s), so WhatsApp only "
        "accepts an approved template now. Choose a template."
    ) % {"when": timezone.localtime(conversation.last_inbound_at).strftime("%Y-%m-%d %H:%M")}


# --- writes ---------------------------------------------------------------------------------


def _preview(message: Message) -> str:
    text = " ".join(message.body.split())
    if not text and message.media:
        text = _("Attachment: %(name)s") % {
            "name": message.media[0].get("filename") or message.media[0]["url"].rsplit("/", 1)[-1]
        }
    return text[:200]


def _enqueue_delivery(message: Message) -> None:
    from channels_app.tasks import deliver_message

    tenant_id, message_id = message.tenant_id, message.pk
    transaction.on_commit(lambda: deliver_message.delay(tenant_id, message_id))


def _conversation_for(*, contact, channel: Channel) -> Conversation:
    conversation = (
        Conversation.objects.select_related("channel", "contact")
        .filter(contact=contact, channel=channel)
        .first()
    )
    if conversation is not None:
        return conversation
    try:
        with transaction.atomic():
            return Conversation.objects.create(contact=contact, channel=channel)
    except IntegrityError:
        # Opened at the same moment by an inbound message or another sender.
        return Conversation.objects.select_related("channel", "contact").get(
            contact=contact, channel=channel
        )
