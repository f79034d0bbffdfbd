"""P9: retention purges remove what the business's policies no longer allow, and only that.

The clock is passed in (`now=`): rows are dated relative to a fixed moment."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.models import Conversation, InboundWebhook, Message, MessageStatusEvent
from crm.models import ContactImport
from privacy import retention
from privacy.models import AccessLogEntry, PurgeReport
from privacy.registry import REGISTRY, Erasure, Retention, Unmatched, declare, problems
from tenants.context import tenant_context
from tests.factories import (
    AccessLogEntryFactory,
    AppointmentFactory,
    BotRunFactory,
    ChannelFactory,
    ConsentEventFactory,
    ContactImportFactory,
    ConversationFactory,
    InboundWebhookFactory,
    MessageFactory,
    MessageStatusEventFactory,
    PurgeReportFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def resolved_conversation(tenant, *, days_ago: float, messages: int = 2):
    conversation = ConversationFactory(
        tenant=tenant,
        status=Conversation.Status.RESOLVED,
        resolved_at=NOW - timedelta(days=days_ago),
    )
    for _ in range(messages):
        MessageFactory(tenant=tenant, conversation=conversation)
    return conversation


def purge(tenant, **kwargs):
    with tenant_context(tenant):
        return retention.purge_expired(now=NOW, **kwargs)


def count(tenant, model, **filters):
    with tenant_context(tenant):
        return model.objects.filter(**filters).count()


def test_messages_of_conversations_resolved_longer_ago_than_the_policy_go(tenant_a):
    old = resolved_conversation(tenant_a, days_ago=31)
    recent = resolved_conversation(tenant_a, days_ago=29)
    open_one = ConversationFactory(tenant=tenant_a)  # never resolved: kept however old
    MessageFactory(tenant=tenant_a, conversation=open_one, created_at=NOW - timedelta(days=400))

    report = purge(tenant_a)

    assert count(tenant_a, Message, conversation=old) == 0
    assert count(tenant_a, Conversation, pk=old.pk) == 0
    assert count(tenant_a, Message, conversation=recent) == 2
    assert count(tenant_a, Message, conversation=open_one) == 1
    assert report.status == PurgeReport.Status.COMPLETE
    assert report.counts["messages"]["channels_app.Message"] == 2
    assert report.counts["messages"]["channels_app.Conversation"] == 1


def test_status_events_and_bot_runs_go_with_their_messages(tenant_a):
    old = resolved_conversation(tenant_a, days_ago=40, messages=0)
    event = MessageStatusEventFactory(
        tenant=tenant_a, message=MessageFactory(tenant=tenant_a, conversation=old)
    )
    run = BotRunFactory(
        tenant=tenant_a, inbound_message=MessageFactory(tenant=tenant_a, conversation=old)
    )

    report = purge(tenant_a)

    assert count(tenant_a, MessageStatusEvent, pk=event.pk) == 0
    with tenant_context(tenant_a):
        assert not type(run).objects.filter(pk=run.pk).exists()
    assert report.counts["messages"]["channels_app.MessageStatusEvent"] == 1
    assert report.counts["messages"]["channels_app.BotRun"] == 1


def test_records_that_point_at_purged_messages_stay_and_lose_only_the_link(tenant_a):
    old = resolved_conversation(tenant_a, days_ago=40, messages=0)
    reminder = MessageFactory(tenant=tenant_a, conversation=old)
    reply = MessageFactory(tenant=tenant_a, conversation=old)
    appointment = AppointmentFactory(
        tenant=tenant_a, contact=old.contact, reminder_message=reminder,
        customer_reply_message=reply,
    )  # fmt: skip
    consent = ConsentEventFactory(tenant=tenant_a, contact=old.contact, message=reply)

    report = purge(tenant_a)

    assert report.counts["messages"]["channels_app.Message"] == 2
    with tenant_context(tenant_a):
        appointment.refresh_from_db()
        consent.refresh_from_db()
    assert appointment.reminder_message_id is None
    assert appointment.customer_reply_message_id is None
    assert consent.message_id is None  # the consent proof itself is kept


def test_a_large_purge_goes_in_key_order_and_reads_each_row_once(tenant_a):
    first = resolved_conversation(tenant_a, days_ago=60, messages=4)
    second = resolved_conversation(tenant_a, days_ago=60, messages=4)

    with CaptureQueriesContext(connection) as queries:
        report = purge(tenant_a, batch_size=3)

    assert count(tenant_a, Message) == 0
    assert count(tenant_a, Conversation, pk__in=[first.pk, second.pk]) == 0
    assert report.counts["messages"]["channels_app.Message"] == 8
    # Each batch is the next slice of the business's messages in the thread index's order,
    # starting after the last row of the one before, with each row's expiry looked up by key.
    walk = 'ORDER BY "conversation_id", "created_at", "id" LIMIT 3'
    walks = [q["sql"] for q in queries if q["sql"].endswith(walk)]
    assert len(walks) == 4  # 3 + 3 + 2, then one that finds nothing
    assert ") > (" not in walks[0]
    assert all('("conversation_id", "created_at", "id") > (' in sql for sql in walks[1:])
    # Nothing else reads the messages to choose them.
    assert not [q for q in queries if q["sql"].startswith('SELECT "channels_app_message"')]


def test_a_batch_reads_a_slice_of_the_business_and_deletes_only_what_expired_in_it(tenant_a):
    # Live and expired conversations, their messages interleaved by key.
    live = ConversationFactory(tenant=tenant_a, status=Conversation.Status.OPEN)
    old = resolved_conversation(tenant_a, days_ago=60, messages=0)
    recent = resolved_conversation(tenant_a, days_ago=1, messages=0)
    for _ in range(4):
        for conversation in (live, old, recent):
            MessageFactory(tenant=tenant_a, conversation=conversation)

    report = purge(tenant_a, batch_size=2)

    assert count(tenant_a, Message, conversation=old) == 0
    assert count(tenant_a, Message, conversation=live) == 4
    assert count(tenant_a, Message, conversation=recent) == 4
    assert count(tenant_a, Conversation, pk=old.pk) == 0
    assert report.status == PurgeReport.Status.COMPLETE
    assert report.counts["messages"]["channels_app.Message"] == 4


def test_a_status_for_a_message_never_matched_goes_after_the_payload_retention(tenant_a):
    """Such a status never reaches its message's conversation: it is kept as long as raw
    payloads (7 days), counted from when it arrived."""
    channel = ChannelFactory(tenant=tenant_a)

    def unmatched(days_ago, provider_id):
        return MessageStatusEventFactory(
            tenant=tenant_a, message=None, channel=channel, provider_message_id=provider_id,
            received_at=NOW - timedelta(days=days_ago),
        )  # fmt: skip

    old, recent = unmatched(10, "SM-old"), unmatched(1, "SM-recent")
    live = MessageFactory(tenant=tenant_a, conversation=ConversationFactory(tenant=tenant_a))
    matched = MessageStatusEventFactory(
        tenant=tenant_a, message=live, received_at=NOW - timedelta(days=10)
    )
    with tenant_context(tenant_a):
        preview = retention.preview(now=NOW)
    assert preview["webhook_payloads"]["channels_app.MessageStatusEvent"] == 1

    report = purge(tenant_a)

    with tenant_context(tenant_a):
        left = set(MessageStatusEvent.objects.values_list("pk", flat=True))
    assert old.pk not in left
    assert {recent.pk, matched.pk} <= left
    assert report.counts["webhook_payloads"]["channels_app.MessageStatusEvent"] == 1
    assert "channels_app.MessageStatusEvent" not in report.counts.get("messages", {})


def test_a_retention_of_zero_keeps_everything(tenant_a):
    tenant_a.message_retention_days = 0
    tenant_a.webhook_payload_retention_days = 0
    tenant_a.save()
    old = resolved_conversation(tenant_a, days_ago=3650)
    InboundWebhookFactory(tenant=tenant_a, received_at=NOW - timedelta(days=3650))

    report = purge(tenant_a)

    assert count(tenant_a, Message, conversation=old) == 2
    assert count(tenant_a, InboundWebhook) == 1
    assert "messages" not in report.counts and "webhook_payloads" not in report.counts
    assert report.policies["messages"] == 0


def test_webhook_payloads_and_the_access_log_follow_their_own_policies(tenant_a):
    InboundWebhookFactory(tenant=tenant_a, received_at=NOW - timedelta(days=8))
    kept_payload = InboundWebhookFactory(tenant=tenant_a, received_at=NOW - timedelta(days=6))
    AccessLogEntryFactory(tenant=tenant_a, created_at=NOW - timedelta(days=366))
    kept_entry = AccessLogEntryFactory(tenant=tenant_a, created_at=NOW - timedelta(days=364))

    report = purge(tenant_a)

    with tenant_context(tenant_a):
        assert list(InboundWebhook.objects.values_list("pk", flat=True)) == [kept_payload.pk]
        assert list(AccessLogEntry.objects.values_list("pk", flat=True)) == [kept_entry.pk]
    assert report.category_totals()["webhook_payloads"] == 1
    assert report.category_totals()["access_log"] == 1


def test_export_files_are_deleted_from_storage_with_their_rows(tenant_a):
    old = ContactImportFactory(tenant=tenant_a)
    recent = ContactImportFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        ContactImport.objects.filter(pk=old.pk).update(created_at=NOW - timedelta(days=8))
    old_file, recent_file = old.file.name, recent.file.name
    assert default_storage.exists(old_file)

    purge(tenant_a)

    assert not default_storage.exists(old_file)
    assert default_storage.exists(recent_file)
    assert count(tenant_a, ContactImport) == 1


def test_other_businesses_are_untouched(tenant_a, tenant_b):
    resolved_conversation(tenant_a, days_ago=60)
    theirs = resolved_conversation(tenant_b, days_ago=60)

    purge(tenant_a)

    assert count(tenant_a, Message) == 0
    assert count(tenant_b, Message, conversation=theirs) == 2


def test_the_purge_works_in_bounded_batches(tenant_a):
    resolved_conversation(tenant_a, days_ago=60, messages=7)

    report = purge(tenant_a, batch_size=3)

    assert count(tenant_a, Message) == 0
    # 7 messages in batches of 3; the conversation goes with the last one (`Behind`).
    assert report.batches == 3
    assert report.counts["messages"]["channels_app.Message"] == 7
    assert report.counts["messages"]["channels_app.Conversation"] == 1


def test_an_interrupted_purge_leaves_whole_batches_and_the_next_run_finishes(tenant_a):
    old = resolved_conversation(tenant_a, days_ago=60, messages=5)

    first = purge(tenant_a, batch_size=2, max_batches=1)

    assert first.status == PurgeReport.Status.INCOMPLETE
    assert count(tenant_a, Message, conversation=old) == 3
    # The conversation waits for its last message: nothing points at a missing row.
    assert count(tenant_a, Conversation, pk=old.pk) == 1

    second = purge(tenant_a, batch_size=2)

    assert second.status == PurgeReport.Status.COMPLETE
    assert count(tenant_a, Message) == 0
    assert count(tenant_a, Conversation) == 0
    assert second.counts["messages"]["channels_app.Message"] == 3


def test_conversations_go_behind_the_walk_of_their_messages_not_after_all_of_them(tenant_a):
    """Messages are walked conversation by conversation; the conversations the walk has passed
    go with a later batch of messages, in its transaction, while what the deletes touched is
    still in memory (`retention.Behind`), not in a burst after every message of the business."""
    first, second, third, fourth, fifth = (
        resolved_conversation(tenant_a, days_ago=60, messages=3) for _ in range(5)
    )

    # Four batches of three messages, one conversation each. A full batch's last conversation
    # may go on in the next batch: after four, three conversations are passed, as many as a
    # batch holds rows, and they go in the fourth batch.
    report = purge(tenant_a, batch_size=3, max_batches=4)

    assert report.status == PurgeReport.Status.INCOMPLETE
    assert report.batches == 4
    for gone in (first, second, third):
        assert count(tenant_a, Conversation, pk=gone.pk) == 0
    assert count(tenant_a, Conversation, pk=fourth.pk) == 1
    assert count(tenant_a, Message, conversation=fourth) == 0
    assert count(tenant_a, Message, conversation=fifth) == 3
    assert report.counts["messages"] == {
        "channels_app.Message": 12,
        "channels_app.Conversation": 3,
    }

    finished = purge(tenant_a, batch_size=3)

    assert finished.status == PurgeReport.Status.COMPLETE
    assert count(tenant_a, Conversation) == 0 and count(tenant_a, Message) == 0
    assert finished.counts["messages"] == {
        "channels_app.Message": 3,
        "channels_app.Conversation": 2,
    }


def test_a_passed_conversation_that_is_not_expired_or_still_has_a_message_stays(tenant_a):
    kept_message = resolved_conversation(tenant_a, days_ago=60, messages=2)
    reopened = resolved_conversation(tenant_a, days_ago=60, messages=2)
    gone = resolved_conversation(tenant_a, days_ago=60, messages=2)
    recent = resolved_conversation(tenant_a, days_ago=5, messages=2)
    with tenant_context(tenant_a):
        survivor = Message.objects.filter(conversation=kept_message).first()
    happened = []

    def meanwhile(execute, sql, params, many, context):
        if sql.startswith('SELECT "conversation_id", "created_at"') and "walk" not in happened:
            # A late status event for one message, after the status events' turn: that
            # message stays, and so its conversation.
            happened.append("walk")
            MessageStatusEventFactory(tenant=tenant_a, message=survivor)
        elif sql.startswith('DELETE FROM "channels_app_message"') and "delete" not in happened:
            # The customer writes again as the messages go: the conversation is reopened.
            happened.append("delete")
            Conversation.objects.filter(pk=reopened.pk).update(resolved_at=None)
        return execute(sql, params, many, context)

    with tenant_context(tenant_a), connection.execute_wrapper(meanwhile):
        report = retention.purge_expired(now=NOW, batch_size=100)

    assert happened == ["walk", "delete"]
    assert count(tenant_a, Conversation, pk=gone.pk) == 0
    assert count(tenant_a, Conversation, pk=kept_message.pk) == 1
    assert count(tenant_a, Message, pk=survivor.pk) == 1
    assert count(tenant_a, Conversation, pk=reopened.pk) == 1
    assert count(tenant_a, Conversation, pk=recent.pk) == 1
    assert count(tenant_a, Message, conversation=recent) == 2
    assert report.counts["messages"]["channels_app.Conversation"] == 1
    assert report.batches == 1  # it went with the messages' one batch, not in its own turn


def test_only_a_walk_that_leads_with_its_key_to_a_later_parent_has_conversations_behind():
    messages = REGISTRY["channels_app.Message"]
    ordered = retention.purge_order(retention.timed_entries(Retention.MESSAGES))

    behind = retention.Behind.of(messages, ordered)

    assert behind is not None and behind.parent.model is Conversation
    for entry in ordered:
        if entry is not messages:
            assert retention.Behind.of(entry, ordered) is None, entry.label


def test_a_run_whose_worker_died_is_marked_interrupted_and_its_work_is_done(tenant_a):
    dead = PurgeReportFactory(tenant=tenant_a, status=PurgeReport.Status.RUNNING, finished_at=None)
    resolved_conversation(tenant_a, days_ago=60)

    report = purge(tenant_a)

    with tenant_context(tenant_a):
        dead.refresh_from_db()
    assert dead.status == PurgeReport.Status.INTERRUPTED
    assert report.status == PurgeReport.Status.COMPLETE
    assert count(tenant_a, Message) == 0


def test_running_twice_removes_nothing_more(tenant_a):
    resolved_conversation(tenant_a, days_ago=60)
    kept = resolved_conversation(tenant_a, days_ago=1)
    purge(tenant_a)

    again = purge(tenant_a)

    assert again.total == 0
    assert count(tenant_a, Message, conversation=kept) == 2


def test_the_dry_run_shows_what_would_go_and_deletes_nothing(tenant_a):
    resolved_conversation(tenant_a, days_ago=60, messages=3)
    resolved_conversation(tenant_a, days_ago=1, messages=3)
    InboundWebhookFactory(tenant=tenant_a, received_at=NOW - timedelta(days=30))

    with tenant_context(tenant_a):
        preview = retention.preview(now=NOW)
        report = retention.record_dry_run(now=NOW)

    assert preview["messages"]["channels_app.Message"] == 3
    assert preview["messages"]["channels_app.Conversation"] == 1
    assert preview["webhook_payloads"]["channels_app.InboundWebhook"] == 1
    assert report.dry_run and report.counts == preview
    assert count(tenant_a, Message) == 6
    assert count(tenant_a, InboundWebhook) == 1


def test_a_customer_writing_again_keeps_the_conversation(tenant_a):
    conversation = resolved_conversation(tenant_a, days_ago=60, messages=2)
    purge(tenant_a, batch_size=1, max_batches=1)
    # The customer writes again before the next run: the conversation is reopened.
    with tenant_context(tenant_a):
        Conversation.objects.filter(pk=conversation.pk).update(
            status=Conversation.Status.OPEN, resolved_at=None
        )
    MessageFactory(tenant=tenant_a, conversation=conversation)

    purge(tenant_a)

    assert count(tenant_a, Conversation, pk=conversation.pk) == 1
    assert count(tenant_a, Message, conversation=conversation) == 2


def test_every_model_of_a_timed_category_says_when_its_retention_starts():
    assert problems() == []
    for entry in REGISTRY.values():
        if entry.retention in (
            Retention.MESSAGES,
            Retention.WEBHOOK_PAYLOADS,
            Retention.ACCESS_LOG,
            Retention.EXPORT_FILES,
        ):
            assert entry.expires_by, entry.label


def test_a_model_declared_without_its_expiry_is_reported():
    original = REGISTRY[InboundWebhook._meta.label]
    try:
        declare(
            InboundWebhook,
            fields=("body",),
            erasure=Erasure.SCAN_AND_DELETE,
            retention=Retention.WEBHOOK_PAYLOADS,
        )
        assert any("expires_by" in p and "InboundWebhook" in p for p in problems())
        declare(
            InboundWebhook,
            fields=("body",),
            erasure=Erasure.SCAN_AND_DELETE,
            retention=Retention.WEBHOOK_PAYLOADS,
            expires_by="content_type",
        )
        assert any("not a date-time field" in p for p in problems())
    finally:
        REGISTRY[original.label] = original


def test_an_unmatched_rule_on_a_key_that_cannot_be_empty_is_reported():
    original = REGISTRY[MessageStatusEvent._meta.label]
    try:
        REGISTRY[original.label] = dataclasses.replace(
            original,
            unmatched=Unmatched(
                key="channel", retention=Retention.WEBHOOK_PAYLOADS, expires_by="received_at"
            ),
        )
        assert any("unmatched.key must be a nullable key" in p for p in problems())
    finally:
        REGISTRY[original.label] = original


def test_a_purge_walk_over_a_missing_or_nullable_column_is_reported():
    original = REGISTRY[Message._meta.label]
    try:
        for walk, problem in (
            (("thread_id", "id"), "names a column it does not have"),
            (("author_id", "id"), "has a column that can be null"),
        ):
            declare(
                Message,
                fields=original.fields,
                subject_path=original.subject_path,
                erasure=original.erasure,
                retention=original.retention,
                expires_by=original.expires_by,
                purge_walk=walk,
            )
            assert any(problem in p and "Message" in p for p in problems()), walk
    finally:
        REGISTRY[original.label] = original


def test_the_daily_task_purges_every_active_business_and_skips_locked_ones(tenant_a, tenant_b):
    from privacy import tasks
    from tenants.models import Tenant

    resolved_conversation(tenant_a, days_ago=400)
    locked = resolved_conversation(tenant_b, days_ago=400)
    Tenant.objects.filter(pk=tenant_b.pk).update(status=Tenant.Status.DELETION_REQUESTED)

    assert tasks.purge_expired() == 1  # one business enqueued (eager in tests)

    assert count(tenant_a, Message) == 0
    assert count(tenant_b, Message, conversation=locked) == 2


def test_operators_run_the_purge_from_the_command_line(tenant_a):
    import io

    from django.core.management import call_command

    resolved_conversation(tenant_a, days_ago=400, messages=3)
    out = io.StringIO()

    call_command("purge_expired", "--tenant", tenant_a.slug, "--dry-run", stdout=out)
    assert "alpha-dental: would remove 4 rows (messages 4)" in out.getvalue()
    assert count(tenant_a, Message) == 3

    call_command("purge_expired", "--tenant", tenant_a.slug, stdout=out)
    assert "alpha-dental: removed 4 rows" in out.getvalue()
    assert count(tenant_a, Message) == 0


# --- PostgreSQL: keys checked once per batch instead of once per row -------------------------


@pytest.mark.postgres_only
def test_on_postgresql_the_purge_checks_keys_per_batch_itself(tenant_a):
    resolved_conversation(tenant_a, days_ago=60, messages=3)

    with CaptureQueriesContext(connection) as queries:
        report = purge(tenant_a)

    assert report.status == PurgeReport.Status.COMPLETE
    assert count(tenant_a, Message) == 0
    # The setup scripts give the role the right; without it the purge deletes the plain way.
    assert retention.purge_rights().checks_keys
    assert any("session_replication_role = replica" in q["sql"] for q in queries)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)  # each batch in a transaction of its own, as in production
def test_on_postgresql_the_purge_compresses_the_wal_of_its_batches(tenant_a):
    """And reads by key only: no sequential scan of every business's rows in its batches."""
    resolved_conversation(tenant_a, days_ago=60, messages=3)
    seen = []

    def observe(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "DELETE FROM" in sql:  # what the batch's transaction is set to when it deletes
            with context["connection"].cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('wal_compression'), current_setting('enable_seqscan')"
                )
                seen.append(cursor.fetchone())
        return result

    with connection.execute_wrapper(observe):
        report = purge(tenant_a)

    assert report.status == PurgeReport.Status.COMPLETE
    assert retention.purge_rights().wal_compression == "lz4"
    assert seen and set(seen) == {("lz4", "off")}
    with connection.cursor() as cursor:  # only in the batches' own transactions
        cursor.execute(
            "SELECT current_setting('wal_compression'), current_setting('enable_seqscan')"
        )
        assert cursor.fetchone() == ("off", "on")


