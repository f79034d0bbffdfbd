"""The reply pipeline: what the bot does with one customer message.

`bot_follow_up` is registered as the last inbound follow-up (channels_app.apps): when the
channel's bot is on it enqueues `bot_reply`, which calls `reply_to_message`. In order:

1. once per message: a message that already has a `BotRun` is not answered again;
2. skip (recorded with the reason) when the bot is off or stepped back from the conversation,
   a person is assigned, a later message will be answered instead, the contact restricted
   processing or may not be messaged (opted out);
3. hand off to a person when the token balance is used up, when the customer asks for one,
   or outside the working hours;
4. retrieve the best knowledge-base chunks and build the request from them and the
   conversation's recent messages only (P5), masking phone numbers and e-mail addresses
   when the profile says so;
5. ask the provider (the local responder when no key is configured), metering every call;
   an unusable answer is asked again up to the profile's `max_failures`, then, like a
   provider error, ends in a hand-off: the customer's message is never lost, a person sees it;
6. send the answer through `send_message`, the one send path (idempotent per message), or
   hand off when the model says the knowledge base does not answer the question;
7. keep what was sent (chunk and message ids, the usage record) on the `BotRun`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from channels_app.bot import metering, profiles, providers
from channels_app.bot.models import AIUsage, BotRun
from channels_app.bot.retrieval import RetrievedChunk, retrieve
from channels_app.models import Message
from privacy.gate import can_message
from privacy.models import Purpose
from tenants.context import require_current_tenant

logger = logging.getLogger(__name__)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w+])\+?\d[\d\s().-]{6,}\d(?!\w)")
NOT_DELIVERED = (Message.Status.FAILED, Message.Status.UNDELIVERED, Message.Status.CANCELED)


def bot_follow_up(message: Message) -> None:
    """Inbound follow-up: hand the message to the bot when the bot is on for its channel."""
    from channels_app.tasks import bot_reply

    profile = profiles.effective_profile(message.channel)
    if profile is None or not profile.enabled:
        return None
    bot_reply.delay(message.tenant_id, message.pk)
    return None  # never consumes the message


def mask(text: str) -> str:
    return PHONE.sub("[phone]", EMAIL.sub("[email]", text))


# --- Building the request -------------------------------------------------------------------


def context_messages(message: Message, *, limit: int) -> list[Message]:
    """The conversation's latest customer messages and replies up to `message` (no internal
    notes, nothing that never reached the customer), oldest first."""
    rows = (
        Message.objects.filter(
            conversation_id=message.conversation_id,
            direction__in=[Message.Direction.INBOUND, Message.Direction.OUTBOUND],
            created_at__lte=message.created_at,
        )
        .exclude(status__in=NOT_DELIVERED)
        .only("id", "direction", "body", "media", "created_at")
        .order_by("-created_at", "-id")[:limit]
    )
    found = list(reversed(rows))
    if all(m.pk != message.pk for m in found):
        found = [*found[1:], message] if len(found) >= limit else [*found, message]
    return found


def system_prompt(*, profile, business: str, chunks: list[RetrievedChunk]) -> str:
    languages = profiles.languages(profile)
    lines = [
        f"You answer customers' messages for {business} on WhatsApp or SMS.",
    ]
    if profile.instructions.strip():
        lines.append(profile.instructions.strip())
    if profile.tone.strip():
        lines.append(f"Tone: {profile.tone.strip()}.")
    if languages:
        lines.append(f"Answer in one of these languages: {', '.join(languages)}.")
    else:
        lines.append("Answer in the language the customer writes in.")
    lines += [
        f"Keep the answer under {profile.max_reply_chars} characters, as plain text.",
        "Use only the knowledge base below. If it does not answer the question, or the "
        "customer wants a person, set hand_off to true, leave answer empty and say why in "
        "reason.",
        "",
        "Knowledge base:",
    ]
    if not chunks:
        lines.append("(nothing relevant was found)")
    for number, chunk in enumerate(chunks, start=1):
        lines.append(f"[{number}] {chunk.document_title}\n{chunk.text}")
    return "\n".join(lines)


def build_request(
    *, profile, business: str, question: str, history: list[Message], chunks, config
) -> providers.BotRequest:
    """The provider request: the conversation's recent messages and the chunks, nothing else."""
    clean = mask if profile.mask_personal_data else (lambda text: text)
    messages = []
    for item in history:
        body = item.body or (_("[attachment]") if item.media else "")
        role = "user" if item.direction == Message.Direction.INBOUND else "assistant"
        messages.append({"role": role, "content": clean(body)})
    return providers.BotRequest(
        system=system_prompt(profile=profile, business=business, chunks=chunks),
        messages=messages,
        chunks=list(chunks),
        question=question,
        model=config.model,
        temperature=float(profile.temperature),
        max_tokens=profile.max_reply_chars // 3 + 64,
        max_chars=profile.max_reply_chars,
    )


