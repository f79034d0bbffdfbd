"""Retention (P9): the business's policies and the purge that enforces them.

The purge reads the personal-data registry: each category purged by age
(`registry.TIMED_CATEGORIES`) names the tenant setting that says how many days rows are kept
(0 = keep), and every model declared in that category names the moment its retention counts
from (`expires_by`). A new model declared in a category is purged without a change here.

How it deletes, so that it never holds long locks nor blocks live webhooks:
- in batches of `RETENTION_PURGE_BATCH_SIZE` rows (default 1,000), each in its own short
  transaction that commits, so a purge interrupted halfway leaves only whole batches behind
  and the next run continues;
- a batch is the next slice of the business's rows in the order of an index that leads with
  the tenant (the registry's `purge_walk`; keyset: it starts after the last row of the one
  before), and of that slice the rows that expired. So each batch reads about as many rows as
  it may delete, and a run reads each row once, however the rows interleave with other
  businesses' and whatever the planner thinks of how many expired: asked for "the first 5,000
  expired rows by key", it could sort every expired row of the business for each batch;
- rows are not locked before they are deleted: the DELETE waits for a webhook writing one of
  them (a short transaction), a webhook never waits for a claim;
- the models of a category go children first (status events and bot runs before their
  messages, messages before their conversations), so no delete cascades into a large set;
- a conversation goes only when it has no message left and is still resolved; a customer
  writing again reopens it (its `resolved_at` is cleared) and it stays. Messages are walked
  conversation by conversation, and the conversations the walk has passed go with a later
  batch of messages, in its transaction (`Behind`), while what the deletes touched is still
  in memory;
- on PostgreSQL, when the role may, a batch's foreign keys are checked once per referencing
  table instead of once per row and table (`delete_rows`): a batch then costs a third of a
  plain DELETE of the same rows, and the purge spends what it saves on resting; its WAL is
  compressed (`purge_rights`), a third of the volume the webhooks' commits wait on;
- after each batch it rests for `RETENTION_PURGE_PAUSE` times the batch's duration (default
  6: it keeps a database connection busy at most a seventh of the time, and a batch slowed
  by live traffic rests longer). The shorter a batch, the less a live webhook that meets it
  waits: bench/purge.py measured batches of 5,000 resting 9 times to make the webhooks' p99
  1.43x worse while they ran, at 0.56 of a raw DELETE's rate; 2,000 resting 6 times 1.15x at
  0.80; 1,000 resting 6 times 1.09x at 0.59, and resting 4 times 1.50x at 0.89 (one run
  each, 1,000,000 messages). Measured again slice by slice (each running slice against the
  stopped ones beside it, median), 2,000 resting 6 times made it 1.43x at 0.65, 1,000 resting
  6 times 1.21x at 0.67, 1,000 resting 5 times 1.06x at 0.87: a batch of 1,000 costs no more
  per row under load than one of 2,000, and a webhook that meets one waits half as long. At
  5,000,000 messages, 1,000 resting 5 times ran at 0.74 of the raw DELETE, 1.15x slice by
  slice, but 1.41x over all the webhooks at once (a few slow slices set that p99); 1,000
  resting 6 times ran at 0.78, 1.19x slice by slice and 1.16x over all the webhooks (p99
  19.9 ms against 17.1 ms), its memory flat at 108 MB; a second run at 0.67, 1.19x slice by
  slice, 1.51x over all, set by its last slices: the conversations went after all their
  messages then, and their checks for messages left wrote every page the deletes had
  touched a second time (46,000 to 111,000 pages written by backends in those slices, under
  1,000 in the others). With conversations going behind their messages (`Behind`) those
  writes are gone: 0.68 of the raw DELETE, 1.12x slice by slice, 1.14x over all the
  webhooks (p99 26.1 ms against 22.9 ms), memory flat at 106 MB; again, 0.73, 1.11x slice
  by slice, 0.93x over all (1.23x leaving out each side's slowest slice);
- files of a row (`FileField`s: export files, uploaded imports) are deleted from storage with it.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import time

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from privacy.models import PurgeReport
from privacy.registry import (
    TIMED_CATEGORIES,
    PersonalData,
    Retention,
    entries_in,
    entry_for,
    timed_entries,
)
from salesos.locks import only_one
from tenants.context import platform_access, require_current_tenant
from tenants.models import Tenant

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Policy:
    category: Retention
    setting: str
    days: int

    @property
    def keeps_everything(self) -> bool:
        return self.days == 0

    def cutoff(self, now: datetime.datetime) -> datetime.datetime:
        return now - datetime.timedelta(days=self.days)


def policies(*, tenant: Tenant) -> list[Policy]:
    """The business's retention policy for each category the purge enforces."""
    return [
        Policy(category=category, setting=setting, days=getattr(tenant, setting))
        for category, setting in TIMED_CATEGORIES.items()
    ]


