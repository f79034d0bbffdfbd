"""The per-channel token bucket, in Redis (shared by every worker) and in memory (development).

Several "workers" are threads each taking slots from the same bucket and sending when their
slot comes: together they never exceed the channel's rate.
"""

from __future__ import annotations

import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings

from channels_app import ratelimit
from channels_app.models import Channel
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

RATE_LIMIT_TEST_REDIS_DB = 14


def _redis_url() -> str:
    parts = urlsplit(django_settings.REDIS_URL)
    return urlunsplit(parts._replace(path=f"/{RATE_LIMIT_TEST_REDIS_DB}"))


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.needs_redis)])
def buckets(request, settings):
    """Each test runs against both backends, with keys of its own."""
    settings.RATE_LIMIT_REDIS_URL = "memory" if request.param == "memory" else _redis_url()
    settings.RATE_LIMIT_KEY_PREFIX = f"test-rate-{uuid.uuid4().hex}"
    ratelimit.reset()
    yield request.param
    ratelimit.reset()


def channel_at(tenant, rate):
    return ChannelFactory(tenant=tenant, twilio_sms=True, rate_limit_per_second=rate)


def test_a_full_bucket_lets_one_seconds_worth_go_at_once_then_books_slots(tenant_a, buckets):
    channel = channel_at(tenant_a, 5)

    first = [ratelimit.reserve(channel) for _ in range(5)]
    sixth = ratelimit.reserve(channel)
    seventh = ratelimit.reserve(channel)

    assert all(r.send_now for r in first)
    assert sixth.reserved and 0.15 < sixth.wait <= 0.2
    assert seventh.reserved and 0.35 < seventh.wait <= 0.4


def test_the_bucket_refills_with_time(tenant_a, buckets):
    channel = channel_at(tenant_a, 10)
    for _ in range(10):
        ratelimit.reserve(channel)

    time.sleep(0.35)  # three tokens back

    assert [ratelimit.reserve(channel).send_now for _ in range(4)] == [True, True, True, False]


def test_channels_have_buckets_of_their_own(tenant_a, buckets):
    slow, other = channel_at(tenant_a, 1), channel_at(tenant_a, 1)

    assert ratelimit.reserve(slow).send_now
    assert not ratelimit.reserve(slow).send_now
    assert ratelimit.reserve(other).send_now


def test_the_default_rate_is_the_providers_published_one(tenant_a, buckets):
    channel = ChannelFactory(tenant=tenant_a, twilio_sms=True)  # 1 message/s by default
    assert channel.effective_rate_per_second == Channel.DEFAULT_RATE_PER_SECOND["twilio_sms"]

    assert ratelimit.reserve(channel).send_now
    assert 0.9 < ratelimit.reserve(channel).wait <= 1.0


def test_nothing_is_booked_beyond_the_horizon(tenant_a, buckets, settings):
    settings.RATE_LIMIT_HORIZON_SECONDS = 2
    channel = channel_at(tenant_a, 1)

    booked = [ratelimit.reserve(channel) for _ in range(3)]
    refused = ratelimit.reserve(channel)

    assert [r.reserved for r in booked] == [True, True, True]
    assert not refused.reserved
    assert 0.9 < refused.wait <= 1.0  # about when a slot within the horizon frees up
    # A refusal takes nothing: the next slot is still the fourth one.
    time.sleep(1.05)
    fourth = ratelimit.reserve(channel)
    assert fourth.reserved and 1.85 < fourth.wait <= 2.0


def test_two_workers_sharing_the_bucket_stay_within_the_rate(tenant_a, buckets):
    rate, per_worker = 5, 10
    channel = channel_at(tenant_a, rate)
    sent: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(per_worker):
            reservation = ratelimit.reserve(channel)
            while not reservation.reserved:
                time.sleep(reservation.wait)
                reservation = ratelimit.reserve(channel)
            time.sleep(reservation.wait)
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(sent) == 2 * per_worker
    sent.sort()
    # The first second's burst, then one every 1/rate seconds: 20 messages take >= 3 s ...
    assert sent[-1] - started >= (2 * per_worker - rate) / rate - 0.05
    # ... and no one-second window holds more than the burst plus the refill (with a margin
    # for thread scheduling).
    for i, moment in enumerate(sent):
        in_window = [t for t in sent[i:] if t - moment < 1.0]
        assert len(in_window) <= 2 * rate


@pytest.mark.needs_redis
def test_redis_keys_expire_once_the_bucket_would_be_full_again(tenant_a, settings):
    import redis

    settings.RATE_LIMIT_REDIS_URL = _redis_url()
    settings.RATE_LIMIT_KEY_PREFIX = f"test-rate-{uuid.uuid4().hex}"
    channel = channel_at(tenant_a, 2)

    ratelimit.reserve(channel)

    client = redis.Redis.from_url(_redis_url())
    key = f"{settings.RATE_LIMIT_KEY_PREFIX}:{channel.tenant_id}:{channel.pk}"
    try:
        assert client.exists(key)
        assert 0 < client.pttl(key) <= 2000
    finally:
        client.delete(key)
        client.close()


def test_an_unreachable_redis_postpones_delivery_instead_of_losing_it(
    tenant_a, settings, django_capture_on_commit_callbacks
):
    from channels_app.models import Message
    from channels_app.services.delivery import Delivery, deliver
    from channels_app.services.sending import send_message
    from tenants.context import tenant_context
    from tests.channels.sending_support import conversation_on

    settings.RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    channel = ChannelFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        message = send_message(
            conversation=conversation_on(channel),
            body="Hello",
            purpose="transactional",
            sender_kind=Message.SenderKind.AGENT,
        )

        result = deliver(message.pk)

        assert result.outcome == Delivery.RETRY
        assert result.retry_in >= 10
        message.refresh_from_db()
        assert message.status == Message.Status.QUEUED
        assert message.attempts == 0