@pytest.mark.postgres_only
def test_the_wal_compression_can_be_turned_off(tenant_a, settings):
    settings.RETENTION_PURGE_WAL_COMPRESSION = ""
    resolved_conversation(tenant_a, days_ago=60, messages=2)

    with CaptureQueriesContext(connection) as queries:
        report = purge(tenant_a)

    assert retention.purge_rights().wal_compression == ""
    assert not any("set_config('wal_compression'" in q["sql"] for q in queries)
    assert report.counts["messages"]["channels_app.Message"] == 2


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "values",
    [[1, 22, 9_000_000_000], ["plain", 'with "quotes"', "back\\slash", "comma, {brace}", "NULL"]],
)
def test_keys_go_to_postgresql_as_one_array_read_back_exactly(values):
    sql_type = "bigint" if isinstance(values[0], int) else "text"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{sql_type}[]", [retention._array_text(values)])
        assert cursor.fetchone()[0] == values


@pytest.mark.postgres_only
def test_a_reference_left_behind_fails_the_batch_and_nothing_is_deleted(tenant_a):
    old = resolved_conversation(tenant_a, days_ago=60, messages=0)
    message = MessageFactory(tenant=tenant_a, conversation=old)
    # A status event for a message of the batch, as if written after the batch was chosen.
    MessageStatusEventFactory(tenant=tenant_a, message=message)

    with tenant_context(tenant_a):
        with (
            pytest.raises(IntegrityError, match=r"MessageStatusEvent\.message"),
            transaction.atomic(),
        ):
            retention.delete_rows(Message, [message.pk], checks_keys=True)
        assert Message.objects.filter(pk=message.pk).exists()