def purge_order(entries: list[PersonalData]) -> list[PersonalData]:
    """Children first: a model pointing at another model of the same category goes before it."""
    by_model = {entry.model: entry for entry in entries}
    ordered: list[PersonalData] = []
    visiting: set = set()

    def visit(entry: PersonalData) -> None:
        if entry in ordered or entry.model in visiting:
            return
        visiting.add(entry.model)
        for child in by_model.values():
            if child is not entry and any(
                field.is_relation and field.related_model is entry.model
                for field in child.model._meta.concrete_fields
            ):
                visit(child)
        visiting.discard(entry.model)
        ordered.append(entry)

    for entry in sorted(entries, key=lambda e: e.label):
        visit(entry)
    return ordered


def expired(entry: PersonalData, *, cutoff: datetime.datetime) -> models.QuerySet:
    """The active business's rows of `entry` whose retention ended before `cutoff` (what the
    dry run counts; the purge applies the same rule to one slice at a time, `_walk`)."""
    rows = entry.model.objects.filter(**{f"{entry.expires_by}__lt": cutoff})
    return rows.filter(**{f"{entry.when_empty}__isnull": True}) if entry.when_empty else rows


def _without_children(entry: PersonalData, ids: list) -> list:
    """`ids` less the rows that still have children of the same category.

    One probe per child table for the whole batch: written into the claim as NOT EXISTS,
    the planner reads the child's whole key index (every business's rows) for each batch.
    """
    quote, keys = connection.ops.quote_name, Keys(entry.model, ids)
    probes = [
        (quote(field.model._meta.db_table), quote(field.column))
        for field in _children_in_category(entry)
    ]
    if not probes:
        return ids
    parents = set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # all children in one statement
            selects = (f"SELECT {c} FROM {t} WHERE {keys.named(c)}" for t, c in probes)  # noqa: S608
            union = " UNION ".join(selects)
            cursor.execute(union, keys.named_params)
            parents.update(row[0] for row in cursor.fetchall())
        else:
            for table, column in probes:
                where, params = keys.among(column)
                cursor.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {where}", params)  # noqa: S608
                parents.update(row[0] for row in cursor.fetchall())
    return [pk for pk in ids if pk not in parents] if parents else ids


def _children_in_category(entry: PersonalData):
    """Keys from other models of the same category to this one (hidden ones included)."""
    return [
        field
        for other in entries_in(entry.retention)
        if other.model is not entry.model
        for field in other.model._meta.concrete_fields
        if field.is_relation
        and field.related_model is entry.model
        and field.remote_field.on_delete is models.CASCADE
    ]


def preview(*, now: datetime.datetime | None = None) -> dict[str, dict[str, int]]:
    """What the next purge would remove in the active business: {category: {model: rows}}.

    Parents are counted when their children are all due too (they would go in the same run).
    Nothing is deleted.
    """
    tenant = require_current_tenant()
    now = now or timezone.now()
    result: dict[str, dict[str, int]] = {}
    for policy in policies(tenant=tenant):
        if policy.keeps_everything:
            continue
        counts = {}
        cutoff = policy.cutoff(now)
        for entry in purge_order(timed_entries(policy.category)):
            counts[entry.label] = expired(entry, cutoff=cutoff).count()
        result[str(policy.category)] = counts
    return result


def record_dry_run(*, now: datetime.datetime | None = None) -> PurgeReport:
    """Keep a preview as a dry-run report (the page shows it next to the real runs)."""
    tenant = require_current_tenant()
    now = now or timezone.now()
    return PurgeReport.objects.create(
        dry_run=True,
        status=PurgeReport.Status.COMPLETE,
        counts=preview(now=now),
        policies={str(p.category): p.days for p in policies(tenant=tenant)},
        started_at=now,
        finished_at=now,
    )


