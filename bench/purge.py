#!/usr/bin/env python3
"""Retention purge benchmark: the real purge service against a raw batched SQL DELETE, with
live webhook ingest alongside.

What it does, in one run:

1. creates its own PostgreSQL database (`salesos_bench_purge`, owned by the application role,
   row-level security on) with `bench/ingest.py`'s functions, and a business receiving
   signed Twilio and Meta webhooks (the ingest benchmark's builder);
2. builds two businesses with N expired messages each (resolved conversations, 500 messages
   each, resolved 60 days ago against a 30-day policy) with `INSERT … SELECT generate_series`;
3. starts gunicorn (2 gthread workers x 4 threads) and measures the ingest's maximum rate with
   a closed-loop run, then paces webhooks at half that rate (open loop: each request has its
   moment, and a late one counts its wait) and measures their p50 and p99 during the raw
   DELETE and during the purge, and alone in a window directly before and one directly after
   each deletion;
4. deletes the first business's messages with a raw batched
   `DELETE … WHERE id IN (SELECT id … ORDER BY id LIMIT 5000)` (the baseline), and the second
   business's with the purge service (`privacy.retention.purge_expired`, batches of 5000), each
   in a process of its own whose resident memory is sampled every 0.2 s.

Each measurement starts from a settled machine: before it the database is checkpointed and
the kernel's dirty pages are written out, so one phase's write-back does not land in the next
(on this kind of machine a single write-back burst stalls a WAL flush for half a second, which
alone sets a p99). After the raw DELETE its dead rows are vacuumed, so the purge does not pay
for them. Each deletion is compared with its own baseline: its two windows alone, pooled. They
see the database as the deletion does (the webhooks' inserts reuse the space the vacuum freed
after the raw DELETE, which costs them more than appending), and two windows make one
random disk stall count half as much.

    .venv/bin/python bench/purge.py --quick     # 200,000 messages per set, about 2.5 minutes
    .venv/bin/python bench/purge.py             # 5,000,000 messages per set

Targets (issue 6): purge rows/s >= 0.5 x the raw DELETE; ingest p99 under the purge no more
than 20% above the p99 alone; the purge's memory flat.

Needs PostgreSQL (DATABASE_ADMIN_URL, or the application role's CREATEDB right) and Redis
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/13 — flushed by the benchmark).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
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
    started = time.perf_counter()
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
    started = time.perf_counter()
    with tenant_context(tenant):
        report = retention.purge_expired()  # its own batch size and pauses, as in production
    return {
        "rows": report.total,
        "seconds": time.perf_counter() - started,
        "status": report.status,
        "batches": report.batches,
    }


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
        self.codes: dict[int, int] = {}
        self._stop = threading.Event()
        self._next = 0
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

    def run_for(self, seconds: float) -> None:
        self.start()
        time.sleep(seconds)
        self.stop()

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
                self.codes[status] = self.codes.get(status, 0) + 1
        conn.close()

    def p99_ms(self) -> float:
        return percentile_ms(self.latencies, 0.99)

    def p50_ms(self) -> float:
        return percentile_ms(self.latencies, 0.50)


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


def delete_under_load(kind, tenant_id, env, port, supply: Supply, rate) -> dict:
    """Run one deleter in its own process while webhooks are paced; sample its memory."""
    ingest = supply.paced(port, rate)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(tenant_id)]
    ingest.start()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    samples: list[float] = []
    while process.poll() is None:
        value = rss_mb(process.pid)
        if value is not None:
            samples.append(value)
        time.sleep(0.2)
    ingest.stop()
    supply.take(ingest)
    if ingest.ran_out:
        say(f"the webhooks ran out before the {kind} deleter finished; p99 covers the start only")
    output = process.stdout.read()
    if process.returncode != 0:
        raise SystemExit(f"the {kind} deleter failed with status {process.returncode}")
    result = json.loads(output.split("RESULT ", 1)[1])
    result["rss"] = samples
    result["ingest"] = ingest
    return result


# --- main ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 messages per set")
    parser.add_argument("-n", type=int, help="expired messages per set (default 5,000,000)")
    parser.add_argument(
        "--alone",
        type=float,
        help="seconds of each of the four ingest-alone windows (default 20, 90 in a full run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "TENANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child[0], int(args.child[1]))
    n = args.n or (200_000 if args.quick else 5_000_000)
    alone_s = args.alone or (20.0 if args.quick else 90.0)
    flat_out_requests = 3000 if args.quick else 6000
    # Enough webhooks for the windows alone and both deletions at up to 280/s, with the raw
    # DELETE at 10,000 rows/s and the purge at 6,000 or faster (posting stops when one ends).
    deletion_s = n / 10_000 + n / 6_000
    supply_size = flat_out_requests + int(280 * (4 * alone_s + deletion_s))

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
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    say(f"built 2 x {n:,} expired messages in {time.perf_counter() - started:.0f} s")
    connections.close_all()

    requests = as_requests(webhooks)
    supply = Supply(requests[flat_out_requests:])
    child_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = start_gunicorn(child_env, port, workers=2, worker_class="gthread", threads=4)
    try:
        clients = dict(processes=2, threads=4, server_pid=server.pid)
        load(port, as_requests(warm_up), **clients)
        settle(admin_url, database_url)
        flat_out = load(port, requests[:flat_out_requests], **clients)
        rate = flat_out["per_s"] / 2
        say(f"ingest maximum {flat_out['per_s']:.0f}/s; pacing at {rate:.0f}/s")

        def alone(label: str) -> PacedIngest:
            ingest = supply.paced(port, rate)
            ingest.run_for(alone_s)
            supply.take(ingest)
            say(f"ingest alone, {label}: p99 {ingest.p99_ms():.1f} ms")
            return ingest

        windows = {}
        settle(admin_url, database_url)
        windows["before raw"] = alone("before the raw DELETE")
        raw = delete_under_load("raw", raw_tenant, child_env, port, supply, rate)
        say(f"raw DELETE: {raw['rows']:,} rows in {raw['seconds']:.1f} s")
        settle(admin_url, database_url)
        windows["after raw"] = alone("after the raw DELETE")

        dead = ("channels_app_message", "channels_app_conversation")
        settle(admin_url, database_url, vacuum=dead)
        windows["before purge"] = alone("before the purge")
        service = delete_under_load("service", service_tenant, child_env, port, supply, rate)
        say(f"purge: {service['rows']:,} rows in {service['seconds']:.1f} s ({service['status']})")
        settle(admin_url, database_url)
        windows["after purge"] = alone("after the purge")
    finally:
        stop_gunicorn(server)

    def pooled(*names: str) -> list[float]:
        return [x for name in names for x in windows[name].latencies]

    raw["alone"] = pooled("before raw", "after raw")
    service["alone"] = pooled("before purge", "after purge")
    rows_per_s = service["rows"] / service["seconds"]
    raw_per_s = raw["rows"] / raw["seconds"]
    ratio = rows_per_s / raw_per_s
    p99_alone = percentile_ms(service["alone"], 0.99)
    p99_purge = service["ingest"].p99_ms()
    peak = max(service["rss"] or [0.0])
    samples = service["rss"]
    tenth = samples[len(samples) // 10] if samples else 0.0

    print()
    print(f"{'deleting':<26}{'rows':>12}{'seconds':>10}{'rows/s':>10}{'webhooks':>10}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'x alone':>9}{'peak MB':>9}")  # fmt: skip
    deletions = (("raw batched DELETE", raw, "raw"), ("purge service", service, "purge"))
    for name, result, kind in deletions:
        for label in (f"before {kind}", f"after {kind}"):
            window = windows[label]
            print(f"{f'nothing ({label})':<26}{'':>12}{alone_s:>10.1f}{'':>10}"
                  f"{len(window.latencies):>10}{window.p50_ms():>9.1f}"
                  f"{window.p99_ms():>9.1f}")  # fmt: skip
        baseline = percentile_ms(result["alone"], 0.99)
        print(f"{'nothing (both, pooled)':<26}{'':>12}{2 * alone_s:>10.1f}{'':>10}"
              f"{len(result['alone']):>10}{percentile_ms(result['alone'], 0.5):>9.1f}"
              f"{baseline:>9.1f}")  # fmt: skip
        ingest = result["ingest"]
        print(
            f"{name:<26}{result['rows']:>12,}{result['seconds']:>10.1f}"
            f"{result['rows'] / result['seconds']:>10.0f}{len(ingest.latencies):>10}"
            f"{ingest.p50_ms():>9.1f}{ingest.p99_ms():>9.1f}{ingest.p99_ms() / baseline:>9.2f}"
            f"{max(result['rss'] or [0.0]):>9.1f}"
        )
    print()
    print(f"ingest paced at {rate:.0f}/s (half of {flat_out['per_s']:.0f}/s measured); "
          f"non-200 answers under the purge: "
          f"{sum(k for c, k in service['ingest'].codes.items() if c != 200)}")  # fmt: skip
    print(f"purge memory: {tenth:.1f} MB at 10% of the run, {samples[-1] if samples else 0:.1f}"
          f" MB at the end, peak {peak:.1f} MB ({len(samples)} samples)")  # fmt: skip
    target = ratio >= 0.5 and p99_purge <= 1.2 * p99_alone
    print(
        "target (ratio >= 0.5, p99 under the purge <= 1.2 x its windows alone): "
        f"{'met' if target else 'NOT met'}"
    )

    if not args.keep:
        connections.close_all()
        drop_database(admin_url, DATABASE)
    flush_redis(redis_url)
    print(
        f"bench purge: rows_per_s={rows_per_s:.0f} raw_rows_per_s={raw_per_s:.0f} "
        f"ratio={ratio:.2f} ingest_p99_ms={p99_alone:.1f} "
        f"ingest_p99_under_purge_ms={p99_purge:.1f} peak_mb={peak:.1f}"
    )
    return 0 if service["status"] == "complete" and service["rows"] == raw["rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
