"""Delivery: hand a queued message to its provider, exactly once.

`deliver(message_id)` is what the `deliver_message` task runs; it is safe to run any number of
times for the same message, concurrently too:

- it claims the message with one conditional UPDATE (queued -> sending); a run that finds it
  claimed, sent or failed does nothing;
- it asks the consent gate again just before sending (a STOP may have arrived since the message
  was queued) and takes a token from the channel's rate limit;
- a provider error is transient (back to queued, retried with exponential backoff and jitter
  until `DELIVERY_MAX_ATTEMPTS`), permanent (failed with the provider's code and reason; an
  "unsubscribed" error records the opt-out) or ambiguous (the request may have arrived);
- when the request may have reached the provider (a timeout after sending, or a worker that
  died between the provider call and the status write, found later as a stale `sending`
  claim), the provider is asked whether it has the message. If it has, its id is adopted; if
  it cannot tell, the message is marked failed and *not* sent again: a duplicate to a customer
  is worse than a failure an agent can see and resend.

`deliver` returns what happened; "retry in N seconds" is turned into a Celery retry by the task
(tests call `deliver` again instead).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app import ratelimit
from channels_app.models import Channel, Message
from channels_app.providers.base import ProviderError, provider_for
from privacy.gate import can_message
from privacy.models import Purpose
from tenants.context import platform_access

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 6
# A claim older than this is a send interrupted by a dead worker (provider calls time out long
# before it).
DEFAULT_LEASE_SECONDS = 120
# A queued message untouched for this long lost its task (e.g. the broker was down when the
# send was committed); the periodic recovery enqueues it again.
DEFAULT_REQUEUE_AFTER_SECONDS = 600
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 15 * 60.0
RECOVERY_BATCH = 500

# Provider codes that mean the customer unsubscribed.
OPT_OUT_CODES = frozenset({"21610"})  # Twilio: replied STOP to the number
MARKETING_OPT_OUT_CODES = frozenset({"131050"})  # Meta: stopped marketing messages
DELIVERY_UNKNOWN = "delivery_unknown"


@dataclass(frozen=True)
class Delivery:
    """What one run of `deliver` did."""

    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"
    SKIPPED = "skipped"

    outcome: str
    detail: str = ""
    retry_in: float | None = None  # RETRY: seconds until the next run
    slot: float | None = None  # RETRY: a reserved rate-limit slot (epoch seconds) to use then


def max_attempts() -> int:
    return int(getattr(settings, "DELIVERY_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


def lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "DELIVERY_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def requeue_after() -> timedelta:
    seconds = getattr(settings, "DELIVERY_REQUEUE_AFTER_SECONDS", DEFAULT_REQUEUE_AFTER_SECONDS)
    return timedelta(seconds=seconds)


def backoff(attempt: int, *, retry_after: float | None = None) -> float:
    """Seconds before retry `attempt` (1, 2, ...): exponential, capped, with jitter."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    # Half fixed, half random: retries of many messages after one outage spread out.
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - not a secret
    return max(delay, retry_after or 0.0)


def deliver(message_id: int, *, slot: float | None = None) -> Delivery:
    """Send the queued message `message_id` through its channel's provider, at most once."""
    message = _load(message_id)
    if message is None:
        return Delivery(Delivery.SKIPPED, "no such outbound message")
    if message.status == Message.Status.SENDING:
        if message.status_changed_at > timezone.now() - lease():
            return Delivery(Delivery.SKIPPED, "another run is sending it")
        return _resolve_interrupted(message)
    if message.status != Message.Status.QUEUED:
        return Delivery(Delivery.SKIPPED, f"already {message.status}")

    channel, contact = message.channel, message.conversation.contact
    # Messages written by send_message always carry their purpose; anything else is a reply.
    decision = can_message(
        contact, channel, message.purpose or Purpose.TRANSACTIONAL, sender_kind=message.sender_kind
    )
    if not decision.allowed:
        return _refused_before_delivery(message, decision)

    waited = _wait_for_rate_limit(message, slot)
    if waited is not None:
        return waited

    claimed = Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
        status=Message.Status.SENDING,
        attempts=F("attempts") + 1,
        status_changed_at=timezone.now(),
    )
    if not claimed:
        return Delivery(Delivery.SKIPPED, "claimed by another run")
    message.refresh_from_db(fields=["status", "attempts", "status_changed_at"])

    provider = provider_for(channel)
    try:
        result = provider.send(message, to_phone=contact.phone)
    except ProviderError as exc:
        return _provider_failed(message, exc)
    except Exception:
        # A bug or an unexpected error inside the adapter: the request may have gone out.
        logger.exception("sending message %s raised unexpectedly", message.pk)
        return _resolve_interrupted(message, claimed_now=True)
    return _record_sent(message, result.provider_message_id, result.status)