def purge_expired(
    *,
    now: datetime.datetime | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> PurgeReport:
    """Remove what the active business's policies no longer allow to keep; report it.

    `max_batches` bounds one run (a run that reaches it is `incomplete`; the next continues).
    Safe to run twice: a second run removes nothing more. Safe to start while another worker
    purges the same business: it returns that run's report and leaves it alone.
    """
    tenant = require_current_tenant()
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH_SIZE
    with only_run(tenant) as alone:
        if not alone:
            # Another worker is purging this business now: its report, as it stands.
            log.info("purge tenant=%s already running elsewhere", tenant.pk)
            running = PurgeReport.objects.filter(status=PurgeReport.Status.RUNNING, dry_run=False)
            return running.order_by("-started_at", "-id").first() or PurgeReport(started_at=now)
        # A run that never finished (its worker died: nobody holds its lock) is marked, and
        # this run carries on its work.
        PurgeReport.objects.filter(status=PurgeReport.Status.RUNNING, dry_run=False).update(
            status=PurgeReport.Status.INTERRUPTED
        )
        return _purge(tenant, now=now, batch_size=batch_size, max_batches=max_batches)


def _purge(tenant: Tenant, *, now, batch_size: int, max_batches: int | None) -> PurgeReport:
    report = PurgeReport.objects.create(
        policies={str(p.category): p.days for p in policies(tenant=tenant)},
        started_at=now,
    )
    budget = max_batches
    rights = purge_rights()
    for policy in policies(tenant=tenant):
        if policy.keeps_everything:
            continue
        cutoff = policy.cutoff(now)
        ordered = purge_order(timed_entries(policy.category))
        for entry in ordered:
            behind = Behind.of(entry, ordered)
            # Keyset batches: each starts after the last row of the one before, so a run
            # reads every row once.
            after = None
            while budget is None or budget > 0:
                started = time.monotonic()
                after = _purge_batch(
                    entry, cutoff=cutoff, batch_size=batch_size, report=report, after=after,
                    rights=rights, behind=behind,
                )  # fmt: skip
                if after is None:
                    break
                # Rest a little between batches so live traffic keeps the CPU and disk it needs.
                time.sleep((time.monotonic() - started) * settings.RETENTION_PURGE_PAUSE)
                if budget is not None:
                    budget -= 1
            else:
                report.status = PurgeReport.Status.INCOMPLETE
                report.finished_at = timezone.now()
                report.save(update_fields=["status", "finished_at"])
                return report
    report.status = PurgeReport.Status.COMPLETE
    report.finished_at = timezone.now()
    report.save(update_fields=["status", "finished_at"])
    log.info("purge tenant=%s removed %s rows", tenant.pk, report.total)
    return report


def only_run(tenant: Tenant):
    """Whether this is the only purge of `tenant` running now, for the duration of the block
    (a lock that a killed worker does not leave behind: `salesos.locks.only_one`)."""
    return only_one(f"privacy.retention.purge:{tenant.pk}")


class Behind:
    """The parents a walk of their children has passed (conversations behind a walk of their
    messages in conversation order), deleted with every `EVERY`th batch of the children, in
    that batch's transaction.

    A parent goes only when no child is left, and its check reads every child's index entry
    and row, the deleted ones too. Right behind the deletes, those pages are still in memory
    and still to be written once. Left to the parents' own turn after every child of the
    business, minutes later, the checks read them back from disk and mark each deleted row
    dead on its page (a hint bit), so every page the deletes had touched is written a second
    time, in a burst that live webhooks wait behind: at 1,500,000 messages, 14,600 pages
    written by backends in 0.2 s. Every `EVERY`th batch, not every one: the step costs a
    few statements whatever it deletes.

    What it leaves (a parent gaining a child meanwhile, a batch redone carefully, the end of
    an interrupted run) is the parents' own turn's, as before.
    """

    EVERY = 8

    def __init__(self, parent: PersonalData):
        self.parent = parent
        self.passed: set = set()
        self.batches = 0

    @classmethod
    def of(cls, entry: PersonalData, ordered: list[PersonalData]) -> Behind | None:
        """For an entry whose walk leads with its key to a parent purged after it in the same
        category (messages walked by conversation), or None."""
        lead = next(f for f in entry.model._meta.concrete_fields if f.column == entry.purge_walk[0])
        if not lead.is_relation or lead.remote_field.on_delete is not models.CASCADE:
            return None
        later = ordered[ordered.index(entry) + 1 :]
        parent = next((p for p in later if p.model is lead.related_model), None)
        if parent is None or parent.when_empty:
            return None
        if any(isinstance(f, models.FileField) for f in parent.model._meta.concrete_fields):
            return None  # its files go with its rows, in its own turn
        return cls(parent)

    def passed_by(self, walked: list[tuple], *, after, limit: int) -> bool:
        """Note the parents a batch's walk has passed; whether the step is due.

        The last parent of a full batch may have children in the next one; every parent of
        the walk's last batch (short of `limit`) is passed."""
        self.batches += 1
        keys = {row[0] for row in walked}
        if after is not None:
            keys.add(after[0])
        if len(walked) == limit:
            keys.discard(walked[-1][0])
        self.passed |= keys
        due = self.batches % self.EVERY == 0 or len(walked) < limit or len(self.passed) >= limit
        return bool(self.passed) and due

    def delete(self, *, cutoff, rights: Rights) -> dict[str, int]:
        """Delete the passed parents that expired and have no child left; rows per model
        (nothing where a parent has other rows to cascade to: its own turn does that)."""
        keys, self.passed = sorted(self.passed), set()
        due = list(
            expired(self.parent, cutoff=cutoff).filter(pk__in=keys).values_list("pk", flat=True)
        )
        ids = _without_children(self.parent, due) if due else []
        if not ids:
            return {}
        return delete_rows(self.parent.model, ids, checks_keys=rights.checks_keys) or {}


def _purge_batch(
    entry: PersonalData,
    *,
    cutoff,
    batch_size: int,
    report: PurgeReport,
    after,
    rights: Rights,
    behind: Behind | None = None,
):
    """Delete the expired rows among the next `batch_size` rows of `entry` after `after` (in
    `purge_walk` order), and when due the parents `behind` them, add them to the report, in
    one transaction; where the slice ended, or None when there was no row left.

    A row that gained a reference while the batch ran (a late status callback for an old
    message) fails the batch's key check at commit: the batch is rolled back whole and done
    again through Django's collector, which deletes the new reference with it."""
    try:
        return _purge_batch_once(
            entry, cutoff=cutoff, batch_size=batch_size, report=report, after=after,
            rights=rights, behind=behind,
        )  # fmt: skip
    except IntegrityError:
        report.refresh_from_db(fields=["counts", "batches"])
        return _purge_batch_once(
            entry, cutoff=cutoff, batch_size=batch_size, report=report, after=after,
            rights=rights, careful=True,
        )  # fmt: skip


def _purge_batch_once(
    entry, *, cutoff, batch_size, report, after, rights, behind=None, careful=False
):
    model = entry.model
    file_fields = [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The purge does not wait for its WAL to reach the disk: a batch lost in a crash
            # leaves its rows expired, and the next run deletes them. Live webhooks then share
            # the disk's flushes with fewer of the purge's (what they wait on under a purge).
            # Compressed, the page images its deletes write take a third of the WAL.
            # Every statement of a batch looks its rows up by key: a sequential scan would
            # read every business's rows of a table, each batch, as the table grows (the
            # planner prefers one while a table is small, and keeps it too long).
            local = {"synchronous_commit": "off", "enable_seqscan": "off"}
            if rights.wal_compression:
                local["wal_compression"] = rights.wal_compression
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(local)),
                    [value for pair in local.items() for value in pair],
                )
        # Not row-locked: a row a webhook is writing at this moment makes the DELETE wait
        # for that webhook's short transaction, never the other way round.
        walked = _walk(entry, after=after, limit=batch_size, cutoff=cutoff)
        if not walked:
            return None
        last = walked[-1][:-1]
        claimed = [row[-2] for row in walked if row[-1]]
        ids = _without_children(entry, claimed) if claimed else []
        per_model: dict[str, int] = {}
        if ids:
            if file_fields:
                _delete_files(model.objects.filter(pk__in=ids), file_fields)
            rows = None if careful else delete_rows(model, ids, checks_keys=rights.checks_keys)
            per_model = rows or _collector_delete(model.objects.filter(pk__in=ids))
        if behind and not careful and behind.passed_by(walked, after=after, limit=batch_size):
            per_model = {**per_model, **behind.delete(cutoff=cutoff, rights=rights)}
        if not any(per_model.values()):
            return last
        category = report.counts.setdefault(str(entry.retention), {})
        for label, rows in per_model.items():
            if rows:
                category[label] = category.get(label, 0) + rows
        report.batches += 1
        report.save(update_fields=["counts", "batches"])
    return last


