"""Two callers send with the same idempotency key at the same moment: one message is queued
and both get it (the unique constraint decides, the loser reads the winner's row)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from channels_app.models import Message
from channels_app.services.sending import send_message
from privacy.models import Purpose
from tenants.context import tenant_context
from tests.channels.sending_support import conversation_on
from tests.factories import ChannelFactory

pytestmark = [
    pytest.mark.postgres_only,  # real concurrent transactions
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("delivery_settings"),
]


def test_two_simultaneous_sends_with_one_key_queue_one_message(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    conversation = conversation_on(channel)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def caller():
        try:
            with tenant_context(tenant_a):
                barrier.wait(timeout=10)
                results.append(
                    send_message(
                        conversation=conversation,
                        body="Your table is booked",
                        purpose=Purpose.TRANSACTIONAL,
                        sender_kind=Message.SenderKind.API,
                        idempotency_key="api-request-42",
                    ).pk
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors
    assert len(results) == 4 and len(set(results)) == 1
    with tenant_context(tenant_a):
        assert Message.objects.filter(idempotency_key="api-request-42").count() == 1