def _load(message_id: int) -> Message | None:
    return (
        Message.objects.select_related("channel", "conversation__contact", "template")
        .filter(pk=message_id, direction=Message.Direction.OUTBOUND)
        .first()
    )


# --- the rate limit -------------------------------------------------------------------------


def _wait_for_rate_limit(message: Message, slot: float | None) -> Delivery | None:
    """None when the message may go now; otherwise when to come back (not an attempt)."""
    if slot is not None:
        early = slot - time.time()
        if early <= 0.05:
            return None  # our reserved slot has come
        return _defer(message, early, slot=slot)
    try:
        reservation = ratelimit.reserve(message.channel)
    except ratelimit.UNAVAILABLE as exc:
        logger.warning("rate limit store unavailable (%s); delivery postponed", exc)
        return _defer(message, 10 + random.uniform(0, 10), slot=None)  # noqa: S311
    if reservation.send_now:
        return None
    if reservation.reserved:
        return _defer(message, reservation.wait, slot=time.time() + reservation.wait)
    # Booked beyond the horizon: come back later, spread out so waiting tasks do not all
    # ask at the same moment.
    wait = min(reservation.wait, ratelimit.horizon())
    return _defer(message, wait + random.uniform(0, 30), slot=None)  # noqa: S311


def _defer(message: Message, seconds: float, *, slot: float | None) -> Delivery:
    # Still in hand: the periodic recovery leaves recently touched queued messages alone.
    Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
        status_changed_at=timezone.now()
    )
    return Delivery(Delivery.RETRY, "rate limited", retry_in=max(seconds, 0.0), slot=slot)


# --- outcomes -------------------------------------------------------------------------------


def _record_sent(message: Message, provider_message_id: str, status: str) -> Delivery:
    if Message.STATUS_RANK.get(status, -1) <= Message.STATUS_RANK[Message.Status.SENDING]:
        status = Message.Status.ACCEPTED
    now = timezone.now()
    try:
        with transaction.atomic():
            Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
                provider_message_id=provider_message_id,
                status=status,
                sent_at=now,
                status_changed_at=now,
                error_code="",
                error_reason="",
            )
    except IntegrityError:
        # The provider id already belongs to another of our messages: never adopt it twice.
        logger.error(
            "provider id %s of message %s is already taken", provider_message_id, message.pk
        )
        return _fail(
            message,
            code=DELIVERY_UNKNOWN,
            reason=_("The provider returned an id that belongs to another message."),
            from_status=Message.Status.SENDING,
        )
    message.refresh_from_db()
    _apply_pending_status_events(message)
    return Delivery(Delivery.SENT, provider_message_id)


def _apply_pending_status_events(message: Message) -> None:
    # Status callbacks that arrived before we recorded the provider id are applied now.
    from channels_app.services.inbound import apply_pending_status_events

    apply_pending_status_events(message)


def _fail(message: Message, *, code: str, reason: str, from_status: str) -> Delivery:
    now = timezone.now()
    Message.objects.filter(pk=message.pk, status=from_status).update(
        status=Message.Status.FAILED,
        error_code=code[:32],
        error_reason=reason,
        status_changed_at=now,
    )
    Channel.objects.filter(pk=message.channel_id).update(
        last_error=_("Message %(id)s: %(reason)s") % {"id": message.pk, "reason": reason},
        last_error_at=now,
    )
    return Delivery(Delivery.FAILED, f"{code}: {reason}")


def _refused_before_delivery(message: Message, decision) -> Delivery:
    if decision.reason in ("opted_out", "marketing_withdrawn"):
        reason = _("The customer opted out before delivery; the message was not sent. %(why)s")
    else:
        reason = _("Not sent: the consent check refused it before delivery. %(why)s")
    return _fail(
        message,
        code=decision.reason,
        reason=reason % {"why": decision.detail},
        from_status=Message.Status.QUEUED,
    )