# --- Running it -----------------------------------------------------------------------------


@dataclass
class Attempt:
    """What asking the provider gave: an answer, or the failure that ends in a hand-off, and
    the usage records of every call made."""

    answer: providers.BotAnswer | None = None
    failure: str = ""
    usages: list[AIUsage] = field(default_factory=list)


def ask(request: providers.BotRequest, *, config, profile, purpose: str, conversation=None):
    """Call the provider, asking again after an unusable answer (up to `max_failures` calls
    in all); every call is metered."""
    result = Attempt()
    calls = max(1, profile.max_failures)
    for number in range(1, calls + 1):
        try:
            answer = providers.answer(request, config=config)
        except providers.ProviderFailed as exc:
            if exc.tokens_in or exc.tokens_out:
                result.usages.append(
                    metering.record_usage(
                        purpose=purpose,
                        provider=exc.provider,
                        model=exc.model or config.model,
                        tokens_in=exc.tokens_in,
                        tokens_out=exc.tokens_out,
                        conversation=conversation,
                    )
                )
            logger.warning("bot provider call %d/%d failed: %s", number, calls, exc.reason)
            if exc.usable_retry and number < calls:
                continue
            if exc.usable_retry:
                result.failure = _("The bot failed to answer %(count)d times: %(problem)s") % {
                    "count": calls,
                    "problem": exc.reason,
                }
            else:
                result.failure = exc.reason
            return result
        result.usages.append(
            metering.record_usage(
                purpose=purpose,
                provider=answer.provider,
                model=answer.model,
                tokens_in=answer.tokens_in,
                tokens_out=answer.tokens_out,
                conversation=conversation,
            )
        )
        result.answer = answer
        return result
    return result


def reply_to_message(*, message_id: int) -> BotRun | None:
    """Answer (or skip, or hand off) one inbound message; a second run is a no-op."""
    message = (
        Message.objects.select_related("conversation__contact", "channel", "tenant")
        .filter(pk=message_id, direction=Message.Direction.INBOUND)
        .first()
    )
    if message is None:
        return None  # erased or purged since
    existing = BotRun.objects.filter(inbound_message=message).first()
    if existing is not None:
        return existing
    conversation = message.conversation
    profile = profiles.effective_profile(message.channel)

    skip = _skip_reason(message, profile)
    if skip:
        return _record(message, outcome=BotRun.Outcome.SKIPPED, reason=skip[:200])[0]
    if not metering.has_tokens():
        # Nothing may go to the provider, yet the customer must not wait on a bot that will
        # never answer: a person takes the conversation, as after any failure of the bot.
        return _hand_off(message, profile=profile, reason=_("The bot's token balance is used up."))

    phrase = profiles.asks_for_person(profile, message.body)
    if phrase:
        return _hand_off(
            message,
            profile=profile,
            reason=_("The customer asked for a person (“%(phrase)s”).") % {"phrase": phrase},
        )
    if not profiles.within_working_hours(profile, zone=message.tenant.zone):
        return _hand_off(
            message,
            profile=profile,
            reason=_("The message came outside the bot's working hours."),
        )

    chunks = retrieve(question=message.body, limit=settings.BOT_CONTEXT_CHUNKS)
    history = context_messages(message, limit=settings.BOT_CONTEXT_MESSAGES)
    config = providers.config_for(profile)
    request = build_request(
        profile=profile,
        business=message.tenant.name,
        question=message.body,
        history=history,
        chunks=chunks,
        config=config,
    )
    sent = {
        "chunk_ids": [chunk.chunk_id for chunk in chunks],
        "context_message_ids": [item.pk for item in history],
    }
    attempt = ask(
        request,
        config=config,
        profile=profile,
        purpose=AIUsage.Purpose.REPLY,
        conversation=conversation,
    )
    usage = attempt.usages[-1] if attempt.usages else None
    if attempt.answer is None:
        return _hand_off(
            message,
            profile=profile,
            reason=attempt.failure,
            outcome=BotRun.Outcome.FAILED,
            usage=usage,
            **sent,
        )
    answer = attempt.answer
    if answer.hand_off:
        reason = _("The bot could not answer from the knowledge base.")
        if answer.reason:
            reason = f"{reason} {answer.reason}"
        return _hand_off(message, profile=profile, reason=reason, usage=usage, **sent)
    return _send(message, profile=profile, text=answer.text, usage=usage, **sent)


