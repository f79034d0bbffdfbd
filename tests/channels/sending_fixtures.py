"""Fixtures of the sending and delivery tests.

tests/conftest.py loads them for the whole suite; a module that wants them marks itself
`pytest.mark.usefixtures("delivery_settings")`. Nothing here is autouse, so loading them
changes no other test.
"""

from __future__ import annotations

import pytest

from channels_app import ratelimit
from salesos.celery import app as celery_app
from tests.factories import ChannelFactory


@pytest.fixture
def delivery_settings(settings):
    """Eager Celery (as `make run`), in-process rate limits, fast retries."""
    # Read before the override: Celery reads Django's settings on first access.
    previous = celery_app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.RATE_LIMIT_REDIS_URL = "memory"
    settings.PUBLIC_BASE_URL = "https://app.example.com"
    settings.DELIVERY_MAX_ATTEMPTS = 4
    celery_app.conf.task_always_eager = True
    ratelimit.reset()
    yield settings
    ratelimit.reset()
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def twilio_channel(tenant_a, provider_stub):
    channel = ChannelFactory(tenant=tenant_a, twilio=True)
    provider_stub.twilio_account(channel.twilio_account_sid, channel.twilio_auth_token)
    return channel


@pytest.fixture
def sms_channel(tenant_a, provider_stub):
    channel = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    provider_stub.twilio_account(channel.twilio_account_sid, channel.twilio_auth_token)
    return channel


@pytest.fixture
def meta_channel(tenant_a, provider_stub):
    channel = ChannelFactory(tenant=tenant_a, meta=True)
    provider_stub.meta_phone_number(channel.meta_phone_number_id, channel.meta_access_token)
    return channel
