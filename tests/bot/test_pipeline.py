"""The reply pipeline, with the real `openai` client against a local fake OpenAI server."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import TestCase
from django.utils import timezone

from channels_app.bot import knowledge, metering
from channels_app.bot.models import AIUsage, BotRun, TokenBalance
from channels_app.bot.pipeline import reply_to_message
from channels_app.models import Conversation, Message
from channels_app.providers.sandbox import signed_request
from channels_app.services.inbound import receive_webhook
from privacy.models import Purpose
from tenants.context import tenant_context
from tests.bot import knowledge_base
from tests.channels.sending_support import conversation_on, customer_sends
from tests.factories import MessageFactory, member

pytestmark = pytest.mark.django_db

PHONE = "+15555550177"


@pytest.fixture
def shop(tenant_a):
    with tenant_context(tenant_a):
        return knowledge_base.load(tenant_a)


@pytest.fixture
def conversation(channel):
    return conversation_on(channel)


def write(channel, body, *, phone=PHONE, index=[0]):  # noqa: B006 - a counter for unique ids
    """The customer writes through the signed sandbox webhook: stored, then the follow-ups
    (the bot among them) run, eagerly as under `make run`."""
    index[0] += 1
    event = {
        "type": "message",
        "id": f"sbx-in-bot-{index[0]}",
        "from": phone,
        "name": "Ana Lima",
        "body": body,
    }
    with tenant_context(channel.tenant):
        # The follow-ups start when the webhook's transaction commits.
        with TestCase.captureOnCommitCallbacks(execute=True):
            receive_webhook(channel=channel, request=signed_request(channel, [event]))
        return Message.objects.filter(direction="inbound").latest("created_at", "id")


def run_of(message) -> BotRun:
    with tenant_context(message.tenant):
        return BotRun.objects.select_related("conversation", "reply_message", "usage").get(
            inbound_message=message
        )


def bot_messages(tenant) -> list[Message]:
    with tenant_context(tenant):
        return list(Message.objects.filter(sender_kind=Message.SenderKind.BOT))


def test_an_answer_goes_to_the_customer_grounded_in_the_knowledge_base(
    tenant_a, channel, profile, balance, shop, openai_stub
):
    openai_stub.answer("A full service is 95 euros, parts extra.")

    inbound = write(channel, "Hi, how much does a full service cost?")

    run = run_of(inbound)
    assert run.outcome == BotRun.Outcome.ANSWERED
    reply = run.reply_message
    assert reply.body == "A full service is 95 euros, parts extra."
    assert reply.sender_kind == Message.SenderKind.BOT
    assert reply.purpose == Purpose.TRANSACTIONAL
    # The sandbox delivered it (eagerly), through the one send path.
    assert reply.status in {Message.Status.SENT, Message.Status.DELIVERED}
    with tenant_context(tenant_a):
        chunk_titles = list(
            knowledge.KnowledgeChunk.objects.filter(pk__in=run.chunk_ids).values_list(
                "document__title", flat=True
            )
        )
    assert run.chunk_ids and "Servicing and repairs" in chunk_titles
    assert run.context_message_ids == [inbound.pk]


def test_the_request_holds_only_the_recent_messages_and_the_chunks(
    tenant_a, channel, profile, balance, shop, openai_stub
):
    """P5: the exact body that reached the provider, nothing beyond the allowed data."""
    conversation = conversation_on(channel)
    with tenant_context(tenant_a):
        contact = conversation.contact
        contact.name = "Ana Secret-Surname"
        contact.email = "ana.private@example.org"
        contact.save()
        earlier = MessageFactory(
            tenant=tenant_a, conversation=conversation, body="Hello, my number is +1 415 555 0199"
        )
        MessageFactory(
            tenant=tenant_a,
            conversation=conversation,
            direction=Message.Direction.NOTE,
            sender_kind=Message.SenderKind.AGENT,
            body="Internal: VIP customer, owes us 300 euros",
        )
        answer = MessageFactory(
            tenant=tenant_a,
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            sender_kind=Message.SenderKind.AGENT,
            status=Message.Status.DELIVERED,
            body="Hi Ana, how can we help?",
        )
    question = customer_sends(
        conversation, "Can I rent a bike this weekend? Write to ana.private@example.org"
    )
    openai_stub.answer("City bikes are 15 euros per day.")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.ANSWERED
    [request] = openai_stub.requests
    body = request["body"]
    assert request["headers"]["authorization"] == "Bearer sk-platform-test-key"
    system = body["messages"][0]
    assert system["role"] == "system"
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [
            system,
            {"role": "user", "content": "Hello, my number is [phone]"},
            {"role": "assistant", "content": "Hi Ana, how can we help?"},
            {"role": "user", "content": "Can I rent a bike this weekend? Write to [email]"},
        ],
        "temperature": 0.3,
        "max_completion_tokens": 600 // 3 + 64,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "bot_reply",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {
                        "answer": {"type": "string"},
                        "hand_off": {"type": "boolean"},
                        "reason": {"type": "string"},
                    },
                    "required": ["answer", "hand_off", "reason"],
                    "additionalProperties": False,
                },
            },
        },
        "store": False,
    }
    # The system message: the business's instructions and the retrieved chunks, no customer data.
    text = system["content"]
    assert "Alpha Dental" in text and "Answer questions about the clinic." in text
    assert "[1] Bike rental\nCity bikes can be rented for 15 euros per day" in text
    for private in ("Secret-Surname", "ana.private", "+1 415", "owes us", contact.phone):
        assert private not in str(body)
    # What was sent is on record: ids and counts, not a copy of the text.
    assert run.context_message_ids == [earlier.pk, answer.pk, question.pk]
    assert len(run.chunk_ids) == text.count("\n[") + (1 if text.startswith("[") else 0)


def test_masking_can_be_switched_off(tenant_a, conversation, profile, balance, openai_stub):
    with tenant_context(tenant_a):
        profile.mask_personal_data = False
        profile.save()
    question = customer_sends(conversation, "Call me on +1 415 555 0199")

    with tenant_context(tenant_a):
        reply_to_message(message_id=question.pk)

    assert openai_stub.bodies[0]["messages"][-1]["content"] == "Call me on +1 415 555 0199"


def test_every_call_is_metered_and_taken_from_the_balance(
    tenant_a, conversation, profile, balance, shop, openai_stub
):
    openai_stub.answer("Shipping takes three to five working days.")
    question = customer_sends(conversation, "How long does shipping take?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)
        usage = AIUsage.objects.select_related("conversation").get()
        remaining = TokenBalance.objects.get().tokens_remaining

    assert run.usage == usage
    assert usage.provider == "openai" and usage.model == "gpt-4o-mini"
    # The fake server counts words: those of the request, and those of the JSON answer.
    sent_words = sum(len(m["content"].split()) for m in openai_stub.bodies[0]["messages"])
    answer = {"answer": "Shipping takes three to five working days.", "hand_off": False}
    answer_words = len(json.dumps({**answer, "reason": ""}).split())
    assert (usage.tokens_in, usage.tokens_out) == (sent_words, answer_words)
    assert usage.conversation == conversation
    expected = (usage.tokens_in * 0.00015 + usage.tokens_out * 0.0006) / 1000
    assert float(usage.cost) == pytest.approx(expected, abs=1e-6)
    assert remaining == 10_000 - usage.tokens_in - usage.tokens_out


def test_a_second_run_for_the_same_message_does_nothing(
    tenant_a, conversation, profile, balance, shop, openai_stub
):
    openai_stub.answer("We are closed on Sundays.")
    question = customer_sends(conversation, "Are you open on Sunday?")

    with tenant_context(tenant_a):
        first = reply_to_message(message_id=question.pk)
        second = reply_to_message(message_id=question.pk)

    assert first.pk == second.pk
    assert len(openai_stub.requests) == 1
    assert len(bot_messages(tenant_a)) == 1


def test_the_greeting_opens_the_first_answer_only(
    tenant_a, conversation, profile, balance, shop, openai_stub
):
    with tenant_context(tenant_a):
        profile.greeting = "Hello from the shop!"
        profile.save()
    openai_stub.answer("We are closed on Sundays.")
    openai_stub.answer("Parking is free behind the building.")

    first = customer_sends(conversation, "Are you open on Sunday?")
    with tenant_context(tenant_a):
        reply_to_message(message_id=first.pk)
    second = customer_sends(conversation, "Where can I park?")
    with tenant_context(tenant_a):
        reply_to_message(message_id=second.pk)

    bodies = [m.body for m in bot_messages(tenant_a)]
    assert bodies == [
        "Hello from the shop!\n\nWe are closed on Sundays.",
        "Parking is free behind the building.",
    ]


def test_long_answers_are_cut_to_the_maximum_length(
    tenant_a, conversation, profile, balance, openai_stub
):
    with tenant_context(tenant_a):
        profile.max_reply_chars = 50
        profile.save()
    openai_stub.answer("word " * 40)
    question = customer_sends(conversation, "Tell me everything")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert len(run.reply_message.body) <= 50
    assert run.reply_message.body.endswith("…")


# --- Hand-offs ------------------------------------------------------------------------------


def assert_waiting_for_a_person(conversation, reason_part: str):
    with tenant_context(conversation.tenant):
        conversation = Conversation.objects.get(pk=conversation.pk)
    assert conversation.assignee is None
    assert conversation.status == Conversation.Status.OPEN
    assert conversation.bot_active is False
    assert reason_part in conversation.handoff_reason


def test_the_customer_asking_for_a_person_hands_off_without_calling_the_model(
    tenant_a, channel, owner_a, profile, balance, openai_stub
):
    conversation = conversation_on(channel, status=Conversation.Status.RESOLVED)
    question = customer_sends(conversation, "Can I talk to a HUMAN please")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.HANDED_OFF
    assert openai_stub.requests == []
    assert_waiting_for_a_person(conversation, "asked for a person")
    assert [m.body for m in bot_messages(tenant_a)] == [profile.handoff_message]  # one notice


def test_the_hand_off_message_goes_once_and_can_be_switched_off(
    tenant_a, channel, profile, balance, openai_stub
):
    conversation = conversation_on(channel)
    question = customer_sends(conversation, "operator please")
    with tenant_context(tenant_a):
        reply_to_message(message_id=question.pk)
        reply_to_message(message_id=question.pk)  # a retried task
    notices = bot_messages(tenant_a)
    assert [m.body for m in notices] == ["Thanks! A member of our team will reply here shortly."]
    assert notices[0].purpose == Purpose.TRANSACTIONAL

    with tenant_context(tenant_a):
        profile.handoff_message = "  "
        profile.save()
    other = conversation_on(channel)
    question = customer_sends(other, "a human, please")
    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)
    assert run.outcome == BotRun.Outcome.HANDED_OFF
    assert len(bot_messages(tenant_a)) == 1  # nothing more was sent
    assert_waiting_for_a_person(other, "asked for a person")


def test_the_model_saying_it_cannot_answer_hands_off(
    tenant_a, conversation, profile, balance, shop, openai_stub
):
    openai_stub.hand_off("Nothing about washing machines.")
    question = customer_sends(conversation, "Do you repair washing machines?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.HANDED_OFF
    assert run.usage is not None  # the call that decided it is metered
    assert_waiting_for_a_person(conversation, "Nothing about washing machines.")
    assert [m.body for m in bot_messages(tenant_a)] == [profile.handoff_message]  # one notice


def test_a_hand_off_written_as_prose_is_still_an_answer(
    tenant_a, conversation, profile, balance, openai_stub
):
    # Only the structured flag hands off: the words of the answer are never parsed.
    openai_stub.answer("I cannot answer that, I will hand you off to a person.")
    question = customer_sends(conversation, "Hm?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.ANSWERED


def test_outside_working_hours_hands_off(
    tenant_a, conversation, profile, balance, openai_stub, monkeypatch
):
    with tenant_context(tenant_a):
        profile.working_hours = {"mon": [["09:00", "17:00"]]}
        profile.save()
    # A Tuesday: the bot answers on Mondays only.
    tuesday = datetime(2026, 12, 1, 12, 0, tzinfo=ZoneInfo("UTC"))
    monkeypatch.setattr(timezone, "now", lambda: tuesday)
    question = customer_sends(conversation, "Are you open?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.HANDED_OFF
    assert openai_stub.requests == []
    assert_waiting_for_a_person(conversation, "outside the bot's working hours")


def test_unusable_answers_are_asked_again_then_handed_off(
    tenant_a, conversation, profile, balance, openai_stub
):
    openai_stub.raw_content("Sure! We open at nine.")  # not the agreed JSON
    openai_stub.raw_content('{"answer": 3}')
    question = customer_sends(conversation, "When do you open?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)
        calls = AIUsage.objects.count()

    assert len(openai_stub.requests) == 2  # max_failures
    assert calls == 2  # both cost tokens
    assert run.outcome == BotRun.Outcome.FAILED
    assert_waiting_for_a_person(conversation, "failed to answer 2 times")
    with tenant_context(tenant_a):
        assert Message.objects.filter(pk=question.pk).exists()  # the customer's words are kept


def test_one_unusable_answer_then_a_good_one_is_answered(
    tenant_a, conversation, profile, balance, openai_stub
):
    openai_stub.raw_content("not json")
    openai_stub.answer("We open at nine.")
    question = customer_sends(conversation, "When do you open?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.ANSWERED
    assert run.reply_message.body == "We open at nine."


def test_provider_errors_are_retried_by_the_client_then_hand_off(
    tenant_a, conversation, profile, balance, openai_stub
):
    openai_stub.fail_next(2, status=503)  # the first call and the client's one retry
    question = customer_sends(conversation, "When do you open?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert len(openai_stub.requests) == 2
    assert run.outcome == BotRun.Outcome.FAILED
    assert_waiting_for_a_person(conversation, "HTTP 503")
    assert [m.body for m in bot_messages(tenant_a)] == [profile.handoff_message]  # one notice


def test_a_transient_error_the_client_retries_is_invisible(
    tenant_a, conversation, profile, balance, openai_stub
):
    openai_stub.fail_next(1, status=500)
    openai_stub.answer("We open at nine.")
    question = customer_sends(conversation, "When do you open?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.ANSWERED


def test_a_provider_that_times_out_ends_in_a_hand_off(
    tenant_a, conversation, profile, balance, openai_stub, settings
):
    settings.OPENAI_TIMEOUT_SECONDS = 0.2
    settings.OPENAI_MAX_RETRIES = 0
    openai_stub.delay(1.0)
    question = customer_sends(conversation, "When do you open?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.FAILED
    assert_waiting_for_a_person(conversation, "did not answer in time")
    with tenant_context(tenant_a):
        assert Message.objects.filter(pk=question.pk).exists()


def test_after_a_hand_off_the_bot_stays_quiet_in_that_conversation(
    tenant_a, conversation, profile, balance, openai_stub
):
    first = customer_sends(conversation, "I want an operator")
    with tenant_context(tenant_a):
        reply_to_message(message_id=first.pk)
    second = customer_sends(conversation, "Hello?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=second.pk)

    assert run.outcome == BotRun.Outcome.SKIPPED
    assert openai_stub.requests == []


# --- Skips: nothing is sent to the provider -------------------------------------------------


def test_an_opted_out_contact_gets_no_answer_and_nothing_goes_to_the_provider(
    tenant_a, channel, profile, balance, openai_stub
):
    write(channel, "Hi there")
    openai_stub.reset()
    write(channel, "STOP")  # handled as a keyword: the bot never sees it
    question = write(channel, "How much is a service?")

    run = run_of(question)
    assert run.outcome == BotRun.Outcome.SKIPPED
    assert "opted out" in run.reason
    assert openai_stub.requests == []


def test_a_contact_who_restricted_processing_is_left_alone(
    tenant_a, conversation, profile, balance, openai_stub
):
    with tenant_context(tenant_a):
        conversation.contact.processing_restricted_at = timezone.now()
        conversation.contact.save()
    question = customer_sends(conversation, "How much is a service?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.SKIPPED
    assert "restricted" in run.reason
    assert openai_stub.requests == []
    assert bot_messages(tenant_a) == []


def test_an_exhausted_balance_hands_the_conversation_to_a_person(
    tenant_a, conversation, profile, openai_stub
):
    from tests.factories import TokenBalanceFactory

    TokenBalanceFactory(tenant=tenant_a, tokens_remaining=0)
    question = customer_sends(conversation, "How much is a service?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)
        again = reply_to_message(message_id=question.pk)
        conversation.refresh_from_db()

    assert run.outcome == BotRun.Outcome.HANDED_OFF
    assert again.pk == run.pk
    assert "token balance is used up" in run.reason
    # Nothing went to the provider; the conversation waits for a person, who sees why, and
    # the customer is told once that a person will answer.
    assert openai_stub.requests == []
    assert conversation.bot_active is False
    assert conversation.assignee_id is None
    assert "token balance is used up" in conversation.handoff_reason
    assert [m.body for m in bot_messages(tenant_a)] == [profile.handoff_message]


def test_the_balance_stops_at_zero_after_the_last_call(
    tenant_a, conversation, profile, openai_stub
):
    from tests.factories import TokenBalanceFactory

    TokenBalanceFactory(tenant=tenant_a, tokens_remaining=5)
    openai_stub.answer("We open at nine.")
    question = customer_sends(conversation, "When do you open?")

    with tenant_context(tenant_a):
        reply_to_message(message_id=question.pk)
        assert metering.balance().tokens_remaining == 0
        assert metering.has_tokens() is False


def test_an_assigned_conversation_is_for_the_person(
    tenant_a, channel, profile, balance, openai_stub
):
    agent = member(tenant_a)
    conversation = conversation_on(channel, assignee=agent)
    question = customer_sends(conversation, "How much is a service?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.SKIPPED
    assert openai_stub.requests == []


def test_with_the_bot_switched_off_no_run_is_started(tenant_a, channel, profile, openai_stub):
    with tenant_context(tenant_a):
        profile.enabled = False
        profile.save()

    question = write(channel, "How much is a service?")

    with tenant_context(tenant_a):
        assert not BotRun.objects.filter(inbound_message=question).exists()
    assert openai_stub.requests == []


def test_a_channel_override_switches_the_bot_off_on_that_channel(
    tenant_a, channel, profile, balance, openai_stub
):
    from channels_app.bot import profiles

    with tenant_context(tenant_a):
        override = profiles.create_channel_override(channel=channel)
        profiles.update_profile(profile=override, enabled=False)

    question = write(channel, "How much is a service?")

    with tenant_context(tenant_a):
        assert not BotRun.objects.filter(inbound_message=question).exists()


def test_a_business_key_and_address_override_the_platform(
    tenant_a, conversation, profile, balance, openai_stub, settings
):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # the platform's: unreachable
    with tenant_context(tenant_a):
        profile.api_key = "sk-business-own-key"
        profile.api_base_url = openai_stub.base_url
        profile.model = "gpt-4.1-mini"
        profile.save()
    openai_stub.answer("We open at nine.")
    question = customer_sends(conversation, "When do you open?")

    with tenant_context(tenant_a):
        run = reply_to_message(message_id=question.pk)

    assert run.outcome == BotRun.Outcome.ANSWERED
    assert openai_stub.requests[0]["headers"]["authorization"] == "Bearer sk-business-own-key"
    assert openai_stub.bodies[0]["model"] == "gpt-4.1-mini"


# --- The local responder (no key) -----------------------------------------------------------


def test_without_a_key_the_local_responder_quotes_the_knowledge_base(
    tenant_a, channel, profile, balance, shop, no_openai_key
):
    inbound = write(channel, "How much does a full service cost?")

    run = run_of(inbound)
    assert run.outcome == BotRun.Outcome.ANSWERED
    assert "a full service costs 95 euros" in run.reply_message.body
    assert run.usage.provider == "local" and run.usage.cost == 0
    with tenant_context(tenant_a):
        assert metering.balance().tokens_remaining == 10_000


def test_the_local_responder_hands_off_when_the_knowledge_base_has_no_answer(
    tenant_a, channel, profile, balance, shop, no_openai_key
):
    inbound = write(channel, "Do you repair washing machines?")

    run = run_of(inbound)
    assert run.outcome == BotRun.Outcome.HANDED_OFF
    assert_waiting_for_a_person(run.conversation, "could not answer from the knowledge base")


def test_the_local_responder_quotes_sentences_not_section_headings(
    tenant_a, channel, profile, balance, no_openai_key
):
    with tenant_context(tenant_a):
        knowledge.add_document(
            title="Clinic",
            kind="markdown",
            content="# Opening hours\n\nWe open at 8:00 on weekdays. Saturdays 9:00 to 13:00.",
        )

    inbound = write(channel, "When do you open on Saturdays?")

    assert run_of(inbound).reply_message.body == (
        "We open at 8:00 on weekdays. Saturdays 9:00 to 13:00."
    )
