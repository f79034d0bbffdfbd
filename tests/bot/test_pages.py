"""The bot pages as the team uses them: settings, the knowledge base, "try it", usage, the
inbox's "why the bot said this" and the dashboard's notice."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from channels_app.bot import knowledge
from channels_app.bot.models import AIUsage, BotProfile, KnowledgeChunk, KnowledgeDocument
from channels_app.bot.pipeline import reply_to_message
from tenants.context import tenant_context
from tenants.models import Role
from tests.bot import knowledge_base
from tests.bot.test_knowledge import docx_with
from tests.channels.sending_support import conversation_on, customer_sends
from tests.factories import AIUsageFactory, TokenBalanceFactory, member
from tests.test_pages import assert_no_third_party_code

pytestmark = pytest.mark.django_db


def url(name, tenant, **kwargs):
    return reverse(f"channels:{name}", kwargs={"tenant_slug": tenant.slug, **kwargs})


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


def profile_data(**changes):
    data = {
        "enabled": "on",
        "instructions": "Be helpful.",
        "tone": "friendly",
        "languages": "en",
        "greeting": "",
        "handoff_phrases": "operator\nhuman",
        "max_reply_chars": "500",
        "max_failures": "2",
        "mask_personal_data": "on",
        "model": "",
        "temperature": "0.3",
        "api_base_url": "",
        "working_hours_text": "mon-fri 09:00-18:00\nsat 10:00-14:00",
        "new_api_key": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_the_bot_page_shows_it_off_and_the_local_responder_by_default(
    owner_client, tenant_a, settings
):
    settings.OPENAI_API_KEY = ""
    response = owner_client.get(url("bot", tenant_a))
    html = response.content.decode()

    assert response.status_code == 200
    assert "The bot does not answer" in html
    assert "Local responder" in html
    assert "No AI provider is configured" in html
    assert_no_third_party_code(html, "bot")


def test_an_owner_switches_the_bot_on_with_working_hours(owner_client, tenant_a):
    response = owner_client.post(url("bot", tenant_a), profile_data())

    assert response.status_code == 302
    with tenant_context(tenant_a):
        profile = BotProfile.objects.get(channel__isnull=True)
    assert profile.enabled
    assert profile.working_hours == {
        "mon": [["09:00", "18:00"]],
        "tue": [["09:00", "18:00"]],
        "wed": [["09:00", "18:00"]],
        "thu": [["09:00", "18:00"]],
        "fri": [["09:00", "18:00"]],
        "sat": [["10:00", "14:00"]],
    }
    page = owner_client.get(url("bot", tenant_a)).content.decode()
    assert "The bot answers customers" in page
    assert "mon 09:00-18:00" in page


def test_bad_working_hours_are_a_form_error_and_nothing_is_saved(owner_client, tenant_a):
    response = owner_client.post(
        url("bot", tenant_a), profile_data(working_hours_text="weekdays 9 to 5")
    )

    assert response.status_code == 400
    assert "write it like" in response.content.decode()
    with tenant_context(tenant_a):
        assert not BotProfile.objects.get(channel__isnull=True).enabled


def test_a_business_api_key_is_stored_encrypted_and_never_shown(owner_client, tenant_a):
    owner_client.post(url("bot", tenant_a), profile_data(new_api_key="sk-own-secret-key"))

    with tenant_context(tenant_a):
        assert BotProfile.objects.get(channel__isnull=True).api_key == "sk-own-secret-key"
        with connection.cursor() as cursor:
            cursor.execute("SELECT api_key FROM channels_app_botprofile")
            [(raw,)] = cursor.fetchall()
    page = owner_client.get(url("bot", tenant_a)).content.decode()
    assert "sk-own-secret-key" not in page
    assert "A key of your own is set" in page
    assert raw and "sk-own-secret-key" not in raw


def test_agents_see_the_bot_but_cannot_change_it(client, tenant_a):
    client.force_login(member(tenant_a, role=Role.AGENT))

    page = client.get(url("bot", tenant_a))
    change = client.post(url("bot", tenant_a), profile_data())

    assert page.status_code == 200 and "Save the bot settings" not in page.content.decode()
    assert change.status_code == 403


def test_a_channel_gets_its_own_settings_and_can_drop_them(owner_client, tenant_a):
    from tests.factories import ChannelFactory

    channel = ChannelFactory(tenant=tenant_a, name="Shop WhatsApp")
    owner_client.post(url("bot", tenant_a), profile_data())

    page = url("bot_channel", tenant_a, channel_id=channel.pk)
    created = owner_client.post(page, {"create": "1"})
    saved = owner_client.post(page, profile_data(enabled=None))
    with tenant_context(tenant_a):
        override = BotProfile.objects.get(channel=channel)
    assert created.status_code == 302 and saved.status_code == 302
    assert override.enabled is False
    assert "Own settings: off" in owner_client.get(url("bot", tenant_a)).content.decode()

    owner_client.post(url("bot_channel_delete", tenant_a, channel_id=channel.pk))
    with tenant_context(tenant_a):
        assert not BotProfile.objects.filter(channel=channel).exists()


# --- Knowledge base -------------------------------------------------------------------------


def test_a_pasted_web_page_is_added_and_chunked(owner_client, tenant_a):
    response = owner_client.post(
        url("knowledge", tenant_a),
        {
            "title": "Prices page",
            "kind": "web_page",
            "source": "https://clinic.example/prices",
            "content": "A cleaning is 60 euros. Whitening is 250 euros.",
        },
    )

    assert response.status_code == 302
    with tenant_context(tenant_a):
        document = KnowledgeDocument.objects.get()
        assert document.kind == "web_page" and document.source == "https://clinic.example/prices"
        assert document.chunks.count() == 1
    listing = owner_client.get(url("knowledge", tenant_a)).content.decode()
    assert "Prices page" in listing


def test_an_empty_document_is_a_form_error(owner_client, tenant_a):
    response = owner_client.post(
        url("knowledge", tenant_a), {"title": "Nothing", "kind": "text", "content": ""}
    )

    assert response.status_code == 400
    assert "The document has no text." in response.content.decode()


def test_a_docx_upload_becomes_a_document(owner_client, tenant_a):
    upload = SimpleUploadedFile("prices.docx", docx_with("A cleaning is 60 euros."))

    response = owner_client.post(url("knowledge", tenant_a), {"upload": "1", "file": upload})

    assert response.status_code == 302
    with tenant_context(tenant_a):
        document = KnowledgeDocument.objects.get()
    assert document.title == "prices.docx" and document.kind == "file"
    assert "A cleaning is 60 euros." in document.content


def test_an_unsupported_upload_says_why(owner_client, tenant_a):
    upload = SimpleUploadedFile("photo.png", b"\x89PNG....")

    response = owner_client.post(url("knowledge", tenant_a), {"upload": "1", "file": upload})

    assert response.status_code == 400
    assert "Upload a .txt, .md, .pdf or .docx file." in response.content.decode()


def test_editing_and_deleting_a_document_from_its_page(owner_client, tenant_a):
    with tenant_context(tenant_a):
        document = knowledge.add_document(title="Hours", content="We open at nine.")
    page = url("knowledge_document", tenant_a, knowledge_document_id=document.pk)

    assert "We open at nine." in owner_client.get(page).content.decode()
    owner_client.post(page, {"title": "Hours", "content": "We open at ten."})
    with tenant_context(tenant_a):
        assert list(KnowledgeChunk.objects.values_list("text", flat=True)) == ["We open at ten."]

    owner_client.post(url("knowledge_document_delete", tenant_a, knowledge_document_id=document.pk))
    with tenant_context(tenant_a):
        assert not KnowledgeDocument.objects.exists() and not KnowledgeChunk.objects.exists()


# --- Try it ---------------------------------------------------------------------------------


def test_try_it_shows_the_chunks_found_and_the_local_answer(owner_client, tenant_a, settings):
    settings.OPENAI_API_KEY = ""
    with tenant_context(tenant_a):
        knowledge_base.load(tenant_a)

    response = owner_client.post(
        url("bot_try", tenant_a),
        {"question": "How much does a full service cost?"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()

    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="try-box">')
    assert "Servicing and repairs" in html
    assert "a full service costs 95 euros" in html
    assert "Local responder" in html
    with tenant_context(tenant_a):
        assert AIUsage.objects.get().purpose == AIUsage.Purpose.TRY_IT


def test_try_it_with_a_model_shows_its_answer_and_meters_it(owner_client, tenant_a, openai_stub):
    TokenBalanceFactory(tenant=tenant_a, tokens_remaining=10_000)
    openai_stub.answer("We are closed on Sundays.")

    html = owner_client.post(
        url("bot_try", tenant_a), {"question": "Open on Sunday?"}, headers={"HX-Request": "true"}
    ).content.decode()

    assert "We are closed on Sundays." in html and "gpt-4o-mini" in html
    assert openai_stub.bodies[0]["messages"][-1] == {"role": "user", "content": "Open on Sunday?"}


def test_try_it_without_a_question_is_a_form_error(owner_client, tenant_a):
    response = owner_client.post(url("bot_try", tenant_a), {"question": ""})

    assert response.status_code == 400
    assert "Write a question first." in response.content.decode()


# --- Usage and the dashboard ----------------------------------------------------------------


def test_the_usage_page_draws_the_month_and_totals_per_model(owner_client, tenant_a):
    when = datetime(2026, 11, 10, 12, 0, tzinfo=ZoneInfo("UTC"))
    AIUsageFactory(tenant=tenant_a, created_at=when, tokens_in=1000, tokens_out=200, cost=0.5)
    AIUsageFactory(tenant=tenant_a, created_at=when, tokens_in=500, tokens_out=100, cost=0.25)
    AIUsageFactory(tenant=tenant_a, created_at=datetime(2026, 10, 3, tzinfo=ZoneInfo("UTC")))

    response = owner_client.get(url("bot_usage", tenant_a) + "?month=2026-11")
    html = response.content.decode()

    assert response.status_code == 200
    assert "Usage in November 2026" in html
    assert html.count('class="chart-bar"') == 30
    assert "<title>10: 1800</title>" in html
    assert "<dd>1500</dd>" in html and "<dd>300</dd>" in html and "0.7500" in html
    assert_no_third_party_code(html, "usage")


def test_at_zero_tokens_the_dashboard_and_bot_page_say_the_bot_stopped(owner_client, tenant_a):
    owner_client.post(url("bot", tenant_a), profile_data())
    TokenBalanceFactory(tenant=tenant_a, tokens_remaining=0)

    home = owner_client.get(reverse("tenant:home", kwargs={"tenant_slug": tenant_a.slug}))
    bot_page = owner_client.get(url("bot", tenant_a))

    assert "The bot has stopped: its token balance is used up." in home.content.decode()
    assert "The bot has stopped: the token balance is used up." in bot_page.content.decode()


def test_with_tokens_left_the_dashboard_says_nothing_about_the_bot(owner_client, tenant_a):
    owner_client.post(url("bot", tenant_a), profile_data())
    TokenBalanceFactory(tenant=tenant_a, tokens_remaining=100)

    home = owner_client.get(reverse("tenant:home", kwargs={"tenant_slug": tenant_a.slug}))

    assert "The bot has stopped" not in home.content.decode()


# --- The inbox ------------------------------------------------------------------------------


def test_the_thread_says_why_the_bot_said_this(
    owner_client, tenant_a, channel, profile, balance, openai_stub
):
    with tenant_context(tenant_a):
        knowledge_base.load(tenant_a)
    conversation = conversation_on(channel)
    question = customer_sends(conversation, "How much does a full service cost?")
    openai_stub.answer("A full service is 95 euros.")
    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    html = owner_client.get(
        reverse(
            "channels:inbox_thread",
            kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conversation.pk},
        )
    ).content.decode()

    assert "A full service is 95 euros." in html
    assert "Why the bot said this" in html
    assert "It was sent the last 1 message of this conversation" in html
    assert "Servicing and repairs" in html and f"chunk {run.chunk_ids[0]}" in html
    assert "Written by gpt-4o-mini" in html


def test_the_thread_shows_why_the_bot_handed_over(
    owner_client, tenant_a, channel, profile, balance, openai_stub
):
    conversation = conversation_on(channel)
    question = customer_sends(conversation, "I want to talk to a human")
    with tenant_context(tenant_a):
        reply_to_message(message_id=question.pk)

    html = owner_client.get(
        reverse(
            "channels:inbox_thread",
            kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conversation.pk},
        )
    ).content.decode()

    assert "The bot handed this over to a person" in html
    assert "The customer asked for a person" in html
    assert "Unassigned" in html
    # The list marks the conversation as waiting for a person too.
    listing = owner_client.get(
        reverse("channels:inbox", kwargs={"tenant_slug": tenant_a.slug})
    ).content.decode()
    assert "Waiting for a person" in listing


def test_after_a_hand_off_an_agent_lets_the_bot_answer_again(
    client, tenant_a, channel, profile, balance, openai_stub
):
    from channels_app.models import Conversation

    client.force_login(member(tenant_a, role=Role.AGENT))
    conversation = conversation_on(channel)
    question = customer_sends(conversation, "operator please")
    with tenant_context(tenant_a):
        reply_to_message(message_id=question.pk)
    thread = reverse(
        "channels:inbox_thread",
        kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conversation.pk},
    )
    assert "Let the bot answer again" in client.get(thread).content.decode()

    response = client.post(url("bot_resume", tenant_a, conversation_id=conversation.pk))

    assert response.status_code == 302
    with tenant_context(tenant_a):
        conversation = Conversation.objects.get(pk=conversation.pk)
    assert conversation.bot_active and conversation.handoff_reason == ""
    openai_stub.answer("We open at nine.")
    later = customer_sends(conversation, "When do you open?")
    with tenant_context(tenant_a):
        assert reply_to_message(message_id=later.pk).outcome == "answered"