def _walk(entry: PersonalData, *, after: tuple | None, limit: int, cutoff) -> list[tuple]:
    """The next `limit` rows of the active business's `entry` after `after`, in `purge_walk`
    order: tuples of the walk's columns, the primary key, and whether the row has expired.

    One index range scan (the tenant and the walk are an index's columns, in its order), and
    for each row it returns, its expiry moment looked up by key (`_moment`): a subquery in
    the select list runs only for the rows the LIMIT lets through, so no plan can read more.
    """
    model, quote = entry.model, connection.ops.quote_name
    names = list(entry.purge_walk)
    if names[-1] != model._meta.pk.column:
        names.append(model._meta.pk.column)  # ties in the walk go in key order
    fields = {field.column: field for field in model._meta.concrete_fields}
    walked = ", ".join(quote(name) for name in names)
    table = quote(model._meta.db_table)
    where = f"{table}.{quote(model._meta.get_field('tenant').column)} = %s"
    params = [require_current_tenant().pk]
    if after is not None:
        where += f" AND ({walked}) > ({', '.join(_as_sent(fields[n]) for n in names)})"
        params += list(after)
    selected = ", ".join(_as_read(fields[name]) for name in names)
    moment = _moment(model, table, entry.expires_by.split("__"))
    if entry.when_empty:  # only the rows whose key is empty (`registry.Unmatched`)
        key = f"{table}.{quote(model._meta.get_field(entry.when_empty).column)}"
        moment = f"CASE WHEN {key} IS NULL THEN {moment} END"
    with connection.cursor() as cursor:
        # Our own table and column names only; the values are parameters.
        cursor.execute(
            f"SELECT {selected}, {moment} < %s FROM {table} WHERE {where}"  # noqa: S608
            f" ORDER BY {walked} LIMIT %s",
            [connection.ops.adapt_datetimefield_value(cutoff), *params, limit],
        )
        return cursor.fetchall()


