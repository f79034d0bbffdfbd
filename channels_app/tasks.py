"""Celery tasks of the messaging pipeline: thin, tenant id first, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from tenants.context import for_tenant


@shared_task(acks_late=True)
@for_tenant
def process_inbound(tenant_id: int, message_id: int) -> None:
    """Follow-up work on a new customer message (bot, automations), after it is stored."""
    from channels_app.services.inbound import run_follow_ups_for

    run_follow_ups_for(message_id=message_id)


# --- Delivery -------------------------------------------------------------------------------

# A rate-limit wait this short is slept in-process when tasks run eagerly (development).
EAGER_MAX_WAIT_SECONDS = 2.0


@shared_task(acks_late=True, max_retries=None)
@for_tenant
def deliver_message(tenant_id: int, message_id: int, slot: float | None = None) -> str:
    """Send one queued message (safe to run twice: `deliver` claims it atomically)."""
    import time

    from channels_app.services import delivery

    result = delivery.deliver(message_id, slot=slot)
    if result.outcome != delivery.Delivery.RETRY:
        return result.outcome
    if deliver_message.request.is_eager:
        # No broker to hold a delayed retry: short rate-limit waits are slept here; a longer
        # wait leaves the message queued for `recover_stuck_messages`.
        while result.outcome == delivery.Delivery.RETRY and (
            result.retry_in <= EAGER_MAX_WAIT_SECONDS
        ):
            time.sleep(result.retry_in)
            result = delivery.deliver(message_id, slot=result.slot)
        return result.outcome
    raise deliver_message.retry(
        args=(tenant_id, message_id),
        kwargs={"slot": result.slot},
        countdown=result.retry_in,
    )


@shared_task(acks_late=True)
def recover_stuck_messages() -> int:
    """Beat: enqueue delivery again for messages whose task was lost (all tenants)."""
    from channels_app.services import delivery

    return delivery.recover_stuck_messages()


# --- Templates ------------------------------------------------------------------------------


@shared_task(acks_late=True)
@for_tenant
def sync_templates(tenant_id: int, channel_id: int) -> dict | None:
    """Refresh a channel's templates from the provider (an upsert: safe to run twice)."""
    from dataclasses import asdict

    from channels_app.models import Channel
    from channels_app.providers.base import ProviderError
    from channels_app.services import channels

    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return None  # deleted meanwhile
    try:
        return asdict(channels.sync_templates(channel=channel))
    except ProviderError as exc:
        channels.record_sync_failure(channel=channel, reason=exc.reason)
        return None


# --- Bot ------------------------------------------------------------------------------------


@shared_task(acks_late=True)
@for_tenant
def bot_reply(tenant_id: int, message_id: int) -> str | None:
    """The bot's answer to one customer message (safe to run twice: one BotRun per message)."""
    from channels_app.bot.pipeline import reply_to_message

    run = reply_to_message(message_id=message_id)
    return run.outcome if run is not None else None
