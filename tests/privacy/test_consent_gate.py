"""P1: the consent ledger and the gate `can_message` that every send path asks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from channels_app.models import Medium
from privacy.gate import COMPLIANCE, can_message, consent_states
from privacy.models import ConsentAction, ConsentEvent, ConsentSource, Purpose
from privacy.services import record_consent
from tenants.context import tenant_context
from tests.factories import ChannelFactory, ContactFactory, ConversationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    contact = ContactFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        yield channel, contact


def grant(contact, purpose, medium=Medium.WHATSAPP, action=ConsentAction.GRANTED):
    return record_consent(
        contact=contact,
        media=[medium],
        purposes=[purpose],
        action=action,
        source=ConsentSource.AGENT,
        evidence="said so on the phone",
    )


def test_a_stranger_cannot_be_messaged_for_any_purpose(world):
    channel, contact = world
    assert can_message(contact, channel, Purpose.TRANSACTIONAL).reason == "no_consent"
    assert can_message(contact, channel, Purpose.MARKETING).reason == "no_marketing_consent"


def test_writing_to_the_business_allows_replies_for_24_hours_but_never_marketing(world, tenant_a):
    channel, contact = world
    conversation = ConversationFactory(
        tenant=tenant_a, channel=channel, contact=contact, last_inbound_at=timezone.now()
    )
    decision = can_message(contact, channel, Purpose.TRANSACTIONAL)
    assert decision.allowed and decision.reason == "reply_window"
    assert not can_message(contact, channel, Purpose.MARKETING)

    later = conversation.last_inbound_at + timedelta(hours=24, minutes=1)
    assert can_message(contact, channel, Purpose.TRANSACTIONAL, now=later).reason == "no_consent"


def test_a_reply_window_on_one_channel_does_not_open_another(world, tenant_a):
    channel, contact = world
    ConversationFactory(
        tenant=tenant_a, channel=channel, contact=contact, last_inbound_at=timezone.now()
    )
    other = ChannelFactory(tenant=tenant_a)
    assert not can_message(contact, other, Purpose.TRANSACTIONAL)


def test_marketing_needs_recorded_marketing_consent(world):
    channel, contact = world
    grant(contact, Purpose.MARKETING)
    assert can_message(contact, channel, Purpose.MARKETING).reason == "marketing_consent"
    # Marketing consent covers service messages too.
    assert can_message(contact, channel, Purpose.TRANSACTIONAL).reason == "consent"


def test_consent_is_per_medium(world, tenant_a):
    channel, contact = world
    grant(contact, Purpose.MARKETING, medium=Medium.SMS)
    assert not can_message(contact, channel, Purpose.MARKETING)
    sms = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    assert can_message(contact, sms, Purpose.MARKETING)


def test_an_opt_out_beats_every_earlier_consent_and_any_reply_window(world, tenant_a):
    channel, contact = world
    ConversationFactory(
        tenant=tenant_a, channel=channel, contact=contact, last_inbound_at=timezone.now()
    )
    grant(contact, Purpose.MARKETING)
    record_consent(
        contact=contact,
        media=[Medium.WHATSAPP],
        purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
        action=ConsentAction.WITHDRAWN,
        source=ConsentSource.KEYWORD,
        evidence="STOP",
    )
    for purpose in (Purpose.TRANSACTIONAL, Purpose.MARKETING):
        decision = can_message(contact, channel, purpose)
        assert not decision.allowed
        assert decision.reason == "opted_out"
        assert "opted out" in decision.detail
    # Only the one confirmation of the customer's own keyword may still go.
    assert can_message(contact, channel, COMPLIANCE)


def test_withdrawing_marketing_leaves_service_messages_possible(world):
    channel, contact = world
    grant(contact, Purpose.TRANSACTIONAL)
    grant(contact, Purpose.MARKETING)
    grant(contact, Purpose.MARKETING, action=ConsentAction.WITHDRAWN)
    assert can_message(contact, channel, Purpose.MARKETING).reason == "marketing_withdrawn"
    assert can_message(contact, channel, Purpose.TRANSACTIONAL)


def test_an_inactive_channel_or_a_contact_without_phone_cannot_send(world, tenant_a):
    channel, contact = world
    grant(contact, Purpose.MARKETING)
    channel.is_active = False
    assert can_message(contact, channel, Purpose.MARKETING).reason == "channel_inactive"
    no_phone = ContactFactory(tenant=tenant_a, phone="", email="a@example.com")
    channel.is_active = True
    assert can_message(no_phone, channel, Purpose.TRANSACTIONAL).reason == "no_phone"


def test_the_ledger_keeps_every_event_and_the_state_follows_the_last(world):
    _, contact = world
    grant(contact, Purpose.MARKETING)
    grant(contact, Purpose.MARKETING, action=ConsentAction.WITHDRAWN)
    grant(contact, Purpose.MARKETING)
    events = ConsentEvent.objects.filter(contact=contact)
    assert [e.action for e in events] == ["granted", "withdrawn", "granted"]
    state = consent_states(contact, Medium.WHATSAPP)[Purpose.MARKETING]
    assert state.granted and state.last_event == events.last()


def test_the_ledger_is_append_only(world):
    _, contact = world
    (event,) = grant(contact, Purpose.MARKETING)
    event.evidence = "rewritten history"
    with pytest.raises(ValidationError):
        event.save()
    with pytest.raises(ValidationError):
        event.delete()
    assert ConsentEvent.objects.get(pk=event.pk).evidence == "said so on the phone"
