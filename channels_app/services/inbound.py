"""The inbound pipeline: a verified webhook becomes stored messages and statuses, exactly once.

`receive_webhook` is the one entry point for every provider (Twilio, Meta, the sandbox
simulator): verify the signature, parse into normalised events, then in one transaction store
each event once, create or find the contact and its conversation, move outbound statuses
forward only, act on STOP/START/HELP at once, and, after commit, hand new messages to the
follow-up work (`process_inbound`). Providers retry, duplicate and reorder their webhooks;
every path here is a no-op the second time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache, partial

from django.db import connection, transaction
from django.db.models import F
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app.models import (
    Channel,
    Conversation,
    InboundWebhook,
    Message,
    MessageStatusEvent,
)
from channels_app.providers.base import (
    InboundMessage,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
    provider_for,
)
from crm.models import Contact
from crm.phones import InvalidPhoneNumber, normalize_phone
from crm.services import find_or_create_contact_by_phone
from privacy import security
from tenants.context import require_current_tenant

logger = logging.getLogger(__name__)

PREVIEW_LENGTH = 200

# Provider error codes in a failed status that mean the customer unsubscribed.
OPT_OUT_CODES = frozenset({"21610"})  # Twilio: the recipient replied STOP
MARKETING_OPT_OUT_CODES = frozenset({"131050"})  # Meta: the user stopped marketing messages


# --- Follow-up work ----------------------------------------------------------------------------

# What happens to a new customer message after it is stored (appointment replies, the bot,
# automations, notifications): each handler takes the message. `process_inbound` runs them in
# ascending `order`, and may run them twice (a retried task), so a handler must be idempotent.
# A handler that returns True has consumed the message (a reply to an appointment reminder):
# the handlers after it do not see it, so the bot does not answer what was already handled.
FollowUp = Callable[[Message], bool | None]
FOLLOW_UPS: list[tuple[int, FollowUp]] = []

# Orders in use: replies to something the business asked (appointment confirmations) come
# first, the bot last.
ORDER_REPLIES = 100
ORDER_DEFAULT = 500
ORDER_BOT = 1000


def register_follow_up(handler: FollowUp | None = None, *, order: int = ORDER_DEFAULT):
    """Run `handler(message)` for every new inbound message that is not a STOP/START/HELP
    keyword. Usable as a decorator (with or without `order=`); registering twice is harmless."""

    def register(function: FollowUp) -> FollowUp:
        if all(existing is not function for _order, existing in FOLLOW_UPS):
            FOLLOW_UPS.append((order, function))
            FOLLOW_UPS.sort(key=lambda pair: pair[0])
        return function

    return register(handler) if handler is not None else register


def unregister_follow_up(handler: FollowUp) -> None:
    FOLLOW_UPS[:] = [pair for pair in FOLLOW_UPS if pair[1] is not handler]


def run_follow_ups(message: Message) -> None:
    for _order, handler in list(FOLLOW_UPS):
        if handler(message) is True:
            return


def run_follow_ups_for(*, message_id: int) -> None:
    """The follow-up work of one stored inbound message (the `process_inbound` task)."""
    if not FOLLOW_UPS:
        return
    message = (
        Message.objects.select_related("conversation__contact", "channel")
        .filter(pk=message_id, direction=Message.Direction.INBOUND)
        .first()
    )
    if message is None:
        return  # erased or purged since: nothing left to follow up
    run_follow_ups(message)


# --- Outcome -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedEvent:
    index: int  # position of the event in the webhook
    provider_message_id: str
    reason: str


@dataclass
class WebhookOutcome:
    """What one webhook changed; the view turns it into the provider's answer."""

    accepted: int = 0  # events stored now
    duplicates: int = 0  # events stored before (a retried or replayed webhook)
    rejected: list[RejectedEvent] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)  # new inbound messages
    keywords: int = 0  # of which STOP/START/HELP
    statuses_applied: int = 0  # status events matched to one of our messages
    statuses_unmatched: int = 0  # kept until the message's provider id is known
    channel_inactive: bool = False

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def error(self) -> str:
        return "; ".join(f"events[{r.index}]: {r.reason}" for r in self.rejected)


