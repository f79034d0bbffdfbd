"""A business where one person (the subject) left data in every corner the registry knows,
next to another customer whose data must survive an erasure."""

from __future__ import annotations

import dataclasses

from django.core.files.base import ContentFile
from django.db import connection

from channels_app.models import Medium, Message
from crm.models import Contact, ContactImport
from privacy.access_log import Action, record_access
from privacy.models import ConsentAction, ConsentSource, Purpose
from privacy.services import record_consent
from tenants.context import tenant_context
from tests.factories import (
    AIUsageFactory,
    AppointmentFactory,
    BotRunFactory,
    ChannelFactory,
    ContactFactory,
    ConversationFactory,
    DealFactory,
    InboundWebhookFactory,
    KnowledgeChunkFactory,
    KnowledgeDocumentFactory,
    LeadFactory,
    MessageFactory,
    MessageStatusEventFactory,
    NoteFactory,
    TaskFactory,
)

PHONE = "+447700900123"
DIGITS = "447700900123"
EMAIL = "ana.subject@example.org"
OTHER_PHONE = "+447700900456"
OTHER_EMAIL = "bruno.other@example.org"


@dataclasses.dataclass
class World:
    tenant: object
    subject: Contact
    other: Contact
    channel: object
    conversation: object
    other_conversation: object
    inbound: Message


def build(tenant, *, messages: int = 3) -> World:
    channel = ChannelFactory(tenant=tenant)
    subject = ContactFactory(
        tenant=tenant, name="Ana Subject", phone=PHONE, email=EMAIL, attributes={"vip": EMAIL}
    )
    other = ContactFactory(tenant=tenant, name="Bruno Other", phone=OTHER_PHONE, email=OTHER_EMAIL)
    conversation = ConversationFactory(
        tenant=tenant, channel=channel, contact=subject, last_message_preview=f"mail {EMAIL}"
    )
    other_conversation = ConversationFactory(tenant=tenant, channel=channel, contact=other)
    inbound = MessageFactory(
        tenant=tenant, conversation=conversation, body=f"Please delete me, I am {EMAIL}"
    )
    for n in range(messages - 1):
        MessageFactory(tenant=tenant, conversation=conversation, body=f"message {n} from {PHONE}")
    outbound = MessageStatusEventFactory(
        tenant=tenant,
        message__conversation=conversation,
        message__body=f"Hi Ana, we wrote to {EMAIL}",
        error_reason=f"could not reach {PHONE}",
    ).message
    MessageFactory(tenant=tenant, conversation=other_conversation, body="Bruno's own words")
    BotRunFactory(tenant=tenant, inbound_message=inbound, reply_message=outbound)
    usage = AIUsageFactory(tenant=tenant, conversation=conversation)
    AIUsageFactory(tenant=tenant, conversation=other_conversation)
    # Raw payloads as Twilio (form-encoded) and Meta (JSON) send them.
    InboundWebhookFactory(
        tenant=tenant,
        channel=channel,
        content_type="application/x-www-form-urlencoded",
        body="From=whatsapp%3A%2B447700900123&Body=Please+delete+me",
    )
    InboundWebhookFactory(
        tenant=tenant,
        channel=channel,
        body='{"entry":[{"changes":[{"value":{"contacts":[{"wa_id":"447700900123"}]}}]}]}',
    )
    InboundWebhookFactory(
        tenant=tenant, channel=channel, body='{"From": "whatsapp:+447700900456", "Body": "hi"}'
    )
    # Someone pasted the customer's e-mail into the knowledge base.
    pasted = KnowledgeDocumentFactory(
        tenant=tenant, content=f"Ana ({EMAIL}) asked about opening hours."
    )
    KnowledgeChunkFactory(tenant=tenant, document=pasted, text=f"Ana ({EMAIL}) asked about hours.")
    kept_chunk = KnowledgeChunkFactory(tenant=tenant)
    if connection.vendor == "postgresql":
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE channels_app_knowledgechunk SET search_vector = to_tsvector('simple', text)"
            )
    NoteFactory(tenant=tenant, contact=subject, body=f"Call her on {PHONE}")
    NoteFactory(tenant=tenant, contact=other, body="Bruno prefers mornings")
    TaskFactory(tenant=tenant, contact=subject, title="Send Ana the quote")
    AppointmentFactory(tenant=tenant, contact=subject, location="Ana's home")
    deal = DealFactory(tenant=tenant, contact=subject, title="Ana's kitchen", value=1500)
    LeadFactory(tenant=tenant, contact=subject, fields={"email": EMAIL, "phone_number": PHONE})
    with tenant_context(tenant):
        record_consent(
            contact=subject,
            media=[Medium.WHATSAPP],
            purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
            evidence=f"Ana agreed on the phone ({PHONE})",
            message=inbound,  # a relation without a reverse name: erasure must still unlink it
        )
        record_consent(
            contact=other,
            media=[Medium.WHATSAPP],
            purposes=[Purpose.TRANSACTIONAL],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
            evidence="Bruno agreed",
        )
        record_access(action=Action.VIEWED_CONTACT, obj=subject, detail="opened the contact")
        upload = ContactImport(original_name="spring-fair.csv", headers=["name", "phone"])
        upload.file.save(
            "spring-fair.csv",
            ContentFile(f"name,phone\nAna,{PHONE}\nBruno,{OTHER_PHONE}\n".encode()),
            save=True,
        )
        other_upload = ContactImport(original_name="other.csv", headers=["name", "phone"])
        other_upload.file.save(
            "other.csv", ContentFile(f"name,phone\nBruno,{OTHER_PHONE}\n".encode()), save=True
        )
    world = World(
        tenant=tenant,
        subject=subject,
        other=other,
        channel=channel,
        conversation=conversation,
        other_conversation=other_conversation,
        inbound=inbound,
    )
    world.usage = usage
    world.deal = deal
    world.kept_chunk = kept_chunk
    return world


def add_messages(world: World, count: int) -> None:
    """Many messages at once (bulk insert), for the big-subject tests and the benchmark."""
    with tenant_context(world.tenant):
        Message.objects.bulk_create(
            [
                Message(
                    conversation=world.conversation,
                    channel=world.channel,
                    direction=Message.Direction.INBOUND,
                    sender_kind=Message.SenderKind.CUSTOMER,
                    body=f"bulk message {n}",
                    status=Message.Status.RECEIVED,
                    tenant=world.tenant,
                )
                for n in range(count)
            ],
            batch_size=2000,
        )