# The walk's columns other than integers are read as text and sent back cast to their type:
# only a slice's last row is ever sent back, and turning every row's date-time into a Python
# object cost the worker a third of its time (5,000 a batch).
_READ_AS_IS = (models.IntegerField, models.AutoField, models.ForeignKey)


def _as_text(field) -> bool:
    return connection.vendor == "postgresql" and not isinstance(field, _READ_AS_IS)


def _as_read(field) -> str:
    column = connection.ops.quote_name(field.column)
    return f"{column}::text" if _as_text(field) else column


def _as_sent(field) -> str:
    return f"CAST(%s AS {field.db_type(connection)})" if _as_text(field) else "%s"


def _moment(model, alias: str, path: list[str], depth: int = 0) -> str:
    """SQL for the date-time at the end of `path` (an `expires_by` split on "__") for the row
    `alias` of `model`: the column itself, or scalar subqueries along its foreign keys, each a
    lookup by primary key (NULL where a key is empty: such a row never expires)."""
    quote = connection.ops.quote_name
    field = model._meta.get_field(path[0])
    if len(path) == 1:
        return f"{alias}.{quote(field.column)}"
    related = field.related_model
    inner = f"r{depth}"
    return (
        f"(SELECT {_moment(related, inner, path[1:], depth + 1)}"  # noqa: S608
        f" FROM {quote(related._meta.db_table)} {inner}"
        f" WHERE {inner}.{quote(field.target_field.column)} = {alias}.{quote(field.column)})"
    )


