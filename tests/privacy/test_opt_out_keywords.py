"""P2: STOP works at once and is confirmed exactly once; START restores; HELP answers."""

from __future__ import annotations

import pytest
from django.utils import timezone

from channels_app.models import Medium, Message
from privacy.gate import can_message
from privacy.keywords import Keyword
from privacy.models import ConsentAction, ConsentEvent, ConsentSource, Purpose
from privacy.services import handle_inbound_keyword, messaging_policy, record_consent
from tenants.context import tenant_context
from tests.factories import ChannelFactory, ContactFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    contact = ContactFactory(tenant=tenant_a)
    conversation = ConversationFactory(
        tenant=tenant_a, channel=channel, contact=contact, last_inbound_at=timezone.now()
    )
    with tenant_context(tenant_a):
        yield conversation


def customer_says(conversation, text):
    message = MessageFactory(tenant=conversation.tenant, conversation=conversation, body=text)
    keyword = handle_inbound_keyword(
        message, contact=conversation.contact, channel=conversation.channel
    )
    return message, keyword


def replies(conversation):
    return list(
        Message.objects.filter(conversation=conversation, direction=Message.Direction.OUTBOUND)
    )


def test_stop_withdraws_every_purpose_and_queues_one_confirmation(conversation):
    contact, channel = conversation.contact, conversation.channel
    record_consent(
        contact=contact,
        media=[Medium.WHATSAPP],
        purposes=[Purpose.MARKETING],
        action=ConsentAction.GRANTED,
        source=ConsentSource.LEAD_FORM,
    )
    _, keyword = customer_says(conversation, " Stop! ")
    assert keyword == Keyword.OPT_OUT
    assert can_message(contact, channel, Purpose.MARKETING).reason == "opted_out"
    assert can_message(contact, channel, Purpose.TRANSACTIONAL).reason == "opted_out"
    (confirmation,) = replies(conversation)
    assert "unsubscribed" in confirmation.body
    assert confirmation.sender_kind == Message.SenderKind.SYSTEM
    withdrawals = ConsentEvent.objects.filter(contact=contact, action=ConsentAction.WITHDRAWN)
    assert {e.purpose for e in withdrawals} == {Purpose.MARKETING, Purpose.TRANSACTIONAL}
    assert all(e.source == ConsentSource.KEYWORD and "Stop!" in e.evidence for e in withdrawals)


def test_handling_the_same_stop_message_twice_confirms_once(conversation):
    message, _ = customer_says(conversation, "STOP")
    handle_inbound_keyword(message, contact=conversation.contact, channel=conversation.channel)
    assert len(replies(conversation)) == 1


def test_no_confirmation_from_us_when_the_provider_sends_its_own(conversation):
    conversation.channel.provider_confirms_opt_out = True
    _, keyword = customer_says(conversation, "stop")
    assert keyword == Keyword.OPT_OUT
    assert replies(conversation) == []
    assert not can_message(conversation.contact, conversation.channel, Purpose.TRANSACTIONAL)


def test_start_restores_service_messages_and_the_marketing_the_stop_took_away(conversation):
    contact, channel = conversation.contact, conversation.channel
    record_consent(
        contact=contact,
        media=[Medium.WHATSAPP],
        purposes=[Purpose.MARKETING],
        action=ConsentAction.GRANTED,
        source=ConsentSource.LEAD_FORM,
    )
    customer_says(conversation, "STOP")
    _, keyword = customer_says(conversation, "start")
    assert keyword == Keyword.OPT_IN
    assert can_message(contact, channel, Purpose.TRANSACTIONAL)
    assert can_message(contact, channel, Purpose.MARKETING)
    assert len(replies(conversation)) == 2


def test_start_does_not_invent_marketing_consent(conversation):
    customer_says(conversation, "STOP")
    customer_says(conversation, "UNSTOP")
    contact, channel = conversation.contact, conversation.channel
    assert can_message(contact, channel, Purpose.TRANSACTIONAL)
    assert can_message(contact, channel, Purpose.MARKETING).reason == "marketing_withdrawn"


def test_yes_restores_only_after_an_opt_out(conversation):
    _, keyword = customer_says(conversation, "yes")
    assert keyword is None
    customer_says(conversation, "stop")
    _, keyword = customer_says(conversation, "YES")
    assert keyword == Keyword.OPT_IN


def test_help_answers_with_the_business_help_text(conversation):
    policy = messaging_policy()
    policy.help_reply = "Acme Dental, Mon-Fri 9-17, call +1 415 555 0100."
    policy.save()
    _, keyword = customer_says(conversation, "HELP")
    assert keyword == Keyword.HELP
    (reply,) = replies(conversation)
    assert reply.body == "Acme Dental, Mon-Fri 9-17, call +1 415 555 0100."


def test_a_business_keyword_in_its_language_opts_out_with_a_reply_in_that_language(
    conversation, tenant_a
):
    tenant_a.language = "es"
    tenant_a.save()
    policy = messaging_policy()
    policy.extra_opt_out_keywords = "no mas"
    policy.save()
    with tenant_context(tenant_a):
        _, keyword = customer_says(conversation, "No mas")
        assert keyword == Keyword.OPT_OUT
        (reply,) = replies(conversation)
        assert "baja" in reply.body
        _, keyword = customer_says(conversation, "BAJA")
        assert keyword == Keyword.OPT_OUT


def test_an_ordinary_sentence_is_left_alone(conversation):
    _, keyword = customer_says(conversation, "Please stop by at 5, I want to cancel one item")
    assert keyword is None
    assert replies(conversation) == []
    assert ConsentEvent.objects.count() == 0


def test_stopall_opts_out_of_every_medium(conversation, tenant_a):
    customer_says(conversation, "STOP ALL")
    sms = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    assert can_message(conversation.contact, sms, Purpose.TRANSACTIONAL).reason == "opted_out"
    assert (
        can_message(conversation.contact, conversation.channel, Purpose.TRANSACTIONAL).reason
        == "opted_out"
    )


def test_stop_on_one_medium_leaves_the_other(conversation, tenant_a):
    sms = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    record_consent(
        contact=conversation.contact,
        media=[Medium.SMS],
        purposes=[Purpose.TRANSACTIONAL],
        action=ConsentAction.GRANTED,
        source=ConsentSource.AGENT,
    )
    customer_says(conversation, "stop")
    assert can_message(conversation.contact, sms, Purpose.TRANSACTIONAL)
