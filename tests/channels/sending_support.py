"""Helpers of the sending and delivery tests (their fixtures are in sending_fixtures.py)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from channels_app.models import Medium, Message
from privacy.models import ConsentAction, ConsentSource, Purpose
from privacy.services import handle_inbound_keyword, record_consent
from tenants.context import tenant_context
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MessageFactory,
)


def conversation_on(channel, *, wrote_ago: timedelta | None = timedelta(minutes=5), **kwargs):
    """A conversation whose customer last wrote `wrote_ago` ago (None: never)."""
    last_inbound = timezone.now() - wrote_ago if wrote_ago is not None else None
    return ConversationFactory(
        tenant=channel.tenant,
        channel=channel,
        contact=kwargs.pop("contact", None) or ContactFactory(tenant=channel.tenant),
        last_inbound_at=last_inbound,
        **kwargs,
    )


def grant(contact, *purposes, medium=Medium.WHATSAPP):
    with tenant_context(contact.tenant):
        record_consent(
            contact=contact,
            media=[medium],
            purposes=list(purposes) or [Purpose.TRANSACTIONAL],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
            evidence="Agreed on the phone",
        )


def customer_sends(conversation, text: str):
    """A message from the customer as the inbound pipeline stores it, keywords handled."""
    with tenant_context(conversation.tenant):
        message = MessageFactory(tenant=conversation.tenant, conversation=conversation, body=text)
        handle_inbound_keyword(message, contact=conversation.contact, channel=conversation.channel)
        return message


def reload(message: Message) -> Message:
    with tenant_context(message.tenant):
        message.refresh_from_db()
    return message