def _provider_failed(message: Message, exc: ProviderError) -> Delivery:
    if exc.ambiguous:
        return _resolve_interrupted(message, claimed_now=True, cause=exc.reason)
    if exc.permanent:
        _record_provider_opt_out(message, exc)
        return _fail(
            message,
            code=exc.code or "provider_error",
            reason=exc.reason,
            from_status=Message.Status.SENDING,
        )
    if message.attempts >= max_attempts():
        return _fail(
            message,
            code=exc.code or "transient",
            reason=_("Gave up after %(n)d attempts: %(reason)s")
            % {"n": message.attempts, "reason": exc.reason},
            from_status=Message.Status.SENDING,
        )
    # Transient: back in the queue; this attempt counts.
    now = timezone.now()
    Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.QUEUED,
        error_code=exc.code[:32],
        error_reason=exc.reason,
        status_changed_at=now,
    )
    Channel.objects.filter(pk=message.channel_id).update(
        last_error=_("Message %(id)s (will retry): %(reason)s")
        % {"id": message.pk, "reason": exc.reason},
        last_error_at=now,
    )
    delay = backoff(message.attempts, retry_after=exc.retry_after)
    return Delivery(Delivery.RETRY, f"{exc.code}: {exc.reason}", retry_in=delay)


def _record_provider_opt_out(message: Message, exc: ProviderError) -> None:
    from privacy import services as privacy

    contact, channel = message.conversation.contact, message.channel
    if exc.code in OPT_OUT_CODES:
        privacy.record_provider_opt_out(
            contact=contact, channel=channel, message=message, code=exc.code, reason=exc.reason
        )
    elif exc.code in MARKETING_OPT_OUT_CODES:
        privacy.record_provider_marketing_opt_out(
            contact=contact, channel=channel, message=message, code=exc.code, reason=exc.reason
        )


def _resolve_interrupted(
    message: Message, *, claimed_now: bool = False, cause: str = ""
) -> Delivery:
    """The request may have reached the provider: adopt its id if it has one, never resend."""
    if not claimed_now:
        # A stale claim: take it over (one recovering run wins), with a fresh lease.
        taken = Message.objects.filter(
            pk=message.pk,
            status=Message.Status.SENDING,
            status_changed_at=message.status_changed_at,
        ).update(status_changed_at=timezone.now())
        if not taken:
            return Delivery(Delivery.SKIPPED, "another run is resolving it")
    contact = message.conversation.contact
    provider_message_id = provider_for(message.channel).find_sent(message, to_phone=contact.phone)
    if provider_message_id:
        return _record_sent(message, provider_message_id, Message.Status.SENT)
    why = f" ({cause})" if cause else ""
    return _fail(
        message,
        code=DELIVERY_UNKNOWN,
        reason=_(
            "The send was interrupted%(why)s and the provider cannot confirm whether it has "
            "the message: it may or may not have reached the customer. It was not sent again, "
            "to avoid a duplicate; check with the customer or send it again."
        )
        % {"why": why},
        from_status=Message.Status.SENDING,
    )


# --- periodic recovery ----------------------------------------------------------------------


def stuck_messages(*, now=None, limit: int = RECOVERY_BATCH) -> list[tuple[int, int]]:
    """(tenant id, message id) of outbound messages whose delivery task was lost, all tenants:
    queued and untouched for a while, or claimed by a run that never finished."""
    now = now or timezone.now()
    with platform_access():
        return list(
            Message.unscoped.filter(direction=Message.Direction.OUTBOUND)
            .filter(
                Q(status=Message.Status.QUEUED, status_changed_at__lt=now - requeue_after())
                | Q(status=Message.Status.SENDING, status_changed_at__lt=now - lease())
            )
            .order_by("status_changed_at")
            .values_list("tenant_id", "pk")[:limit]
        )


def recover_stuck_messages(*, now=None) -> int:
    """Enqueue delivery again for every stuck message; `deliver` sorts out each one."""
    from channels_app.tasks import deliver_message

    stuck = stuck_messages(now=now)
    for tenant_id, message_id in stuck:
        deliver_message.delay(tenant_id, message_id)
    if stuck:
        logger.warning("re-enqueued delivery of %d stuck message(s)", len(stuck))
    return len(stuck)
