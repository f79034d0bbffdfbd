"""Fixtures of the bot tests: the fake OpenAI server, eager Celery, a bot switched on."""

from __future__ import annotations

import pytest

from channels_app import ratelimit
from salesos.celery import app as celery_app
from tenants.context import tenant_context
from tests.factories import BotProfileFactory, ChannelFactory, TokenBalanceFactory
from tests.fakes.openai_stub import OpenAIStub


@pytest.fixture(scope="session")
def openai_stub_server():
    with OpenAIStub() as stub:
        yield stub


@pytest.fixture
def openai_stub(openai_stub_server, settings):
    """The real `openai` client talks to the local fake server with the platform's key."""
    stub = openai_stub_server
    stub.reset()
    settings.OPENAI_API_KEY = "sk-platform-test-key"
    settings.OPENAI_BASE_URL = stub.base_url
    settings.OPENAI_MODEL = "gpt-4o-mini"
    settings.OPENAI_TIMEOUT_SECONDS = 0.5
    settings.OPENAI_MAX_RETRIES = 1
    yield stub
    stub.reset()


@pytest.fixture
def no_openai_key(settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: must not be called


@pytest.fixture(autouse=True)
def _eager(settings):
    previous = celery_app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.RATE_LIMIT_REDIS_URL = "memory"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    celery_app.conf.task_always_eager = True
    ratelimit.reset()
    yield
    ratelimit.reset()
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def channel(tenant_a):
    return ChannelFactory(tenant=tenant_a, name="Sandbox")


@pytest.fixture
def profile(tenant_a):
    with tenant_context(tenant_a):
        return BotProfileFactory(
            tenant=tenant_a,
            enabled=True,
            instructions="Answer questions about the clinic.",
            tone="warm",
            greeting="",
            working_hours={},
            max_failures=2,
        )


@pytest.fixture
def balance(tenant_a):
    return TokenBalanceFactory(tenant=tenant_a, tokens_remaining=10_000)