# --- Health counters ---------------------------------------------------------------------------


def record_rejection(
    *, channel: Channel, kind: str, reason: str, ip_address: str | None = None
) -> None:
    """Count a refused webhook on the channel's health panel and log why; a security event,
    with the sender's address.

    Called outside the pipeline's transaction, so the count stays although the webhook is
    refused (a burst of forged signatures is exactly what the panel must show).
    """
    counter = "rejected_signatures" if kind == WebhookRejected.SIGNATURE else "rejected_malformed"
    Channel.objects.filter(pk=channel.pk).update(
        **{counter: F(counter) + 1},
        last_rejection_at=timezone.now(),
        last_rejection_reason=reason[:300],
    )
    logger.warning(
        "webhook rejected (%s) on channel %s of tenant %s from %s: %s",
        kind,
        channel.pk,
        channel.tenant_id,
        ip_address or "an unknown address",
        reason,
    )
    security.record_webhook_rejection(
        channel=channel,
        forged=kind == WebhookRejected.SIGNATURE,
        reason=reason,
        ip_address=ip_address,
    )


# --- The pipeline ------------------------------------------------------------------------------


def receive_webhook(*, channel: Channel, request: WebhookRequest) -> WebhookOutcome:
    """Verify, parse and store one webhook of `channel` (whose tenant must be active).

    Raises WebhookRejected (already counted and logged) when the signature or the body is
    refused as a whole. Events refused one by one (an invalid phone number) are listed in
    the outcome while their valid siblings are stored: nothing valid is lost.
    """
    if require_current_tenant().pk != channel.tenant_id:
        raise ValueError("receive_webhook runs in the channel's tenant")
    adapter = provider_for(channel)
    try:
        adapter.verify(request)
        events = adapter.parse(request)
    except WebhookRejected as exc:
        record_rejection(
            channel=channel, kind=exc.kind, reason=exc.reason, ip_address=request.remote_ip
        )
        raise

    outcome = WebhookOutcome(channel_inactive=not channel.is_active)
    if outcome.channel_inactive:
        # Nothing valid is dropped, even on a switched-off channel; the panel says so.
        logger.warning("webhook for inactive channel %s accepted", channel.pk)

    # Phone numbers are checked before the transaction: a refused event costs no work.
    valid: list[tuple[int, InboundMessage | StatusUpdate, str]] = []
    for index, event in enumerate(events):
        phone = ""
        if isinstance(event, InboundMessage):
            try:
                phone = normalize_phone(event.from_phone)
            except InvalidPhoneNumber as exc:
                outcome.rejected.append(
                    RejectedEvent(index, event.provider_message_id, " ".join(exc.messages))
                )
                continue
        valid.append((index, event, phone))

    if valid:
        _store(channel=channel, request=request, events=valid, outcome=outcome)

    if outcome.rejected:
        record_rejection(
            channel=channel,
            kind=WebhookRejected.MALFORMED,
            reason=outcome.error,
            ip_address=request.remote_ip,
        )
    if outcome.statuses_unmatched:
        logger.info(
            "%s status event(s) for unknown messages kept on channel %s",
            outcome.statuses_unmatched,
            channel.pk,
        )
    return outcome


