"""Merging two contacts: everything follows the survivor, consent is re-derived from the
merged ledger, the other contact is gone, and only owners and admins may do it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from channels_app.models import Conversation, Message
from crm.models import Appointment, Contact, Deal, Lead, Note, Task
from crm.services.merge import merge_contacts
from privacy.gate import can_message
from privacy.models import (
    AccessLogEntry,
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    Purpose,
)
from privacy.services import record_consent
from tenants.context import tenant_context
from tests.factories import (
    AccessLogEntryFactory,
    AppointmentFactory,
    ChannelFactory,
    ContactFactory,
    ContactTagFactory,
    ConversationFactory,
    DealFactory,
    LeadFactory,
    MessageFactory,
    NoteFactory,
    TagFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(tenant_a):
    primary = ContactFactory(
        tenant=tenant_a,
        name="Ana Lima",
        phone="+14155550101",
        email="",
        attributes={"city": "Porto"},
    )
    other = ContactFactory(
        tenant=tenant_a,
        name="A. Lima",
        phone="+14155550202",
        email="ana@x.example",
        language="pt",
        attributes={"city": "Lisbon", "plan": "gold"},
    )
    return primary, other


def test_everything_follows_the_survivor(tenant_a, pair):
    primary, other = pair
    channel = ChannelFactory(tenant=tenant_a)
    second_channel = ChannelFactory(tenant=tenant_a)
    mine = ConversationFactory(tenant=tenant_a, channel=channel, contact=primary, unread_count=1)
    theirs = ConversationFactory(
        tenant=tenant_a,
        channel=channel,
        contact=other,
        unread_count=2,
        last_message_at=timezone.now() + timedelta(minutes=1),
        last_message_preview="latest words",
    )
    elsewhere = ConversationFactory(tenant=tenant_a, channel=second_channel, contact=other)
    MessageFactory(tenant=tenant_a, conversation=mine, body="mine")
    MessageFactory(tenant=tenant_a, conversation=theirs, body="theirs 1")
    MessageFactory(tenant=tenant_a, conversation=theirs, body="theirs 2")
    MessageFactory(tenant=tenant_a, conversation=elsewhere, body="sms")
    deal = DealFactory(tenant=tenant_a, contact=other)
    task = TaskFactory(tenant=tenant_a, contact=other)
    note = NoteFactory(tenant=tenant_a, contact=other)
    appointment = AppointmentFactory(tenant=tenant_a, contact=other)
    lead = LeadFactory(tenant=tenant_a, contact=other)
    viewed = AccessLogEntryFactory(tenant=tenant_a, subject=other)
    both, only_theirs = TagFactory(tenant=tenant_a), TagFactory(tenant=tenant_a)
    ContactTagFactory(tenant=tenant_a, contact=primary, tag=both)
    ContactTagFactory(tenant=tenant_a, contact=other, tag=both)
    ContactTagFactory(tenant=tenant_a, contact=other, tag=only_theirs)

    with tenant_context(tenant_a):
        survivor = merge_contacts(primary=primary, other=other)

        assert survivor.pk == primary.pk
        assert not Contact.objects.filter(pk=other.pk).exists()
        # One conversation per channel: the same channel's messages moved into the survivor's.
        conversations = {c.channel_id: c for c in Conversation.objects.filter(contact=primary)}
        assert set(conversations) == {channel.pk, second_channel.pk}
        assert conversations[channel.pk].pk == mine.pk
        assert sorted(Message.objects.filter(conversation=mine).values_list("body", flat=True)) == [
            "mine",
            "theirs 1",
            "theirs 2",
        ]
        assert conversations[channel.pk].unread_count == 3
        assert conversations[channel.pk].last_message_preview == "latest words"
        assert conversations[second_channel.pk].pk == elsewhere.pk
        assert not Conversation.objects.filter(pk=theirs.pk).exists()
        for model, row in (
            (Deal, deal),
            (Task, task),
            (Note, note),
            (Appointment, appointment),
            (Lead, lead),
        ):
            assert model.objects.get(pk=row.pk).contact_id == primary.pk, model.__name__
        assert AccessLogEntry.objects.get(pk=viewed.pk).subject_id == primary.pk
        assert set(survivor.tags.values_list("pk", flat=True)) == {both.pk, only_theirs.pk}


def test_keep_primary_and_fill_blanks_by_default(tenant_a, pair):
    primary, other = pair
    with tenant_context(tenant_a):
        survivor = merge_contacts(primary=primary, other=other)
    assert survivor.name == "Ana Lima"
    assert survivor.phone == "+14155550101"
    assert survivor.email == "ana@x.example"  # blank on the primary: filled
    assert survivor.language == "pt"
    assert survivor.attributes == {"city": "Porto", "plan": "gold"}


def test_field_by_field_choices(tenant_a, pair):
    primary, other = pair
    with tenant_context(tenant_a):
        survivor = merge_contacts(
            primary=primary, other=other, choices={"phone": "other", "name": "primary"}
        )
        assert survivor.phone == "+14155550202"  # the other's number, free once it is gone
        assert Contact.objects.get(phone="+14155550202").pk == primary.pk
    assert survivor.name == "Ana Lima"


def test_consent_is_rederived_from_the_merged_ledger(tenant_a, pair):
    primary, other = pair
    channel = ChannelFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        record_consent(
            contact=primary,
            media=["whatsapp"],
            purposes=[Purpose.MARKETING],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
        )
        # Later, on the other record, the person said STOP: that is the newest word.
        for event in record_consent(
            contact=other,
            media=["whatsapp"],
            purposes=[Purpose.MARKETING, Purpose.TRANSACTIONAL],
            action=ConsentAction.WITHDRAWN,
            source=ConsentSource.KEYWORD,
        ):
            ConsentEvent.objects.filter(pk=event.pk).update(
                created_at=timezone.now() + timedelta(minutes=1)
            )
        # An older SMS grant on the other record stays granted.
        for event in record_consent(
            contact=other,
            media=["sms"],
            purposes=[Purpose.TRANSACTIONAL],
            action=ConsentAction.GRANTED,
            source=ConsentSource.IMPORT,
        ):
            ConsentEvent.objects.filter(pk=event.pk).update(
                created_at=timezone.now() - timedelta(days=3)
            )

        merge_contacts(primary=primary, other=other)

        states = {
            (s.medium, s.purpose): s.action for s in ConsentState.objects.filter(contact=primary)
        }
        assert states == {
            ("whatsapp", "marketing"): ConsentAction.WITHDRAWN,
            ("whatsapp", "transactional"): ConsentAction.WITHDRAWN,
            ("sms", "transactional"): ConsentAction.GRANTED,
        }
        assert ConsentEvent.objects.filter(contact=primary).count() == 4
        primary.refresh_from_db()
        assert not can_message(primary, channel, Purpose.MARKETING)
        assert can_message(primary, channel, Purpose.MARKETING).reason == "opted_out"


def test_a_restriction_survives_the_merge(tenant_a, pair):
    primary, other = pair
    with tenant_context(tenant_a):
        Contact.objects.filter(pk=other.pk).update(processing_restricted_at=timezone.now())
        other.refresh_from_db()
        survivor = merge_contacts(primary=primary, other=other)
    assert survivor.is_processing_restricted


def test_a_contact_of_another_business_cannot_be_merged(tenant_a, tenant_b):
    mine = ContactFactory(tenant=tenant_a)
    foreign = ContactFactory(tenant=tenant_b)
    with tenant_context(tenant_a):
        with pytest.raises(ValidationError):
            merge_contacts(primary=mine, other=foreign)
        with pytest.raises(ValidationError):
            merge_contacts(primary=mine, other=mine)
    with tenant_context(tenant_b):
        assert Contact.objects.filter(pk=foreign.pk).exists()


def test_the_merge_page(owner_client, url, tenant_a, pair):
    primary, other = pair
    page = owner_client.get(url("crm:contact_merge", contact_id=primary.pk), {"q": "lima"})
    assert f"?other={other.pk}" in page.content.decode()
    compare = owner_client.get(url("crm:contact_merge", contact_id=primary.pk), {"other": other.pk})
    assert "ana@x.example" in compare.content.decode()

    # Keep the other one, but take this page's name.
    response = owner_client.post(
        url("crm:contact_merge", contact_id=primary.pk),
        {"other": other.pk, "keep": "other", "field_name": "primary", "field_phone": "other"},
    )
    assert response.status_code == 302
    assert response["Location"] == url("crm:contact", contact_id=other.pk)
    with tenant_context(tenant_a):
        survivor = Contact.objects.get()
    assert (survivor.pk, survivor.name, survivor.phone) == (other.pk, "Ana Lima", "+14155550202")
    with tenant_context(tenant_a):
        trace = Note.objects.get(contact=survivor)
    assert "Ana Lima" in trace.body and "+14155550101" in trace.body


def test_agents_cannot_merge(agent_client, url, tenant_a, pair):
    primary, other = pair
    response = agent_client.post(
        url("crm:contact_merge", contact_id=primary.pk), {"other": other.pk}
    )
    assert response.status_code == 403
    with tenant_context(tenant_a):
        assert Contact.objects.count() == 2


def test_merging_into_a_contact_of_another_business_is_refused_on_the_page(
    owner_client, url, tenant_a, tenant_b
):
    mine = ContactFactory(tenant=tenant_a)
    foreign = ContactFactory(tenant=tenant_b)
    response = owner_client.post(
        url("crm:contact_merge", contact_id=mine.pk), {"other": foreign.pk}
    )
    assert response.status_code == 400
    with tenant_context(tenant_b):
        assert Contact.objects.filter(pk=foreign.pk).exists()
