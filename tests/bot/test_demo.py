"""The demo: `seed_demo` switches the clinic's bot on with a knowledge base, offline."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import TestCase

from channels_app.bot.demo import DEMO_DOCUMENTS, DEMO_TOKENS
from channels_app.bot.models import (
    BotProfile,
    BotRun,
    KnowledgeChunk,
    KnowledgeDocument,
    TokenBalance,
)
from channels_app.models import Channel, Message
from channels_app.providers.sandbox import signed_request
from channels_app.services.inbound import receive_webhook
from tenants.context import tenant_context
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def seed():
    call_command("seed_demo", stdout=io.StringIO())


def test_seeding_twice_gives_one_bot_one_knowledge_base_and_one_balance(no_openai_key):
    seed()
    seed()

    with tenant_context(Tenant.objects.get(slug="demo")):
        assert BotProfile.objects.get().enabled
        assert KnowledgeDocument.objects.count() == len(DEMO_DOCUMENTS)
        chunks = KnowledgeChunk.objects.count()
        assert chunks >= len(DEMO_DOCUMENTS)
        assert TokenBalance.objects.get().tokens_remaining == DEMO_TOKENS


def test_the_demo_bot_answers_a_simulated_customer_with_no_account(no_openai_key):
    seed()
    tenant = Tenant.objects.get(slug="demo")
    with tenant_context(tenant):
        channel = Channel.objects.get(kind=Channel.Kind.SANDBOX)
        event = {
            "type": "message",
            "id": "sbx-in-demo-bot-test",
            "from": "+15555550199",
            "name": "Sam",
            "body": "How much is teeth whitening?",
        }
        with TestCase.captureOnCommitCallbacks(execute=True):
            receive_webhook(channel=channel, request=signed_request(channel, [event]))
        run = BotRun.objects.select_related("reply_message").get(
            inbound_message__provider_message_id="sbx-in-demo-bot-test"
        )
        reply = run.reply_message

    assert run.outcome == BotRun.Outcome.ANSWERED
    assert reply.sender_kind == Message.SenderKind.BOT
    assert reply.body.startswith("Hi! This is the clinic's assistant.")
    assert "290 euros" in reply.body