def _store(*, channel: Channel, request: WebhookRequest, events, outcome: WebhookOutcome):
    now = timezone.now()
    tenant_id = channel.tenant_id
    # Most webhooks are one status callback: then its one statement is its own transaction.
    one_status = len(events) == 1 and isinstance(events[0][1], StatusUpdate)
    if one_status and _store_status_in_one_statement(
        channel=channel, event=events[0][1], now=now, outcome=outcome
    ):
        return
    with transaction.atomic():
        for _index, event, phone in events:
            if isinstance(event, InboundMessage):
                _store_message(channel=channel, event=event, phone=phone, now=now, outcome=outcome)
            elif one_status or not _store_status_in_one_statement(
                channel=channel, event=event, now=now, outcome=outcome
            ):
                # (one_status: the one-statement path was tried above and declined.)
                _store_status(channel=channel, event=event, now=now, outcome=outcome)

        # The raw body helps with a customer's message that went wrong. Status callbacks are
        # not kept raw: every one is a MessageStatusEvent row already.
        carries_messages = any(isinstance(event, InboundMessage) for _i, event, _p in events)
        if carries_messages and (outcome.accepted or outcome.duplicates):
            raw = InboundWebhook(
                channel=channel,
                received_at=now,
                content_type=request.content_type[:100],
                body=request.body.decode("utf-8", errors="replace"),
                events=min(outcome.accepted, 32767),
                duplicates=min(outcome.duplicates, 32767),
            )
            _insert_once(raw)  # no unique constraint: always inserted
        # The bot and automations hear of a message only once it is safely stored.
        for message_id in outcome.message_ids:
            transaction.on_commit(partial(_enqueue_follow_up, tenant_id, message_id), robust=True)
    if outcome.message_ids or outcome.keywords:
        _touch_channel(channel, now=now, inactive=outcome.channel_inactive)


# The health panel shows the last inbound message to the minute; writing the channel's row on
# every webhook would make all of a busy channel's webhooks queue for that one row lock.
HEALTH_RESOLUTION = timedelta(minutes=1)


def _touch_channel(channel: Channel, *, now, inactive: bool) -> None:
    last = channel.last_inbound_at
    if last is not None and now - last < HEALTH_RESOLUTION and not inactive:
        return
    health = {"last_inbound_at": now}
    if inactive:
        health.update(
            last_error_at=now,
            last_error=_("Customers are still writing to this switched-off channel."),
        )
    Channel.objects.filter(pk=channel.pk).update(**health)
    channel.last_inbound_at = now


def _enqueue_follow_up(tenant_id: int, message_id: int) -> None:
    from channels_app.tasks import process_inbound

    process_inbound.delay(tenant_id, message_id)