def _skip_reason(message: Message, profile) -> str:
    conversation = message.conversation
    contact = conversation.contact
    if profile is None or not profile.enabled:
        return _("The bot is switched off.")
    if not conversation.bot_active:
        return _("The bot stepped back from this conversation.")
    if conversation.assignee_id:
        return _("A person is assigned to this conversation.")
    later = Message.objects.filter(
        conversation_id=conversation.pk,
        direction=Message.Direction.INBOUND,
        created_at__gt=message.created_at,
    )
    if later.exists():
        return _("A later message of the customer is answered instead.")
    if contact.is_processing_restricted:
        return _("The contact restricted the processing of their data.")
    decision = can_message(contact, message.channel, Purpose.TRANSACTIONAL)
    if not decision.allowed:
        return decision.detail
    return ""


def _record(message: Message, **values) -> tuple[BotRun, bool]:
    """The message's run, created with `values` unless a concurrent run recorded it first
    (get_or_create takes care of that race)."""
    return BotRun.objects.get_or_create(
        inbound_message=message,
        defaults={"conversation_id": message.conversation_id, **values},
    )


def _hand_off(
    message: Message,
    *,
    reason: str,
    profile=None,
    outcome=BotRun.Outcome.HANDED_OFF,
    **values,
):
    """Step back for a person; with `profile`, tell the customer so in its hand-off message
    (a failed send of the bot's own answer passes none: that send would fail too)."""
    from channels_app.services.conversations import hand_off

    with transaction.atomic():
        run, created = _record(message, outcome=outcome, reason=reason[:200], **values)
        if created:
            hand_off(conversation=message.conversation, reason=reason)
            if profile is not None and profile.handoff_message.strip():
                _tell_customer(message, text=profile.handoff_message.strip())
    return run


def _tell_customer(message: Message, *, text: str) -> Message | None:
    """The hand-off message, through the one send path (the gate and window apply). A refusal
    is logged: the hand-off itself stands, and agents see the conversation waiting."""
    from channels_app.services.sending import InvalidMessage, SendRefused, send_message

    try:
        with transaction.atomic():
            return send_message(
                conversation=message.conversation,
                body=text,
                purpose=Purpose.TRANSACTIONAL,
                sender_kind=Message.SenderKind.BOT,
                idempotency_key=f"bot-handoff-{message.pk}",
            )
    except (SendRefused, InvalidMessage) as exc:
        logger.info("hand-off message for message %s not sent: %s", message.pk, exc)
        return None


def _send(message: Message, *, profile, text: str, **values) -> BotRun:
    from channels_app.services.sending import InvalidMessage, SendRefused, send_message

    conversation = message.conversation
    if profile.greeting.strip() and not _bot_answered_before(conversation):
        text = f"{profile.greeting.strip()}\n\n{text}"
    try:
        with transaction.atomic():
            reply = send_message(
                conversation=conversation,
                body=text,
                purpose=Purpose.TRANSACTIONAL,
                sender_kind=Message.SenderKind.BOT,
                idempotency_key=f"bot-reply-{message.pk}",
            )
            run, _created = _record(
                message, outcome=BotRun.Outcome.ANSWERED, reply_message=reply, **values
            )
            return run
    except (SendRefused, InvalidMessage) as exc:
        detail = getattr(exc, "detail", str(exc))
        return _hand_off(
            message,
            reason=_("The bot's answer could not be sent: %(detail)s") % {"detail": detail},
            outcome=BotRun.Outcome.FAILED,
            **values,
        )


def _bot_answered_before(conversation) -> bool:
    return Message.objects.filter(
        conversation_id=conversation.pk, sender_kind=Message.SenderKind.BOT
    ).exists()


# --- The "try it" box -----------------------------------------------------------------------


@dataclass(frozen=True)
class TryResult:
    chunks: list[RetrievedChunk]
    answer: providers.BotAnswer | None
    failure: str
    provider: str
    model: str
    cost: Decimal


def try_question(*, question: str, profile) -> TryResult:
    """What the bot would answer `question` with, as the only message of a conversation."""
    chunks = retrieve(question=question, limit=settings.BOT_CONTEXT_CHUNKS)
    config = providers.config_for(profile)
    provider = providers.LOCAL if config.is_local else providers.OPENAI
    if not metering.has_tokens():
        used_up = _("The bot's token balance is used up.")
        return TryResult(chunks, None, used_up, provider, config.model, Decimal(0))
    request = build_request(
        profile=profile,
        business=require_current_tenant().name,
        question=question,
        history=[Message(direction=Message.Direction.INBOUND, body=question)],
        chunks=chunks,
        config=config,
    )
    attempt = ask(request, config=config, profile=profile, purpose=AIUsage.Purpose.TRY_IT)
    cost = sum((usage.cost for usage in attempt.usages), Decimal(0))
    return TryResult(chunks, attempt.answer, attempt.failure, provider, config.model, cost)
