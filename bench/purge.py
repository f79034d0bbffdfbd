#!/usr/bin/env python3
"""Retention purge benchmark: the real purge service against a raw batched SQL DELETE, with
live webhook ingest alongside.

What it does, in one run:

1. creates its own PostgreSQL database (`salesos_bench_purge`, owned by the application role,
   row-level security on) with `bench/ingest.py`'s functions, and a business receiving
   signed Twilio and Meta webhooks (the ingest benchmark's builder);
2. builds two businesses with N expired messages each (resolved conversations, 500 messages
   each, resolved 60 days ago against a 30-day policy) with `INSERT … SELECT generate_series`;
3. starts gunicorn (2 gthread workers x 4 threads); before each deletion it measures the
   ingest's maximum rate with a closed-loop run, then paces webhooks at half that rate (open
   loop: each request has its moment, and a late one counts its wait) for the length of the
   deletion;
4. deletes the first business's messages with a raw batched
   `DELETE … WHERE id IN (SELECT id … ORDER BY id LIMIT 5000)` (the baseline), and the second
   business's with the purge service (`privacy.retention.purge_expired`, its configured
   batches and pauses), each in a process of its own whose resident memory is sampled every 0.2 s.

Each deletion runs in slices: `--slice` seconds running, then stopped (SIGSTOP) as long, then
running again, to the end. The webhooks due while it runs are measured against those due
while it is stopped, which are its baseline; a stopped slice starts a second after the
webhooks due while it ran are answered (the backlog a deleter leaves is its own).
On this kind of machine the disk stalls now and then for 100-750 ms whatever runs, and one
stall sets a window's p99; slices spread those stalls over both sides alike, where a window
alone before and one after a deletion made the verdict a matter of where a stall fell. The
purge is stopped only in its rest between batches, so no batch grows by a stop; rows/s count
the running time only. Before each deletion the database is checkpointed and the kernel's dirty
pages written out; after the raw DELETE its dead rows are vacuumed, so the purge does not pay
for them. The WAL written per second, running and stopped, shows what the webhooks' commits
share the disk with (the server's whole WAL: the webhooks' own too).

    .venv/bin/python bench/purge.py --quick     # 200,000 messages per set, about 2 minutes
    .venv/bin/python bench/purge.py             # 5,000,000 messages per set

Targets (issue 6): purge rows/s >= 0.5 x the raw DELETE; ingest p99 while the purge runs no
more than 20% above the p99 while it is stopped; the purge's memory flat.

Needs PostgreSQL (DATABASE_ADMIN_URL, or the application role's CREATEDB right) and Redis
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/13 — flushed by the benchmark).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402 - after the path is set
    DEFAULT_ADMIN_URL,
    admin_conninfo,
    app_environment,
    as_requests,
    drop_database,
    flush_redis,
    free_port,
    fresh_database,
    load,
    seed_and_build,
    start_gunicorn,
    stop_gunicorn,
)

DATABASE = "salesos_bench_purge"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
PER_CONVERSATION = 500
BATCH = 5000
RETENTION_DAYS = 30


def say(message: str) -> None:
    print(f"[bench purge] {message}", flush=True)


# --- Data ----------------------------------------------------------------------------------


def expired_business(slug: str, messages: int) -> int:
    """A business with `messages` expired messages in resolved conversations; its id."""
    import datetime

    from django.db import connection
    from django.utils import timezone

    from channels_app.models import Channel, Conversation, Message
    from crm.models import Contact
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = Tenant.objects.create(name=slug, slug=slug, message_retention_days=RETENTION_DAYS)
    conversations = -(-messages // PER_CONVERSATION)
    resolved = timezone.now() - datetime.timedelta(days=2 * RETENTION_DAYS)
    with tenant_context(tenant):
        channel = Channel.objects.create(kind=Channel.Kind.SANDBOX, name="Sandbox")
        contacts = Contact.objects.bulk_create(
            [Contact(tenant=tenant, phone=f"+1555{i:07d}", name=f"Old {i}") for i in
             range(conversations)],
            batch_size=5000,
        )  # fmt: skip
        Conversation.objects.bulk_create(
            [
                Conversation(
                    tenant=tenant, channel=channel, contact=contact,
                    status=Conversation.Status.RESOLVED, resolved_at=resolved,
                    last_message_at=resolved,
                )
                for contact in contacts
            ],
            batch_size=5000,
        )  # fmt: skip
        table = Message._meta.db_table
        with connection.cursor() as cursor:
            # Every NOT NULL column: Django keeps defaults in Python, not in the schema.
            cursor.execute(
                f"""
                INSERT INTO {table} (tenant_id, conversation_id, channel_id, direction,
                    sender_kind, body, media, template_variables, purpose,
                    provider_message_id, idempotency_key, status, error_code, error_reason,
                    attempts, created_at, status_changed_at)
                SELECT c.tenant_id, c.id, c.channel_id, 'inbound', 'customer',
                    'Old message ' || g || ' about an appointment that has long passed',
                    '[]'::jsonb, '{{}}'::jsonb, '', '', '', 'received', '', '', 0,
                    %s - interval '1 day', %s - interval '1 day'
                FROM (SELECT id, tenant_id, channel_id, row_number() OVER (ORDER BY id) AS n
                      FROM {Conversation._meta.db_table} WHERE tenant_id = %s) c
                CROSS JOIN generate_series(1, %s) g
                WHERE (c.n - 1) * %s + g <= %s
                """,
                [resolved, resolved, tenant.pk, PER_CONVERSATION, PER_CONVERSATION, messages],
            )
    return tenant.pk


# --- The two deleters, each run in a process of its own --------------------------------------


def run_raw(tenant_id: int) -> dict:
    """The baseline: batched DELETEs by primary key, nothing else."""
    import datetime

    from django.db import connection, transaction
    from django.utils import timezone

    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    cutoff = timezone.now() - datetime.timedelta(days=RETENTION_DAYS)
    rows = 0
    started = ready()
    with tenant_context(tenant):
        for sql in (
            "DELETE FROM channels_app_message WHERE id IN (SELECT m.id FROM"
            " channels_app_message m JOIN channels_app_conversation c"
            " ON c.id = m.conversation_id WHERE m.tenant_id = %s AND c.resolved_at < %s"
            " ORDER BY m.id LIMIT %s)",
            "DELETE FROM channels_app_conversation WHERE id IN (SELECT c.id FROM"
            " channels_app_conversation c WHERE c.tenant_id = %s AND c.resolved_at < %s"
            " ORDER BY c.id LIMIT %s)",
        ):
            while True:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(sql, [tenant_id, cutoff, BATCH])
                    deleted = cursor.rowcount
                rows += deleted
                if deleted == 0:
                    break
    return {"rows": rows, "seconds": time.perf_counter() - started}


def run_service(tenant_id: int) -> dict:
    from privacy import retention
    from tenants.context import tenant_context
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    started = ready()
    with tenant_context(tenant):
        report = retention.purge_expired()  # its own batch size and pauses, as in production
    return {
        "rows": report.total,
        "seconds": time.perf_counter() - started,
        "status": report.status,
        "batches": report.batches,
    }


def ready() -> float:
    """Tell the benchmark the deleter starts now (its slices count from here); the moment."""
    print("READY", flush=True)
    return time.perf_counter()


def child_main(kind: str, tenant_id: int) -> int:
    import django

    django.setup()
    result = (run_raw if kind == "raw" else run_service)(tenant_id)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --- Paced ingest ----------------------------------------------------------------------------


class PacedIngest:
    """Posts webhooks at `rate` per second, open loop, until told to stop or out of requests."""

    def __init__(self, port: int, requests: list, rate: float, threads: int = 8):
        self.port, self.requests, self.rate, self.threads = port, requests, rate, threads
        self.latencies: list[float] = []
        self.dues: list[float] = []  # each latency's moment, on time.perf_counter()'s clock
        self.codes: dict[int, int] = {}
        self._stop = threading.Event()
        self._next = 0
        self._in_flight: set[int] = set()  # taken, not yet answered
        self._by_due: list[tuple[float, float]] = []  # (due, latency), sorted, once stopped
        self._moments: list[float] = []  # the dues of _by_due, for bisect
        self._lock = threading.Lock()
        self._pool: list[threading.Thread] = []

    def start(self) -> None:
        self.started = time.perf_counter()
        self._pool = [threading.Thread(target=self._run) for _ in range(self.threads)]
        for thread in self._pool:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._pool:
            thread.join()

    @property
    def used(self) -> int:
        """Requests taken from the list (sent, or dropped at the stop): never to be sent again."""
        return min(self._next, len(self.requests))

    @property
    def ran_out(self) -> bool:
        return self._next >= len(self.requests)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            with self._lock:
                index = self._next
                self._next += 1
                if index >= len(self.requests):
                    break
                self._in_flight.add(index)
            due = self.started + index / self.rate
            delay = due - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            method, path, body, headers = self.requests[index]
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                status = 599
            # From the request's moment, not its start: a late request counts its wait.
            latency = time.perf_counter() - due
            with self._lock:
                self.latencies.append(latency)
                self.dues.append(due)
                self.codes[status] = self.codes.get(status, 0) + 1
                self._in_flight.discard(index)
        conn.close()

    def caught_up(self, moment: float) -> bool:
        """Whether every request due before `moment` has been answered (no backlog left)."""
        with self._lock:
            first_open = min(self._in_flight, default=self._next)
        return self.started + first_open / self.rate >= moment

    def during(self, intervals: list[tuple[float, float]]) -> list[float]:
        """The latencies of the requests due within `intervals`."""
        if len(self._by_due) != len(self.dues):
            self._by_due = sorted(zip(self.dues, self.latencies, strict=True))
            self._moments = [due for due, _ in self._by_due]
        chosen: list[float] = []
        for start, end in intervals:
            low = bisect.bisect_left(self._moments, start)
            high = bisect.bisect_left(self._moments, end)
            chosen.extend(latency for _, latency in self._by_due[low:high])
        return chosen


def percentile_ms(latencies: list[float], fraction: float) -> float:
    values = sorted(latencies)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))] * 1000


class Supply:
    """The webhooks still unsent: every phase takes the next ones, none is posted twice."""

    def __init__(self, requests: list):
        self.requests, self.next = requests, 0

    def paced(self, port: int, rate: float) -> PacedIngest:
        return PacedIngest(port, self.requests[self.next :], rate)

    def take(self, ingest: PacedIngest) -> None:
        self.next += ingest.used

    def next_ones(self, count: int) -> list:
        taken = self.requests[self.next : self.next + count]
        self.next += len(taken)
        return taken


def settle(admin_url: str, database_url: str, *, vacuum: tuple[str, ...] = ()) -> None:
    """Start the next measurement from a quiet disk: vacuum what the last phase left dead,
    checkpoint, write the kernel's dirty pages out, and let the disk rest."""
    import psycopg

    try:
        conn = psycopg.connect(**{**admin_conninfo(admin_url), "dbname": DATABASE}, autocommit=True)
    except psycopg.OperationalError:
        conn = psycopg.connect(database_url, autocommit=True)  # no CHECKPOINT right, then
    with conn:
        for table in vacuum:
            conn.execute(f"VACUUM (ANALYZE) {table}")
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")
    os.sync()
    time.sleep(3)


