"""P6: a restriction of processing stops the bot, campaigns and automations for the person,
keeps their data, is shown wherever the contact appears, and can be lifted."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Message
from channels_app.services.sending import SendRefused, send_message
from crm.models import Contact
from privacy import dsr
from privacy.gate import automation_allowed, can_message
from privacy.models import DataRequest, Purpose
from privacy.services import record_consent
from tenants.context import tenant_context
from tests.factories import ChannelFactory, ContactFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    contact = ContactFactory(tenant=tenant_a, name="Rita Restricted", phone="+447700900777")
    conversation = ConversationFactory(
        tenant=tenant_a, channel=channel, contact=contact, last_inbound_at=timezone.now()
    )
    MessageFactory(tenant=tenant_a, conversation=conversation, body="Stop using my data")
    with tenant_context(tenant_a):
        record_consent(
            contact=contact,
            media=["whatsapp"],
            purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
            action="granted",
            source="agent",
            evidence="agreed",
        )
    return conversation


def run(kind, tenant, capture, phone="+447700900777"):
    with tenant_context(tenant):
        data_request = dsr.create_request(kind=kind, phone=phone)
        with capture(execute=True):
            dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
    return data_request


def test_restricted_contact_gets_nothing_from_bot_campaigns_or_automations(
    tenant_a, conversation, django_capture_on_commit_callbacks
):
    data_request = run(DataRequest.Kind.RESTRICTION, tenant_a, django_capture_on_commit_callbacks)
    assert data_request.status == DataRequest.Status.DONE

    with tenant_context(tenant_a):
        contact = Contact.objects.get(pk=conversation.contact_id)
        assert contact.is_processing_restricted
        assert automation_allowed(contact).reason == "processing_restricted"
        channel = conversation.channel
        for sender in ("bot", "campaign", "automation"):
            decision = can_message(contact, channel, Purpose.MARKETING, sender_kind=sender)
            assert decision.reason == "processing_restricted"
        conversation.refresh_from_db()
        with pytest.raises(SendRefused) as refused:
            send_message(
                conversation=conversation,
                body="Hello from the bot",
                purpose=Purpose.TRANSACTIONAL,
                sender_kind=Message.SenderKind.BOT,
            )
        assert refused.value.reason == "processing_restricted"
        # A person can still answer them, and the data is all kept.
        sent = send_message(
            conversation=conversation,
            body="We have restricted the use of your data.",
            purpose=Purpose.TRANSACTIONAL,
            sender_kind=Message.SenderKind.AGENT,
        )
        assert sent.status == Message.Status.QUEUED
        assert contact.phone == "+447700900777" and contact.name == "Rita Restricted"


def test_lifting_the_restriction_lets_the_bot_answer_again(
    tenant_a, conversation, django_capture_on_commit_callbacks
):
    run(DataRequest.Kind.RESTRICTION, tenant_a, django_capture_on_commit_callbacks)
    lifted = run(DataRequest.Kind.LIFT_RESTRICTION, tenant_a, django_capture_on_commit_callbacks)
    assert lifted.result["changed"] == 1
    with tenant_context(tenant_a):
        contact = Contact.objects.get(pk=conversation.contact_id)
        assert not contact.is_processing_restricted
        assert can_message(contact, conversation.channel, Purpose.MARKETING, sender_kind="bot")


def test_restricting_twice_changes_nothing_more(
    tenant_a, conversation, django_capture_on_commit_callbacks
):
    first = run(DataRequest.Kind.RESTRICTION, tenant_a, django_capture_on_commit_callbacks)
    second = run(DataRequest.Kind.RESTRICTION, tenant_a, django_capture_on_commit_callbacks)
    assert (first.result["changed"], second.result["changed"]) == (1, 0)


def test_a_restriction_for_an_unknown_person_finds_nothing_and_is_recorded(
    tenant_a, conversation, django_capture_on_commit_callbacks
):
    data_request = run(
        DataRequest.Kind.RESTRICTION,
        tenant_a,
        django_capture_on_commit_callbacks,
        phone="+447700900000",
    )
    assert data_request.status == DataRequest.Status.DONE
    assert data_request.result["nothing_found"] is True
    with tenant_context(tenant_a):
        assert not Contact.objects.get(pk=conversation.contact_id).is_processing_restricted


def test_the_badge_shows_in_the_inbox_list_and_thread(
    client, tenant_a, owner_a, conversation, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    inbox = reverse("channels:inbox", kwargs={"tenant_slug": tenant_a.slug})
    thread = reverse(
        "channels:inbox_thread",
        kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conversation.pk},
    )
    assert "Processing restricted" not in client.get(thread).content.decode()

    run(DataRequest.Kind.RESTRICTION, tenant_a, django_capture_on_commit_callbacks)

    assert "Processing restricted" in client.get(inbox).content.decode()
    page = client.get(thread).content.decode()
    # The thread title and the contact panel both carry it.
    assert page.count("Processing restricted") >= 2
