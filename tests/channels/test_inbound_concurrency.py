"""Providers deliver the same webhook several times at once: on PostgreSQL, with real
concurrent transactions, it is still stored once and statuses still only move forward."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from channels_app.models import Conversation, Message, MessageStatusEvent
from channels_app.providers.sandbox import signed_request
from channels_app.services.inbound import apply_pending_status_events, receive_webhook
from crm.models import Contact
from tenants.context import tenant_context
from tests.factories import ChannelFactory, MessageFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

THREADS = 8


def at_once(channel, requests) -> list:
    """Each request in its own thread and connection, released together."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def run(index, request):
        try:
            with tenant_context(channel.tenant):
                barrier.wait(timeout=10)
                results[index] = receive_webhook(channel=channel, request=request)
        except Exception as exc:  # reported by the assertion below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return results


def test_identical_webhooks_at_the_same_moment_store_one_message(tenant_a, eager_celery):
    channel = ChannelFactory(tenant=tenant_a)
    event = {"type": "message", "id": "sbx-in-race", "from": "+14155550123", "body": "Hi"}
    request = signed_request(channel, [event])

    outcomes = at_once(channel, [request] * THREADS)

    assert sum(o.accepted for o in outcomes) == 1
    assert sum(o.duplicates for o in outcomes) == THREADS - 1
    with tenant_context(tenant_a):
        assert Message.objects.count() == 1
        assert Contact.objects.count() == 1
        conversation = Conversation.objects.get()
        assert conversation.unread_count == 1


def test_concurrent_status_callbacks_never_move_a_status_backwards(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    message = MessageFactory(
        tenant=tenant_a,
        conversation__channel=channel,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.ACCEPTED,
        provider_message_id="sbx-out-race",
    )
    statuses = ["sent", "delivered", "read", "sent", "delivered", "read", "read", "sent"]
    requests = [
        signed_request(channel, [{"type": "status", "id": "sbx-out-race", "status": s}])
        for s in statuses
    ]

    outcomes = at_once(channel, requests)

    assert sum(o.accepted for o in outcomes) == 3
    with tenant_context(tenant_a):
        message.refresh_from_db()
        assert message.status == Message.Status.READ
        assert MessageStatusEvent.objects.filter(message=message, applied=True).count() == 3


def test_a_status_racing_the_send_that_records_its_provider_id_is_applied(tenant_a):
    """The provider reports "delivered" while our send is still writing the provider id."""
    channel = ChannelFactory(tenant=tenant_a)
    message = MessageFactory(
        tenant=tenant_a,
        conversation__channel=channel,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.SENDING,
        provider_message_id="",
    )
    id_written = threading.Event()
    results: dict = {}

    def send():
        try:
            with tenant_context(tenant_a), transaction.atomic():
                Message.objects.filter(pk=message.pk).update(provider_message_id="sbx-out-late")
                message.provider_message_id = "sbx-out-late"
                id_written.set()
                threading.Event().wait(0.5)  # the callback arrives meanwhile
                results["applied"] = apply_pending_status_events(message)
        except Exception as exc:
            results["send"] = exc
        finally:
            connection.close()

    def callback():
        try:
            id_written.wait(5)
            with tenant_context(tenant_a):
                request = signed_request(
                    channel, [{"type": "status", "id": "sbx-out-late", "status": "delivered"}]
                )
                results["outcome"] = receive_webhook(channel=channel, request=request)
        except Exception as exc:
            results["callback"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=send), threading.Thread(target=callback)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert "send" not in results and "callback" not in results, results
    with tenant_context(tenant_a):
        message.refresh_from_db()
        assert message.status == Message.Status.DELIVERED
        event = MessageStatusEvent.objects.get()
        assert event.applied and event.message_id == message.pk


def test_a_new_customers_first_messages_at_once_share_one_contact_and_conversation(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    requests = [
        signed_request(
            channel,
            [{"type": "message", "id": f"sbx-in-burst-{i}", "from": "+14155550124", "body": "Hi"}],
        )
        for i in range(THREADS)
    ]

    outcomes = at_once(channel, requests)

    assert sum(o.accepted for o in outcomes) == THREADS
    with tenant_context(tenant_a):
        assert Contact.objects.count() == 1
        conversation = Conversation.objects.get()
        assert conversation.messages.count() == THREADS
        assert conversation.unread_count == THREADS