@pytest.mark.postgres_only
def test_without_the_right_the_purge_deletes_the_plain_way(tenant_a, settings):
    settings.RETENTION_PURGE_OWN_KEY_CHECKS = False
    old = resolved_conversation(tenant_a, days_ago=60, messages=2)
    AppointmentFactory(
        tenant=tenant_a, contact=old.contact,
        reminder_message=MessageFactory(tenant=tenant_a, conversation=old),
    )  # fmt: skip

    with CaptureQueriesContext(connection) as queries:
        report = purge(tenant_a)

    assert not retention.purge_rights().checks_keys
    assert not any("session_replication_role" in q["sql"] for q in queries)
    assert report.counts["messages"]["channels_app.Message"] == 3
    assert count(tenant_a, Conversation, pk=old.pk) == 0


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_second_purge_of_the_same_business_leaves_the_running_one_alone(tenant_a):
    resolved_conversation(tenant_a, days_ago=60)
    running = PurgeReportFactory(tenant=tenant_a, status=PurgeReport.Status.RUNNING)
    holding, done = threading.Event(), threading.Event()

    def first_run():  # in its own connection, as another worker would be
        try:
            with retention.only_run(tenant_a) as alone:
                assert alone
                holding.set()
                done.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=first_run)
    thread.start()
    assert holding.wait(timeout=10)
    try:
        second = purge(tenant_a)

        assert second.pk == running.pk  # the running one's report, as it stands
        assert second.status == PurgeReport.Status.RUNNING
        assert count(tenant_a, Message) == 2
    finally:
        done.set()
        thread.join(timeout=10)

    # Nobody holds the business's purge any more: that report's run died, and this one
    # finishes its work.
    third = purge(tenant_a)

    assert third.status == PurgeReport.Status.COMPLETE
    assert count(tenant_a, Message) == 0
    with tenant_context(tenant_a):
        running.refresh_from_db()
    assert running.status == PurgeReport.Status.INTERRUPTED