def delete_rows(
    model: type[models.Model], ids: list, *, checks_keys: bool = False
) -> dict[str, int] | None:
    """Delete the rows `ids` of `model` in one statement; rows deleted per model, or None
    when the rows still have something to cascade to (Django's collector must do it).

    Keys that point here and say SET_NULL are then cleared with one UPDATE each. The keys
    go to PostgreSQL as one array parameter: no statement of thousands of placeholders to
    build, send and parse. The ids come from the business's scoped query.

    `checks_keys` (see `purge_rights`): PostgreSQL's foreign-key triggers are skipped for
    the DELETE, and the same rule is checked once per referencing table for the whole batch
    instead of once per row and table. Most of a plain DELETE's cost here is those per-row
    checks (seven tables point at a message). The check runs after the DELETE: its rows
    are locked by then, so a reference committed before it is seen, and one written after it
    waits for this transaction and then fails, as with PostgreSQL's own check.
    """
    entry = entry_for(model)
    # Children of the same category were purged first and the batch dropped rows that still
    # had any (`_without_children`); one that appeared since fails the key check instead.
    purged_first = set(_children_in_category(entry)) if entry else set()
    set_null, must_be_gone = [], []
    for relation in model._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and not relation.concrete and relation.is_relation):
            continue
        if relation.many_to_many:
            return None
        field = relation.field
        on_delete = field.remote_field.on_delete
        if on_delete is models.SET_NULL:
            set_null.append(field)
            continue
        if field.db_constraint:
            must_be_gone.append(field)
        if on_delete is models.DO_NOTHING or field in purged_first:
            continue
        if field.model._base_manager.filter(**{f"{field.name}__in": ids}).exists():
            return None  # CASCADE, PROTECT, SET_DEFAULT … with rows behind
    quote, keys = connection.ops.quote_name, Keys(model, ids)
    with connection.cursor() as cursor:
        where, params = keys.among(quote(model._meta.pk.column))
        table = quote(model._meta.db_table)
        if checks_keys:
            cursor.execute("SET LOCAL session_replication_role = replica")
        # Our own table and column names only; the keys are parameters.
        cursor.execute(f"DELETE FROM {table} WHERE {where}", params)  # noqa: S608
        deleted = cursor.rowcount
        if checks_keys:
            cursor.execute("SET LOCAL session_replication_role = origin")
        checked = must_be_gone if checks_keys else []
        if not (set_null or checked):
            return {model._meta.label: deleted}
        # Across businesses, as PostgreSQL's own checks are: no key may be left dangling.
        with platform_access():
            left = _clear_and_check(cursor, keys, set_null, checked)
        if left:
            raise IntegrityError(
                f"{left.model._meta.label}.{left.name} still points at a row of the batch"
            )
    return {model._meta.label: deleted}


def _clear_and_check(cursor, keys: Keys, set_null: list, checked: list):
    """Clear the SET_NULL keys that point at the batch, then find a key among `checked` that
    still points at one of its rows (the first such field, or None).

    On PostgreSQL in one statement: the UPDATEs are data-modifying CTEs (run to completion
    whether read or not), one per table, the checks EXISTS probes. It comes after the DELETE
    and reads with a snapshot of its own, as one statement per table would; it saves their
    round trips.
    """
    quote = connection.ops.quote_name
    named = [(quote(f.model._meta.db_table), quote(f.column)) for f in set_null + checked]
    if connection.vendor == "postgresql":
        # One UPDATE per table: two CTEs updating the same row, as a reminder and a reply of
        # one appointment both in the batch, would keep only one of the changes.
        columns_of: dict[str, list[str]] = {}
        for table, column in named[: len(set_null)]:
            columns_of.setdefault(table, []).append(column)
        clears = [
            f"cleared_{i} AS (UPDATE {t} SET "  # noqa: S608
            + ", ".join(f"{c} = CASE WHEN {keys.named(c)} THEN NULL ELSE {c} END" for c in cs)
            + f" WHERE {' OR '.join(keys.named(c) for c in cs)} RETURNING 1)"
            for i, (t, cs) in enumerate(columns_of.items())
        ]
        probes = [
            f"EXISTS (SELECT 1 FROM {t} WHERE {keys.named(c)})"  # noqa: S608
            for t, c in named[len(set_null) :]
        ]
        with_clause = f"WITH {', '.join(clears)} " if clears else ""
        # Our own table and column names only; the keys are a parameter.
        cursor.execute(f"{with_clause}SELECT {', '.join(probes) or 'NULL'}", keys.named_params)
        found = cursor.fetchone()[: len(checked)]  # "SELECT NULL" when nothing is checked
        return next((field for field, hit in zip(checked, found, strict=True) if hit), None)
    for table, column in named[: len(set_null)]:
        where, params = keys.among(column)
        cursor.execute(f"UPDATE {table} SET {column} = NULL WHERE {where}", params)  # noqa: S608
    for field, (table, column) in zip(checked, named[len(set_null) :], strict=True):
        where, params = keys.among(column)
        cursor.execute(f"SELECT 1 FROM {table} WHERE {where} LIMIT 1", params)  # noqa: S608
        if cursor.fetchone():
            return field
    return None


