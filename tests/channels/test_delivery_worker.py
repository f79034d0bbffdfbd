"""A real Celery worker delivers through the real Twilio client to the provider stub.

`send_message` commits and enqueues `deliver_message` on a real Redis broker; a
`celery -A salesos worker` subprocess on the same PostgreSQL test database picks it up, claims
the message, takes its slot from the Redis rate limit and sends it with the official `twilio`
client to the stub running in this process. Retries (a provider 5xx, a rate-limit slot) go
through Celery's own delayed retry. The worker gets a queue of its own on Redis DB 15.
"""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.conf import settings

from channels_app.models import Message
from channels_app.services.sending import send_message
from privacy.models import Purpose
from tenants.context import tenant_context
from tests.celery_worker import broker_url, running_worker
from tests.channels.sending_support import conversation_on
from tests.factories import ChannelFactory, MessageFactory, TenantFactory

pytestmark = [
    pytest.mark.postgres_only,  # the worker shares the test database: not in-memory SQLite
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def worker(tmp_path, provider_stub):
    # The worker reaches the stub, shares the Redis rate limit and decrypts the channel's
    # secrets with this process's keys.
    env = {
        "TWILIO_API_BASE_URL": provider_stub.twilio_base_url,
        "META_GRAPH_BASE_URL": provider_stub.meta_base_url,
        "RATE_LIMIT_REDIS_URL": broker_url(),
        "FIELD_ENCRYPTION_KEYS": settings.FIELD_ENCRYPTION_KEYS,
    }
    with running_worker(tmp_path, env=env) as running:
        yield running


@pytest.fixture
def business(provider_stub):
    tenant = TenantFactory(name="Worker Clinic", slug=f"worker-clinic-{uuid.uuid4().hex[:6]}")
    channel = ChannelFactory(tenant=tenant, twilio=True)
    provider_stub.twilio_account(channel.twilio_account_sid, channel.twilio_auth_token)
    return tenant, channel


def send(conversation, body, **kwargs):
    with tenant_context(conversation.tenant):
        return send_message(
            conversation=conversation,
            body=body,
            purpose=Purpose.TRANSACTIONAL,
            sender_kind=Message.SenderKind.AGENT,
            **kwargs,
        )


def status_of(message):
    with tenant_context(message.tenant):
        message.refresh_from_db()
    return message


def bodies(stub):
    return [s.get("Body") for s in stub.sends("twilio")]


def test_the_worker_delivers_a_queued_message_once(worker, business, provider_stub):
    tenant, channel = business
    conversation = conversation_on(channel)

    message = send(conversation, "Your crown is ready")

    worker.wait_for(
        lambda: status_of(message).status == Message.Status.ACCEPTED, "the message to be sent"
    )
    (sent,) = provider_stub.sends("twilio")
    assert sent["Body"] == "Your crown is ready"
    assert status_of(message).provider_message_id == sent["message_id"]

    # A redelivered task does nothing: once a later message has gone (the worker runs one task
    # at a time), the first one is still at the provider once.
    from channels_app.tasks import deliver_message

    deliver_message.delay(tenant.pk, message.pk)
    later = send(conversation, "See you on Monday")
    worker.wait_for(lambda: status_of(later).status == Message.Status.ACCEPTED, "the later one")
    assert bodies(provider_stub) == ["Your crown is ready", "See you on Monday"]
    assert status_of(message).attempts == 1
    assert "NoActiveTenant" not in worker.output()
    assert "Traceback" not in worker.output()


def test_the_worker_retries_a_provider_5xx_with_a_delayed_retry(worker, business, provider_stub):
    _, channel = business
    provider_stub.fail_next(1, status=503)

    message = send(conversation_on(channel), "Try again later")

    worker.wait_for(
        lambda: status_of(message).status == Message.Status.ACCEPTED, "the retried send"
    )
    assert bodies(provider_stub) == ["Try again later"]
    assert status_of(message).attempts == 2
    assert "Retry in" in worker.output()


def test_the_worker_paces_messages_to_the_channel_rate(worker, business, provider_stub):
    _, channel = business
    with tenant_context(channel.tenant):
        channel.rate_limit_per_second = 1
        channel.save()
    conversation = conversation_on(channel)
    # sent_at is written when Twilio has answered; a first send through another channel warms
    # the worker's Twilio client up, so the paced sends below are timed fairly.
    other = ChannelFactory(tenant=channel.tenant, twilio=True)
    provider_stub.twilio_account(other.twilio_account_sid, other.twilio_auth_token)
    warm_up = send(conversation_on(other), "Warm-up")
    worker.wait_for(lambda: status_of(warm_up).status == Message.Status.ACCEPTED, "the warm-up")

    messages = [send(conversation, f"Reminder {n}") for n in range(3)]

    worker.wait_for(
        lambda: all(status_of(m).status == Message.Status.ACCEPTED for m in messages),
        "three paced sends",
    )
    times = sorted(status_of(m).sent_at for m in messages)
    assert (times[2] - times[0]).total_seconds() >= 1.6  # unpaced: a few milliseconds
    assert all((b - a).total_seconds() >= 0.6 for a, b in itertools.pairwise(times))
    assert sorted(bodies(provider_stub)) == ["Reminder 0", "Reminder 1", "Reminder 2", "Warm-up"]
    assert all(status_of(m).attempts == 1 for m in messages)


def test_two_workers_racing_over_the_same_messages_send_each_once_within_the_rate(
    business, provider_stub, settings
):
    """Two delivery workers (threads, each with its own database connection) both try every
    message of a burst: each message reaches the provider once, at the channel's rate."""
    import random
    import threading
    import time

    from django.db import connection

    from channels_app import ratelimit
    from channels_app.services.delivery import Delivery, deliver
    from tests.channels.test_ratelimit import _redis_url

    settings.RATE_LIMIT_REDIS_URL = _redis_url()
    settings.RATE_LIMIT_KEY_PREFIX = f"test-rate-{uuid.uuid4().hex}"
    tenant, channel = business
    rate, count = 4, 12
    with tenant_context(tenant):
        channel.rate_limit_per_second = rate
        channel.save()
    conversation = conversation_on(channel)
    # Queued as send_message leaves them, without enqueueing a task: the two threads are the
    # only workers.
    ids = [
        MessageFactory(
            tenant=tenant,
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            sender_kind=Message.SenderKind.CAMPAIGN,
            purpose=Purpose.TRANSACTIONAL,
            body=f"Burst {n}",
            status=Message.Status.QUEUED,
            provider_message_id="",
            idempotency_key=f"burst-{n}",
        ).pk
        for n in range(count)
    ]
    errors = []

    def worker(seed):
        order = list(ids)
        random.Random(seed).shuffle(order)
        try:
            with tenant_context(tenant):
                for message_id in order:
                    result = deliver(message_id)
                    while result.outcome == Delivery.RETRY:
                        time.sleep(result.retry_in)
                        result = deliver(message_id, slot=result.slot)
        except Exception as exc:  # reported below, with the failing thread's error
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started

    assert not errors, errors
    assert sorted(bodies(provider_stub)) == sorted(f"Burst {n}" for n in range(count))
    with tenant_context(tenant):
        statuses = set(Message.objects.filter(pk__in=ids).values_list("status", flat=True))
        attempts = set(Message.objects.filter(pk__in=ids).values_list("attempts", flat=True))
    assert statuses == {Message.Status.ACCEPTED}
    assert attempts == {1}
    # One second's burst, then 1/rate apart: 12 at 4/s take at least 2 s.
    assert elapsed >= (count - rate) / rate - 0.1
    ratelimit.reset(channel)