def server_counters(database_url: str) -> dict[str, int]:
    """The server's WAL written so far (every database's: the webhooks' too) and the pages
    its checkpoints and its backends have written out."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        wal, checkpoint, backend = conn.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, buffers_checkpoint, buffers_backend"
            " FROM pg_stat_bgwriter"
        ).fetchone()
    return {"wal": int(wal), "checkpoint": int(checkpoint), "backend": int(backend)}


class Slice:
    """A stretch of a deletion, running or stopped, and what the server wrote in it."""

    def __init__(self, running: bool, database_url: str):
        self.running, self.database_url = running, database_url
        self.start, self.before = time.perf_counter(), server_counters(database_url)
        self.backlog_s = 0.0  # (stopped) waited for the webhooks due while it ran

    def end(self) -> Slice:
        self.stop = time.perf_counter()
        after = server_counters(self.database_url)
        self.written = {name: after[name] - self.before[name] for name in after}
        return self

    @property
    def seconds(self) -> float:
        return self.stop - self.start


def delete_under_load(kind, tenant_id, env, port, supply: Supply, rate, slice_s) -> dict:
    """Run one deleter in its own process while webhooks are paced, in alternate slices of
    `slice_s` seconds running and stopped; sample its memory.

    The webhooks due while the deleter runs are its measurement, those due while it is
    stopped are its baseline: the machine's own stalls, which come and go, fall on both
    alike. A stopped slice starts once the webhooks due while the deleter ran are answered
    (the backlog it left is its own), and a second later. The purge is stopped only while it
    rests between batches (in its sleep), so no batch's time, and the rest that follows from
    it, grows by a stop; the raw DELETE never rests and is stopped where it is.
    """
    database_url = env["DATABASE_URL"]
    ingest = supply.paced(port, rate)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(tenant_id)]
    ingest.start()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if process.stdout.readline().strip() != "READY":  # Django set up, the deleting begins
        raise SystemExit(f"the {kind} deleter failed to start")
    samples: list[float] = []
    slices: list[Slice] = []
    stopped_s = 0.0

    def watch(seconds: float) -> None:
        until = time.perf_counter() + seconds
        while process.poll() is None and time.perf_counter() < until:
            value = rss_mb(process.pid)
            if value is not None:
                samples.append(value)
            time.sleep(0.2)

    while process.poll() is None:
        running = Slice(True, database_url)
        watch(slice_s)
        if process.poll() is None:
            if kind == "service":
                stop_at_rest(process)
            else:
                process.send_signal(signal.SIGSTOP)
        slices.append(running.end())
        paused_at = running.stop
        if process.poll() is not None:
            break
        while not ingest.caught_up(paused_at) and time.perf_counter() < paused_at + slice_s:
            time.sleep(0.01)
        backlog_s = time.perf_counter() - paused_at
        time.sleep(1.0)
        stopped = Slice(False, database_url)
        stopped.backlog_s = backlog_s
        time.sleep(slice_s)
        slices.append(stopped.end())
        process.send_signal(signal.SIGCONT)
        stopped_s += time.perf_counter() - paused_at
    ingest.stop()
    supply.take(ingest)
    if ingest.ran_out:
        say(f"the webhooks ran out before the {kind} deleter finished; p99 covers the start only")
    output = process.stdout.read()
    if process.returncode != 0:
        raise SystemExit(f"the {kind} deleter failed with status {process.returncode}")
    result = json.loads(output.split("RESULT ", 1)[1])
    # Its own clock ran on while it was stopped.
    result["seconds"] -= stopped_s
    result["rss"] = samples
    result["under"] = ingest.during([(x.start, x.stop) for x in slices if x.running])
    result["alone"] = ingest.during([(x.start, x.stop) for x in slices if not x.running])
    result["wal_mb_per_s"] = {
        side: wal_mb_per_s([x for x in slices if x.running == running])
        for side, running in (("under", True), ("alone", False))
    }
    result["slices"] = [
        {
            "running": x.running,
            "seconds": x.seconds,
            "backlog_s": x.backlog_s,
            "latencies": ingest.during([(x.start, x.stop)]),
            **x.written,
        }
        for x in slices
    ]
    result["stops"] = sum(1 for x in slices if not x.running)
    result["rate"] = rate
    return result


def wal_mb_per_s(slices: list[Slice]) -> float:
    seconds = sum(x.seconds for x in slices)
    return sum(x.written["wal"] for x in slices) / 1e6 / max(1e-9, seconds)


def stop_at_rest(process: subprocess.Popen) -> None:
    """SIGSTOP the purge while it sleeps between batches (its main thread in clock_nanosleep)."""
    sleeping = "230"  # x86_64's clock_nanosleep, what time.sleep waits in
    give_up = time.perf_counter() + 30
    while process.poll() is None and time.perf_counter() < give_up:
        with contextlib.suppress(OSError), open(f"/proc/{process.pid}/syscall") as syscall:
            if syscall.read().split(" ", 1)[0] == sleeping:
                process.send_signal(signal.SIGSTOP)
                return
        time.sleep(0.001)
    if process.poll() is None:
        process.send_signal(signal.SIGSTOP)  # not x86_64 Linux: anywhere, then


# --- main ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 messages per set")
    parser.add_argument("-n", type=int, help="expired messages per set (default 5,000,000)")
    parser.add_argument(
        "--slice",
        type=float,
        help="seconds a deleter runs, and then is stopped, in turn (default 5, 15 in a full run)",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=VALUE,...",
        help="also run the purge with these settings on a business of its own, after the one"
        " with the configured settings (e.g. RETENTION_PURGE_BATCH_SIZE=1000,"
        "RETENTION_PURGE_PAUSE=4); repeatable",
    )
    parser.add_argument(
        "--slices", action="store_true", help="also print every slice's webhooks and writes"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "TENANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child[0], int(args.child[1]))
    n = args.n or (200_000 if args.quick else 5_000_000)
    slice_s = args.slice or (5.0 if args.quick else 15.0)
    flat_out_requests = 3000 if args.quick else 6000
    compared = [settings_of(text) for text in args.compare]
    # Enough webhooks for every deletion at up to 280/s, with the raw DELETE at 10,000 rows/s
    # and each purge at 5,000 or faster, each stopped as long as it runs, and a second between
    # (posting stops when a deletion ends).
    deletions_n = 2 + len(compared)
    deletion_s = n / 10_000 + (deletions_n - 1) * n / 5_000
    supply_size = (1 + deletions_n) * flat_out_requests + int(
        280 * (2 * deletion_s + deletion_s / slice_s + 60)
    )

    admin_url = os.environ.get("DATABASE_ADMIN_URL") or DEFAULT_ADMIN_URL
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    port = free_port()
    say(f"database {DATABASE}, broker {redis_url}, port {port}, {n:,} messages per set")
    database_url = fresh_database(admin_url, DATABASE)
    flush_redis(redis_url)
    env = app_environment(database_url, redis_url, port)
    os.environ.update(env)

    import django

    django.setup()
    from django.db import connection, connections

    started = time.perf_counter()
    _tenant, warm_up, webhooks, _expected = seed_and_build(supply_size, seed=7)
    say(f"migrated and built {len(webhooks):,} webhooks in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    raw_tenant = expired_business("bench-raw-delete", n)
    service_tenant = expired_business("bench-purge-service", n)
    compared_tenants = [
        expired_business(f"bench-purge-compared-{i}", n) for i in range(len(compared))
    ]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    say(f"built {2 + len(compared)} x {n:,} expired messages in"
        f" {time.perf_counter() - started:.0f} s")  # fmt: skip
    connections.close_all()

    requests = as_requests(webhooks)
    supply = Supply(requests)
    child_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = start_gunicorn(child_env, port, workers=2, worker_class="gthread", threads=4)
    # Each deletion's dead rows are vacuumed before the next: none pays for another's.
    dead = ("channels_app_message", "channels_app_conversation")

    def measured(kind: str, tenant_id: int, env: dict) -> dict:
        """One deletion under webhooks paced at half the ingest's maximum, measured just
        before it: the ingest's own tables grow through the run, and a rate fixed at the
        start can come near what the ingest manages by the last deletion."""
        settle(admin_url, database_url, vacuum=dead)
        flat_out = load(port, supply.next_ones(flat_out_requests), **clients)
        rate = flat_out["per_s"] / 2
        say(f"ingest maximum {flat_out['per_s']:.0f}/s; pacing at {rate:.0f}/s")
        settle(admin_url, database_url)
        return delete_under_load(kind, tenant_id, env, port, supply, rate, slice_s)

    try:
        clients = dict(processes=2, threads=4, server_pid=server.pid)
        load(port, as_requests(warm_up), **clients)
        raw = measured("raw", raw_tenant, child_env)
        say(f"raw DELETE: {raw['rows']:,} rows in {raw['seconds']:.1f} s running")
        service = measured("service", service_tenant, child_env)
        say(f"purge: {service['rows']:,} rows in {service['seconds']:.1f} s running"
            f" ({service['status']})")  # fmt: skip
        others = []
        for overrides, tenant_id in zip(compared, compared_tenants, strict=True):
            other = measured("service", tenant_id, {**child_env, **overrides})
            say(f"purge with {described(overrides)}: {other['rows']:,} rows in"
                f" {other['seconds']:.1f} s running ({other['status']})")  # fmt: skip
            others.append((f"purge ({described(overrides)})", other))
    finally:
        stop_gunicorn(server)

    rows_per_s = service["rows"] / service["seconds"]
    raw_per_s = raw["rows"] / raw["seconds"]
    ratio = rows_per_s / raw_per_s
    p99_alone = percentile_ms(service["alone"], 0.99)
    p99_purge = percentile_ms(service["under"], 0.99)
    peak = max(service["rss"] or [0.0])
    samples = service["rss"]
    tenth = samples[len(samples) // 10] if samples else 0.0

    print()
    name_width = max([28, *(len(name) + 8 for name, _ in others)])
    print(f"{'webhooks while':<{name_width}}{'rows':>12}{'seconds':>10}{'rows/s':>10}"
          f"{'webhooks':>10}{'p50 ms':>9}{'p99 ms':>9}{'x alone':>9}{'WAL MB/s':>10}"
          f"{'peak MB':>9}")  # fmt: skip
    deletions = (("raw batched DELETE", raw), ("purge service", service), *others)
    for name, result in deletions:
        alone, under = result["alone"], result["under"]
        baseline = percentile_ms(alone, 0.99)
        print(f"{f'{name} stopped':<{name_width}}{'':>12}{'':>10}{'':>10}{len(alone):>10}"
              f"{percentile_ms(alone, 0.5):>9.1f}{baseline:>9.1f}{'':>9}"
              f"{result['wal_mb_per_s']['alone']:>10.1f}")  # fmt: skip
        print(
            f"{f'{name} runs':<{name_width}}{result['rows']:>12,}{result['seconds']:>10.1f}"
            f"{result['rows'] / result['seconds']:>10.0f}{len(under):>10}"
            f"{percentile_ms(under, 0.5):>9.1f}{percentile_ms(under, 0.99):>9.1f}"
            f"{percentile_ms(under, 0.99) / baseline:>9.2f}"
            f"{result['wal_mb_per_s']['under']:>10.1f}{max(result['rss'] or [0.0]):>9.1f}"
        )
    print()
    rates = ", ".join(f"{result['rate']:.0f}/s" for _, result in deletions)
    print(f"ingest paced at half its maximum, measured before each deletion ({rates}); "
          f"each deleter ran and was stopped in turn, {slice_s:.0f} s each "
          f"({', '.join(str(result['stops']) for _, result in deletions)} stops)")  # fmt: skip
    for name, result in deletions:
        running, stopped, paired = slice_by_slice(result)
        print(f"{name}, slice by slice: median p99 {running:.1f} ms running, {stopped:.1f} ms"
              f" stopped; each running slice against the stopped ones beside it, median"
              f" x {paired:.2f}")  # fmt: skip
    if args.slices:
        print_slices(deletions)
        kept = ROOT / "var" / "bench-purge-slices.json"
        kept.parent.mkdir(exist_ok=True)
        kept.write_text(json.dumps({name: result["slices"] for name, result in deletions}))
        print(f"every slice's latencies: {kept.relative_to(ROOT)}")
    print(f"purge memory: {tenth:.1f} MB at 10% of the run, {samples[-1] if samples else 0:.1f}"
          f" MB at the end, peak {peak:.1f} MB ({len(samples)} samples)")  # fmt: skip
    target = ratio >= 0.5 and p99_purge <= 1.2 * p99_alone
    print(
        "target (ratio >= 0.5, p99 while the purge runs <= 1.2 x while it is stopped): "
        f"{'met' if target else 'NOT met'}"
    )
    for name, other in others:
        other_ratio = (other["rows"] / other["seconds"]) / raw_per_s
        other_p99 = percentile_ms(other["under"], 0.99) / percentile_ms(other["alone"], 0.99)
        print(f"  {name}: ratio {other_ratio:.2f}, p99 x {other_p99:.2f}")

    if not args.keep:
        connections.close_all()
        drop_database(admin_url, DATABASE)
    flush_redis(redis_url)
    print(
        f"bench purge: rows_per_s={rows_per_s:.0f} raw_rows_per_s={raw_per_s:.0f} "
        f"ratio={ratio:.2f} ingest_p99_ms={p99_alone:.1f} "
        f"ingest_p99_under_purge_ms={p99_purge:.1f} "
        f"paired_p99_ratio={slice_by_slice(service)[2]:.2f} peak_mb={peak:.1f}"
    )
    finished = all(
        result["status"] == "complete" and result["rows"] == raw["rows"]
        for result in (service, *(other for _, other in others))
    )
    return 0 if finished else 1


def slice_by_slice(result: dict) -> tuple[float, float, float]:
    """The median of the running slices' p99s, of the stopped slices' p99s, and of each
    running slice's p99 over the mean p99 of the stopped slices beside it.

    The target is on the p99 of all the webhooks of either side; these say whether one
    stretch decided it (a stall of the machine's own, lasting a minute, falls on a few
    slices of both sides, and its slowest requests are most of a side's slowest 1%).
    """
    parts = [(part["running"], percentile_ms(part["latencies"], 0.99)) for part in result["slices"]]
    running = [p99 for is_running, p99 in parts if is_running]
    stopped = [p99 for is_running, p99 in parts if not is_running]
    paired = []
    for index, (is_running, p99) in enumerate(parts):
        beside = [
            other
            for is_other_running, other in parts[max(0, index - 1) : index + 2]
            if not is_other_running
        ]
        if is_running and beside:
            paired.append(p99 / (sum(beside) / len(beside)))
    nan = float("nan")
    return (
        statistics.median(running) if running else nan,
        statistics.median(stopped) if stopped else nan,
        statistics.median(paired) if paired else nan,
    )


def print_slices(deletions) -> None:
    """Every slice of every deletion: its webhooks, the backlog a stop waited out, and what
    the server wrote (WAL; pages written out by checkpoints and by backends)."""
    print()
    print(f"{'deletion':<22}{'slice':>6}{'side':>9}{'seconds':>9}{'backlog s':>10}"
          f"{'webhooks':>9}{'p50 ms':>8}{'p99 ms':>8}{'WAL MB':>8}{'ckpt pg':>9}"
          f"{'backend pg':>11}")  # fmt: skip
    for name, result in deletions:
        for number, part in enumerate(result["slices"]):
            latencies = part["latencies"]
            print(f"{name[:21]:<22}{number:>6}{'runs' if part['running'] else 'stopped':>9}"
                  f"{part['seconds']:>9.1f}{part['backlog_s']:>10.1f}{len(latencies):>9}"
                  f"{percentile_ms(latencies, 0.5):>8.1f}{percentile_ms(latencies, 0.99):>8.1f}"
                  f"{part['wal'] / 1e6:>8.1f}{part['checkpoint']:>9}"
                  f"{part['backend']:>11}")  # fmt: skip
    print()


def settings_of(text: str) -> dict[str, str]:
    """`NAME=VALUE,NAME=VALUE` as environment settings for a purge to compare."""
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    if not pairs or any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
        raise SystemExit(f"--compare takes NAME=VALUE,... (got {text!r})")
    return {name.strip(): value.strip() for name, value in pairs}


def described(overrides: dict[str, str]) -> str:
    return ", ".join(
        f"{name.removeprefix('RETENTION_PURGE_').lower()}={value}"
        for name, value in overrides.items()
    )


if __name__ == "__main__":
    sys.exit(main())