@dataclasses.dataclass(frozen=True)
class Rights:
    """What the database role lets the purge do beyond deleting, found once per run."""

    # May skip PostgreSQL's per-row key triggers and check keys per batch itself.
    checks_keys: bool = False
    # The method its batches compress their WAL with ("" = as the server is set).
    wal_compression: str = ""


def purge_rights() -> Rights:
    """The rights the purge uses, each given by `GRANT SET ON PARAMETER … TO <role>`
    (PostgreSQL 15; the setup scripts give both), each also turned off by a setting:

    - `session_replication_role` (RETENTION_PURGE_OWN_KEY_CHECKS): keys checked per batch;
    - `wal_compression` (RETENTION_PURGE_WAL_COMPRESSION, default lz4, if the server was built
      with it): the purge's WAL is about a third as large, for about 15% more time.

    Without them the purge deletes the plain way.
    """
    if connection.vendor != "postgresql":
        return Rights()
    method = settings.RETENTION_PURGE_WAL_COMPRESSION
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s = ANY(enumvals) FROM pg_settings WHERE name = 'wal_compression'", [method]
        )
        row = cursor.fetchone()
        compresses = bool(method) and bool(row and row[0])
        return Rights(
            checks_keys=settings.RETENTION_PURGE_OWN_KEY_CHECKS
            and _may_set(cursor, "session_replication_role"),
            wal_compression=method if compresses and _may_set(cursor, "wal_compression") else "",
        )


def _may_set(cursor, parameter: str) -> bool:
    if connection.pg_version >= 150000:
        cursor.execute("SELECT has_parameter_privilege(%s, 'SET')", [parameter])
    else:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    return bool(cursor.fetchone()[0])


@dataclasses.dataclass(frozen=True)
class Keys:
    """A batch's primary keys of `model`, for the statements that name them."""

    model: type[models.Model]
    ids: list

    def among(self, column: str) -> tuple[str, list]:
        """`column` is one of the keys: one array parameter on PostgreSQL, a list elsewhere."""
        if connection.vendor == "postgresql":
            sql_type = self.model._meta.pk.rel_db_type(connection)
            return f"{column} = ANY(%s::{sql_type}[])", [self.array_text]
        return f"{column} IN ({', '.join(['%s'] * len(self.ids))})", list(self.ids)

    def named(self, column: str) -> str:
        """`column` is one of the keys, with the keys as the named parameter `keys` (sent
        once however many times a statement names it; PostgreSQL only)."""
        return f"{column} = ANY(%(keys)s::{self.model._meta.pk.rel_db_type(connection)}[])"

    @property
    def named_params(self) -> dict[str, str]:
        return {"keys": self.array_text}

    @functools.cached_property
    def array_text(self) -> str:
        """The keys as PostgreSQL's array text, built once for all the batch's statements.

        As text with a cast: psycopg adapting a list of 5,000 Python ints costs about 4 ms of
        the worker's CPU per statement (it inspects every element to choose the array's
        type), six times what PostgreSQL then spends reading the text.
        """
        return _array_text(self.ids)


def _array_text(values: list) -> str:
    """PostgreSQL's text form of a one-dimensional array of `values` (none of them NULL)."""
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    quoted = (str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


def _collector_delete(batch: models.QuerySet) -> dict[str, int]:
    # Only keys are loaded: the rows' text never passes through the worker's memory.
    _, per_model = batch.only("pk").delete()
    return per_model


def _delete_files(batch: models.QuerySet, file_fields) -> None:
    """Remove the batch's files from storage. Done before the rows go: if the transaction then
    fails, the rows stay (already expired) and the next run deletes them; no file is orphaned."""
    for row in batch.only("pk", *(f.name for f in file_fields)):
        for field in file_fields:
            value = getattr(row, field.name)
            if value and value.name:
                value.storage.delete(value.name)


def last_reports(*, limit: int = 10) -> list[PurgeReport]:
    return list(PurgeReport.objects.order_by("-started_at", "-id")[:limit])