def _insert_once(obj) -> bool:
    """Insert `obj` unless a unique constraint says it exists; True when inserted.

    One statement, `INSERT … ON CONFLICT DO NOTHING RETURNING id` (SQLite: `INSERT OR
    IGNORE`): no savepoint round trips on the hot path, and the transaction stays usable.
    Under concurrent identical webhooks on PostgreSQL the second insert waits for the first
    transaction and then inserts nothing, so exactly one row is ever written.
    """
    model = type(obj)
    obj.tenant_id = require_current_tenant().pk  # what TenantOwned.save() would do
    obj.check_same_tenant()
    fields = _insert_fields(model)
    values = [field.pre_save(obj, True) for field in fields]
    key = (model, connection.vendor)
    sql = _INSERT_SQL.get(key)
    if sql is None or any(hasattr(value, "resolve_expression") for value in values):
        sql, params = _compile_insert(model, fields, obj)
        if not any(hasattr(value, "resolve_expression") for value in values):
            _INSERT_SQL[key] = sql
    else:
        # The statement's text depends only on the model when every value is a plain value,
        # so it is compiled once per process; the values are prepared as the compiler would.
        params = [f.get_db_prep_save(v, connection) for f, v in zip(fields, values, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return True


_INSERT_SQL: dict[tuple[type, str], str] = {}


@lru_cache(maxsize=16)
def _insert_fields(model) -> list:
    fields = [
        f for f in model._meta.local_concrete_fields if not f.generated and f != model._meta.pk
    ]
    # Fields with their own placeholder SQL would make the text depend on values.
    if any(hasattr(field, "get_placeholder") for field in fields):
        raise TypeError(f"{model.__name__} has a field with its own placeholder SQL")
    return fields


def _compile_insert(model, fields, obj) -> tuple[str, list]:
    query = InsertQuery(model, on_conflict=OnConflict.IGNORE)
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [model._meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, list(params)


# --- Inbound messages --------------------------------------------------------------------------


def _store_message(
    *, channel: Channel, event: InboundMessage, phone: str, now, outcome: WebhookOutcome
) -> None:
    contact, conversation = _contact_and_conversation(channel=channel, event=event, phone=phone)
    if conversation is None:
        # None a moment ago; a concurrent webhook of the same customer may create it first.
        conversation = Conversation(channel=channel, contact=contact, last_message_at=now)
        if not _insert_once(conversation):
            conversation = Conversation.objects.get(channel=channel, contact=contact)
    # The customer's own time, when the provider gives it (a retried webhook arrives late),
    # never in the future.
    at = min(event.timestamp, now) if event.timestamp else now
    message = Message(
        conversation=conversation,
        channel=channel,
        direction=Message.Direction.INBOUND,
        sender_kind=Message.SenderKind.CUSTOMER,
        body=event.body,
        media=[item.as_json() for item in event.media],
        provider_message_id=event.provider_message_id,
        status=Message.Status.RECEIVED,
        created_at=at,
        status_changed_at=now,
    )
    if not _insert_once(message):
        # A retried or replayed webhook: the contact and conversation were only read.
        outcome.duplicates += 1
        return
    outcome.accepted += 1

    preview = _preview(event)
    _touch_conversation(conversation, at=at, preview=preview)
    # The same change in memory: the keyword reply below reads the window from it.
    if conversation.status == Conversation.Status.RESOLVED:
        conversation.status = Conversation.Status.OPEN
    conversation.resolved_at = None
    if conversation.last_inbound_at is None or conversation.last_inbound_at <= at:
        conversation.last_inbound_at = at
    if conversation.last_message_at <= at:
        conversation.last_message_at = at
        conversation.last_message_preview = preview
    conversation.unread_count += 1

    # STOP takes effect before anything else sees the message, inside this transaction.
    if _handle_keyword(message, contact=contact, channel=channel):
        outcome.keywords += 1
    else:
        outcome.message_ids.append(message.pk)


def _contact_and_conversation(*, channel: Channel, event: InboundMessage, phone: str):
    """The customer's contact and, when it exists, their conversation on this channel.

    One query reads both. A new number, or a known one whose empty name the provider's
    profile name fills, goes through `find_or_create_contact_by_phone` (safe under
    concurrent webhooks for the same new number).
    """
    contact, conversation = _read_contact_and_conversation(channel=channel, phone=phone)
    if contact is None or (event.profile_name and not contact.name):
        source = (
            Contact.Source.SANDBOX
            if channel.kind == Channel.Kind.SANDBOX
            else Contact.Source.INBOUND
        )
        contact, _created = find_or_create_contact_by_phone(
            phone=phone, name=event.profile_name, source=source
        )
    if conversation is not None:
        conversation.contact = contact
    return contact, conversation


def _read_contact_and_conversation(*, channel: Channel, phone: str):
    """(contact, conversation) of the active tenant for `phone` on `channel`; either None.

    Written out rather than built by the ORM on every message (this runs for each one),
    from the models' own column lists; values go through the fields' converters as the
    ORM's would, so the objects are the ones a queryset would give.
    """
    sql, contact_fields, conversation_fields = _contact_lookup()
    tenant_id = channel.tenant_id
    with connection.cursor() as cursor:
        cursor.execute(sql, [channel.pk, tenant_id, tenant_id, phone])
        row = cursor.fetchone()
    if row is None:
        return None, None
    split = len(contact_fields)
    contact = _from_row(Contact, contact_fields, row[:split])
    conversation_row = row[split:]
    if conversation_row[conversation_fields.index(Conversation._meta.pk)] is None:
        return contact, None
    return contact, _from_row(Conversation, conversation_fields, conversation_row)


@lru_cache(maxsize=1)
def _contact_lookup() -> tuple[str, list, list]:
    contact_fields = list(Contact._meta.concrete_fields)
    conversation_fields = list(Conversation._meta.concrete_fields)
    columns = [f'p."{f.column}"' for f in contact_fields]
    columns += [f'c."{f.column}"' for f in conversation_fields]
    sql = (
        f"SELECT {', '.join(columns)}"  # noqa: S608 - our own column and table names only
        f' FROM "{Contact._meta.db_table}" p'
        f' LEFT JOIN "{Conversation._meta.db_table}" c'
        " ON c.contact_id = p.id AND c.channel_id = %s AND c.tenant_id = %s"
        " WHERE p.tenant_id = %s AND p.phone = %s"
    )
    return sql, contact_fields, conversation_fields


def _from_row(model, fields, values):
    converted = []
    for model_field, value in zip(fields, values, strict=True):
        column, converters = _converters(model_field, connection.vendor)
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


@lru_cache(maxsize=256)
def _converters(model_field, vendor: str) -> tuple:
    """What the ORM applies to this field's column read on this kind of database."""
    column = model_field.get_col(model_field.model._meta.db_table)
    converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    return column, tuple(converters)


# A new customer message reopens a resolved conversation (open and pending ones stay as they
# are) and counts as unread; late retries never move the window or the list order backwards.
# On the right-hand side every column is the row's value before this update.
_TOUCH_CONVERSATION_SQL = f"""
    UPDATE {Conversation._meta.db_table} SET
        status = CASE WHEN status = %s THEN %s ELSE status END,
        resolved_at = NULL,
        last_inbound_at = CASE WHEN last_inbound_at > %s THEN last_inbound_at ELSE %s END,
        last_message_preview = CASE WHEN last_message_at > %s
                                    THEN last_message_preview ELSE %s END,
        last_message_at = CASE WHEN last_message_at > %s THEN last_message_at ELSE %s END,
        unread_count = unread_count + 1
    WHERE id = %s AND tenant_id = %s
"""  # noqa: S608 - the table name is our own; values are parameters


def _touch_conversation(conversation: Conversation, *, at, preview: str) -> None:
    # Written out once rather than built by the ORM on every message: this runs for each one.
    when = connection.ops.adapt_datetimefield_value(at)
    with connection.cursor() as cursor:
        cursor.execute(
            _TOUCH_CONVERSATION_SQL,
            [
                Conversation.Status.RESOLVED,
                Conversation.Status.OPEN,
                when,
                when,
                when,
                preview,
                when,
                when,
                conversation.pk,
                conversation.tenant_id,
            ],
        )


def _preview(event: InboundMessage) -> str:
    text = " ".join(event.body.split())
    if not text and event.media:
        text = _("[attachment]")
    return text[:PREVIEW_LENGTH]


def _handle_keyword(message: Message, *, contact, channel: Channel) -> bool:
    from channels_app.services.sending import SendRefused
    from privacy.services import handle_inbound_keyword, keyword_of

    try:
        return handle_inbound_keyword(message, contact=contact, channel=channel) is not None
    except SendRefused as exc:
        # The confirmation could not be queued (the channel is switched off, say); the consent
        # change itself is already recorded and must not be lost with the webhook.
        logger.warning("keyword reply to message %s not sent: %s", message.pk, exc)
        return keyword_of(message, contact=contact, channel=channel) is not None


# --- Delivery statuses -------------------------------------------------------------------------


def _store_status(*, channel: Channel, event: StatusUpdate, now, outcome: WebhookOutcome) -> None:
    message = _locked_message(channel, event.provider_message_id)
    if message is None:
        # Our send may not have recorded this provider id yet: wait for it, under the same
        # lock `apply_pending_status_events` takes, then look once more.
        _lock_provider_id(channel.pk, event.provider_message_id)
        message = _locked_message(channel, event.provider_message_id)

    status_event = MessageStatusEvent(
        channel=channel,
        message=message,
        provider_message_id=event.provider_message_id,
        status=event.status,
        provider_status=event.provider_status[:32],
        error_code=event.error_code[:32],
        error_reason=event.error_reason,
        occurred_at=event.timestamp,
        received_at=now,
        applied=message is not None,
    )
    if not _insert_once(status_event):
        outcome.duplicates += 1
        return
    outcome.accepted += 1
    if message is None:
        outcome.statuses_unmatched += 1
        return
    outcome.statuses_applied += 1
    _apply_statuses(message, [status_event], now=now)


@lru_cache(maxsize=64)
def _status_sql(status: str, *, stamp: str | None, with_error: bool) -> str:
    """One PostgreSQL statement storing a status event of a known message and applying it.

    It locks the message row (as `_locked_message` does), inserts the event unless it was
    stored before (`ON CONFLICT DO NOTHING`: a retried callback changes nothing), and only when
    the event is new moves the message forward, with the rule of `Message.can_move_to` in SQL:
    terminal statuses never change, others only move up `STATUS_RANK`. A concurrent callback
    for the same message waits for the lock and then compares with the committed status.
    """
    message = Message._meta.db_table
    event = MessageStatusEvent._meta.db_table
    rank = " ".join(f"WHEN '{name}' THEN {value}" for name, value in Message.STATUS_RANK.items())
    terminal = ", ".join(f"'{name}'" for name in sorted(Message.TERMINAL_STATUSES))
    # Only names and numbers of our own models are put into the text; values are parameters.
    if status in Message.TERMINAL_STATUSES:
        moves = "TRUE"
    else:
        moves = f"{Message.STATUS_RANK.get(status, -1)} > CASE m.status {rank} ELSE -1 END"
    sets = ["status = %(status)s", "status_changed_at = %(now)s"]
    if stamp:
        sets.append(f"{stamp} = COALESCE(m.{stamp}, %(when)s)")
    if with_error:
        sets += ["error_code = %(error_code)s", "error_reason = %(error_reason)s"]
    return f"""
        WITH target AS (
            SELECT id FROM {message}
            WHERE tenant_id = %(tenant)s AND channel_id = %(channel)s
              AND provider_message_id = %(provider_id)s AND provider_message_id <> ''
            LIMIT 1
            FOR UPDATE
        ), stored AS (
            INSERT INTO {event} (
                tenant_id, channel_id, message_id, provider_message_id, status,
                provider_status, error_code, error_reason, occurred_at, received_at, applied
            )
            SELECT %(tenant)s, %(channel)s, target.id, %(provider_id)s, %(status)s,
                   %(provider_status)s, %(error_code)s, %(error_reason)s, %(occurred_at)s,
                   %(now)s, TRUE
            FROM target
            ON CONFLICT (tenant_id, channel_id, provider_message_id, provider_status) DO NOTHING
            RETURNING id
        ), moved AS (
            UPDATE {message} AS m SET {", ".join(sets)}
            FROM stored
            WHERE m.id = (SELECT id FROM target)
              AND m.status NOT IN ({terminal}) AND m.status <> %(status)s AND ({moves})
            RETURNING m.id
        )
        SELECT (SELECT id FROM target), (SELECT id FROM stored), EXISTS (SELECT 1 FROM moved)
    """  # noqa: S608


_STATUS_STAMPS = {
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.READ: "read_at",
}


def _store_status_in_one_statement(
    *, channel: Channel, event: StatusUpdate, now, outcome: WebhookOutcome
) -> bool:
    """The common status callback in one round trip (PostgreSQL); False when it needs Python.

    Python (`_store_status`) keeps the rare cases: SQLite, a failure that records an opt-out,
    and a status for a message not found (it waits for a send recording that id).
    """
    if connection.vendor != "postgresql" or not event.provider_message_id:
        return False
    if event.error_code in OPT_OUT_CODES or event.error_code in MARKETING_OPT_OUT_CODES:
        return False
    status = event.status
    with_error = status in Message.TERMINAL_STATUSES and bool(
        event.error_code or event.error_reason
    )
    sql = _status_sql(status, stamp=_STATUS_STAMPS.get(status), with_error=with_error)
    params = {
        "tenant": channel.tenant_id,
        "channel": channel.pk,
        "provider_id": event.provider_message_id,
        "status": status,
        "provider_status": event.provider_status[:32],
        "error_code": event.error_code[:32],
        "error_reason": event.error_reason,
        "occurred_at": event.timestamp,
        "now": now,
        "when": event.timestamp or now,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        message_id, event_id, _moved = cursor.fetchone()
    if message_id is None:
        return False  # unknown so far: the Python path waits for the send, then looks again
    if event_id is None:
        outcome.duplicates += 1
    else:
        outcome.accepted += 1
        outcome.statuses_applied += 1
    return True


def _locked_message(channel: Channel, provider_message_id: str) -> Message | None:
    # The row lock serialises concurrent callbacks for one message: each sees the status the
    # previous one wrote, so none can move it backwards.
    found = (
        Message.objects.select_for_update(of=("self",))
        .filter(channel=channel, provider_message_id=provider_message_id)
        .order_by()[:1]
    )
    return next(iter(found), None)


def _lock_provider_id(channel_id: int, provider_message_id: str) -> None:
    """A transaction-long lock on one (channel, provider id), PostgreSQL only.

    Closes the race between a status callback that does not find its message and the send
    that is recording the provider id at that moment: whoever comes second sees the other's
    committed work. (SQLite serialises writers, so it needs none.)
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.blake2b(f"{channel_id}:{provider_message_id}".encode(), digest_size=8)
    key = int.from_bytes(digest.digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _apply_statuses(message: Message, events: list[MessageStatusEvent], *, now) -> bool:
    """Move the (locked) message forward through `events`; True when its status changed."""
    changes: dict = {}
    for event in events:
        status = event.status
        if not message.can_move_to(status):
            continue
        when = event.occurred_at or now
        message.status = status
        changes["status"] = status
        changes["status_changed_at"] = now
        stamp = {
            Message.Status.SENT: "sent_at",
            Message.Status.DELIVERED: "delivered_at",
            Message.Status.READ: "read_at",
        }.get(status)
        if stamp and getattr(message, stamp) is None:
            setattr(message, stamp, when)
            changes[stamp] = when
        if status in Message.TERMINAL_STATUSES and (event.error_code or event.error_reason):
            message.error_code = event.error_code
            message.error_reason = event.error_reason
            changes["error_code"] = event.error_code
            changes["error_reason"] = event.error_reason
            _record_provider_opt_out(message, event)
    if not changes:
        return False
    message.status_changed_at = now
    Message.objects.filter(pk=message.pk).update(**changes)
    return True


def _record_provider_opt_out(message: Message, event: MessageStatusEvent) -> None:
    """A failure that says the customer unsubscribed is an opt-out, whichever way it came."""
    from privacy.services import record_provider_marketing_opt_out, record_provider_opt_out

    if event.error_code in OPT_OUT_CODES:
        record = record_provider_opt_out
    elif event.error_code in MARKETING_OPT_OUT_CODES:
        record = record_provider_marketing_opt_out
    else:
        return
    record(
        contact=message.conversation.contact,
        channel=message.channel,
        message=message,
        code=event.error_code,
        reason=event.error_reason,
    )


def apply_pending_status_events(message: Message) -> int:
    """Apply the status reports that arrived before `message`'s provider id was recorded.

    Delivery calls it right after it writes the provider message id (in or after that
    transaction). Returns how many events were applied; `message` is updated in memory.
    """
    if not message.provider_message_id:
        return 0
    with transaction.atomic():
        _lock_provider_id(message.channel_id, message.provider_message_id)
        pending = list(
            MessageStatusEvent.objects.filter(
                channel_id=message.channel_id,
                provider_message_id=message.provider_message_id,
                applied=False,
            ).order_by("received_at", "id")
        )
        if not pending:
            return 0
        locked = Message.objects.select_for_update(of=("self",)).get(pk=message.pk)
        _apply_statuses(locked, pending, now=timezone.now())
        MessageStatusEvent.objects.filter(pk__in=[e.pk for e in pending]).update(
            message=locked, applied=True
        )
    for name in (
        "status",
        "status_changed_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "error_code",
        "error_reason",
    ):
        setattr(message, name, getattr(locked, name))
    return len(pending)
