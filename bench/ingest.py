#!/usr/bin/env python3
"""Webhook ingest benchmark: signed provider webhooks against the app under gunicorn.

What it does, in one run:

1. creates its own PostgreSQL database (`salesos_bench`, owned by the application role
   `salesos_app`, no superuser, row-level security on) and migrates it; a Redis database of
   its own is the Celery broker (nothing runs eagerly: follow-up tasks are really enqueued);
2. creates a business with a Twilio WhatsApp channel and a Meta WhatsApp channel, and the
   outbound messages whose delivery statuses will arrive;
3. builds N webhooks signed exactly as the providers sign them (the Twilio/Meta builders of
   the provider stub): 25% inbound messages, 75% status callbacks, half Twilio and half Meta,
   plus 10% exact duplicates of earlier ones, posted later in the run;
4. starts gunicorn on 127.0.0.1 and posts them over loopback with a pool of keep-alive
   clients, measuring acknowledgement latency: a 200 means stored and, for a new message,
   its follow-up task is in the broker;
5. runs the same clients against the same server's bare `/healthz` (half before the
   webhooks and half after, at least 4000 requests) and prints the ratio;
6. prints where the CPU went (per request: the app, PostgreSQL, Redis, the clients, anything
   else on the machine) and checks with SQL that nothing was stored twice or lost, and counts
   the enqueued tasks.

Fairness of the comparison. Both endpoints are measured on the same server process, with
the same gunicorn configuration (2 gthread workers x 4 threads: one worker per core, threads
to overlap the webhooks' waits on the database; keep-alive 10 s) and the same clients (2
processes x 4 keep-alive HTTP/1.1 connections; they use a small share of the CPU, shown in
the CPU table, so they do not starve the 2-core server). The server runs with production
settings: DEBUG off, log level WARNING, persistent database connections (CONN_MAX_AGE=60,
as .env.example) with Django's health checks, the full middleware stack on both endpoints
(which also resets the connection's tenant after every request, /healthz included). Warm-up
before measuring: every worker thread opens its database connection, imports its code and
learns the channels' webhook addresses (40 webhooks), then 500 bare requests. Measuring the
bare endpoint on both sides of the webhooks evens out other work on the machine; the CPU
table says how much of it there was (compare ratios, not absolute figures, on a busy
machine).

    .venv/bin/python bench/ingest.py --quick     # about a minute
    .venv/bin/python bench/ingest.py             # the full run

Target (issue 3): webhooks/s >= 0.3 x the bare endpoint, p99 < 250 ms, zero duplicates.

Needs PostgreSQL (DATABASE_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres,
or the role's own CREATEDB right) and Redis (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/12 — the benchmark flushes that database).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import http.client
import itertools
import multiprocessing
import os
import random
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.run_tests import (  # noqa: E402 - after the path is set
    APP_PASSWORD,
    APP_ROLE,
    admin_conninfo,
    ensure_app_role_and_database,
)

BENCH_DATABASE = "salesos_bench"
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
CELERY_QUEUE = "celery"


def say(message: str) -> None:
    print(f"[bench ingest] {message}", flush=True)


# --- PostgreSQL and Redis ----------------------------------------------------------------------


def fresh_database(admin_url: str, name: str = BENCH_DATABASE) -> str:
    """Drop and create the bench database as the application role; its DATABASE_URL."""
    import psycopg
    from psycopg import sql

    info = admin_conninfo(admin_url)
    host, port = info["host"], info["port"]
    database = sql.Identifier(name)
    try:
        admin = psycopg.connect(**info, autocommit=True)
    except psycopg.OperationalError as exc:
        # No superuser at hand: the application role may create databases itself.
        say(f"no admin connection ({exc.__class__.__name__}); using {APP_ROLE}'s CREATEDB")
        admin = psycopg.connect(
            host=host, port=port, user=APP_ROLE, password=APP_PASSWORD, dbname="postgres",
            autocommit=True, connect_timeout=5,
        )  # fmt: skip
    else:
        ensure_app_role_and_database(admin_url)  # the role the application runs as
    with admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(database, sql.Identifier(APP_ROLE))
        )
    return f"postgres://{APP_ROLE}:{quote(APP_PASSWORD, safe='')}@{host}:{port}/{name}"


def drop_database(admin_url: str, name: str = BENCH_DATABASE) -> None:
    import psycopg
    from psycopg import sql

    info = admin_conninfo(admin_url)
    try:
        conn = psycopg.connect(**info, autocommit=True)
    except psycopg.OperationalError:
        conn = psycopg.connect(
            host=info["host"], port=info["port"], user=APP_ROLE, password=APP_PASSWORD,
            dbname="postgres", autocommit=True, connect_timeout=5,
        )  # fmt: skip
    with conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_environment(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    """Production settings, on loopback: DEBUG off, persistent connections, a real broker."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        "DJANGO_SETTINGS_MODULE": "salesos.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": f"bench:{key}",
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "60",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CACHE_URL": "locmemcache://bench",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # Plain HTTP on loopback stands in for the TLS proxy of production.
        "SECURE_SSL_REDIRECT": "0",
        "USE_X_FORWARDED_PROTO": "0",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_MANIFEST": "0",
        "LOG_LEVEL": "WARNING",
        "ENV_FILE": os.devnull,  # a developer's .env must not change the measurement
    }


# --- Data and webhooks -------------------------------------------------------------------------


def seed_and_build(n: int, seed: int):
    """Create the business, channels and outbound messages; return the webhooks to post.

    Each webhook is (label, path, body, headers, content_type). Returns
    (warm_up, measured, expected) where expected counts what must be stored.
    """
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.urls import reverse

    from channels_app.models import Channel, Conversation, Message
    from crm.models import Contact
    from tenants.context import tenant_context
    from tenants.models import Tenant
    from tests.fakes.webhooks import (
        FORM,
        encode_form,
        meta_inbound_message,
        meta_status,
        twilio_inbound_message,
        twilio_status_callback,
    )

    call_command("migrate", interactive=False, verbosity=0)
    rng = random.Random(seed)
    tenant = Tenant.objects.create(name="Bench Clinic", slug="bench-clinic")
    with tenant_context(tenant):
        twilio = Channel.objects.create(
            kind=Channel.Kind.TWILIO_WHATSAPP,
            name="Twilio WhatsApp",
            twilio_account_sid="AC" + secrets.token_hex(16),
            twilio_auth_token=secrets.token_hex(16),
            twilio_from="+14155238886",
            sender="+14155238886",
        )
        meta = Channel.objects.create(
            kind=Channel.Kind.META_WHATSAPP,
            name="Meta WhatsApp",
            meta_phone_number_id="106540352242922",
            meta_business_account_id="102290129340398",
            meta_access_token="EAAG" + secrets.token_hex(16),
            meta_app_secret=secrets.token_hex(16),
            meta_verify_token=secrets.token_hex(8),
            sender="+15550100000",
        )

        unique = n - n // 10  # the other 10% are duplicates
        inbound_count = unique // 4
        status_count = unique - inbound_count
        outbound_count = -(-status_count // 3)  # sent, delivered, read for each

        # Customers who already wrote (their outbound replies get statuses).
        customers = [f"+1415{rng.randrange(10**6, 10**7):07d}" for _ in range(400)]
        customers = list(dict.fromkeys(customers))
        contacts = Contact.objects.bulk_create(
            [Contact(tenant=tenant, phone=p, name=f"Customer {i}") for i, p in enumerate(customers)]
        )
        conversations = {}
        for channel in (twilio, meta):
            conversations[channel.pk] = Conversation.objects.bulk_create(
                [Conversation(tenant=tenant, channel=channel, contact=c) for c in contacts[:200]]
            )
        outbound = []
        for index in range(outbound_count):
            channel = twilio if index % 2 == 0 else meta
            conversation = conversations[channel.pk][index % 200]
            provider_id = (
                "SM" + secrets.token_hex(16)
                if channel is twilio
                else "wamid." + secrets.token_hex(24)
            )
            outbound.append(
                Message(
                    tenant=tenant,
                    conversation=conversation,
                    channel=channel,
                    direction=Message.Direction.OUTBOUND,
                    sender_kind=Message.SenderKind.AGENT,
                    body="Your appointment is confirmed.",
                    status=Message.Status.ACCEPTED,
                    provider_message_id=provider_id,
                    purpose="transactional",
                )
            )
        Message.objects.bulk_create(outbound, batch_size=1000)
    # Planner statistics, as autovacuum keeps them on a live database.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    base = settings.PUBLIC_BASE_URL
    twilio_in = reverse("hook_twilio_inbound", kwargs={"token": twilio.webhook_token})
    twilio_st = reverse("hook_twilio_status", kwargs={"token": twilio.webhook_token})
    meta_path = reverse("hook_meta", kwargs={"token": meta.webhook_token})
    words = ["hello", "appointment", "tomorrow", "price", "cleaning", "thanks", "please"]

    def inbound_webhook(index: int):
        phone = rng.choice(customers) if rng.random() < 0.8 else f"+1628{rng.randrange(10**7):07d}"
        text = " ".join(rng.choice(words) for _ in range(rng.randint(2, 12))).capitalize()
        if index % 2 == 0:
            params, headers = twilio_inbound_message(
                base + twilio_in, twilio.twilio_auth_token, from_=phone, to=twilio.twilio_from,
                body=text, profile_name="Customer", account_sid=twilio.twilio_account_sid,
            )  # fmt: skip
            return ("twilio inbound", twilio_in, encode_form(params).encode(), headers, FORM)
        body, headers = meta_inbound_message(
            meta.meta_app_secret, phone_number_id=meta.meta_phone_number_id,
            waba_id=meta.meta_business_account_id, from_wa_id=phone, body=text,
            profile_name="Customer",
        )  # fmt: skip
        return ("meta inbound", meta_path, body, headers, "application/json")

    def status_webhook(message, status: str):
        if message.channel_id == twilio.pk:
            params, headers = twilio_status_callback(
                base + twilio_st, twilio.twilio_auth_token,
                message_sid=message.provider_message_id, status=status,
                account_sid=twilio.twilio_account_sid,
            )  # fmt: skip
            return ("twilio status", twilio_st, encode_form(params).encode(), headers, FORM)
        body, headers = meta_status(
            meta.meta_app_secret, message_id=message.provider_message_id, status=status,
            recipient="+14155550100", phone_number_id=meta.meta_phone_number_id,
        )  # fmt: skip
        return ("meta status", meta_path, body, headers, "application/json")

    # Statuses arrive in rounds (sent, then delivered, then read), inbound messages among them.
    statuses = [
        status_webhook(message, status)
        for status in ("sent", "delivered", "read")
        for message in outbound
    ][:status_count]
    inbound = [inbound_webhook(i) for i in range(inbound_count)]
    merged: list = []
    inbound_iter = iter(inbound)
    for index, item in enumerate(statuses):
        merged.append(item)
        if index % 3 == 2:
            merged.append(next(inbound_iter, None))
    merged.extend(inbound_iter)
    merged = [item for item in merged if item is not None]
    # Exact duplicates (a provider retrying), each posted some time after its original.
    for _ in range(n - len(merged)):
        original = rng.randrange(len(merged))
        later = rng.randint(original + 1, min(len(merged), original + 400))
        merged.insert(later, merged[original])

    warm_up = [inbound_webhook(i) for i in range(40)]
    expected = {
        "inbound": inbound_count + len(warm_up),
        "status_events": status_count,
        "outbound": len(outbound),
        "read": max(0, status_count - 2 * len(outbound)),
    }
    return tenant, warm_up, merged, expected


# --- Load ------------------------------------------------------------------------------------


def _worker(args) -> tuple[list[float], dict[int, int], float, float]:
    """One client process: `threads` keep-alive connections working through `requests`."""
    port, requests, threads = args
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    counter = itertools.count()

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, my_codes = [], {}
        while True:
            index = next(counter)
            if index >= len(requests):
                break
            method, path, body, headers = requests[index]
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 599
            mine.append(time.perf_counter() - started)
            my_codes[status] = my_codes.get(status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for code, count in my_codes.items():
                codes[code] = codes.get(code, 0) + count

    pool = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, codes, started, time.perf_counter()


def load(port: int, requests: list, *, processes: int, threads: int, server_pid: int) -> dict:
    """Post `requests` with processes x threads clients; throughput, latency and CPU used."""
    chunks = [(port, requests[i::processes], threads) for i in range(processes)]
    cpu_before = cpu_snapshot(server_pid)
    wall = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.map(_worker, chunks)
        pool.close()
        pool.join()  # reaped, so the clients' CPU time is counted
    wall = time.perf_counter() - wall
    cpu = cpu_used(cpu_before, cpu_snapshot(server_pid))
    latencies = sorted(x for r in results for x in r[0])
    codes: dict[int, int] = {}
    for r in results:
        for code, count in r[1].items():
            codes[code] = codes.get(code, 0) + count
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "elapsed": elapsed,
        "wall": wall,
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "max": latencies[-1] * 1000,
        "mean": statistics.fmean(latencies) * 1000,
        "codes": codes,
        "latencies": latencies,
        "cpu": cpu,
    }


def merge_results(*results: dict) -> dict:
    """Several runs of the same requests as one (the bare endpoint is measured twice)."""
    latencies = sorted(x for r in results for x in r["latencies"])
    elapsed = sum(r["elapsed"] for r in results)
    codes: dict[int, int] = {}
    for r in results:
        for code, count in r["codes"].items():
            codes[code] = codes.get(code, 0) + count

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "per_s": len(latencies) / elapsed,
        "elapsed": elapsed,
        "wall": sum(r["wall"] for r in results),
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "max": latencies[-1] * 1000,
        "mean": statistics.fmean(latencies) * 1000,
        "codes": codes,
        "latencies": latencies,
        "cpu": {k: sum(r["cpu"][k] for r in results) for k in results[0]["cpu"]},
    }


# --- CPU accounting ------------------------------------------------------------------------
# Other work on the machine slows both measurements; where the CPU went shows how much. Read
# from /proc (Linux): the server's process group, every PostgreSQL and Redis process, the
# client processes, and the machine as a whole.

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip()
    except OSError:
        return ""


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds so far: app (gunicorn), database, broker, clients, machine (busy)."""
    totals = {"app": 0.0, "database": 0.0, "broker": 0.0}
    if not os.path.isdir("/proc"):
        return {**totals, "clients": 0.0, "machine": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fields = _stat(pid)
        if fields is None:
            continue
        # utime, stime, and the same for children already waited for (exited backends).
        used = sum(int(x) for x in fields[11:15]) / TICKS
        if int(fields[2]) == server_pid:  # process group: gunicorn's master and workers
            totals["app"] += used
        elif (comm := _comm(pid)) == "postgres":
            totals["database"] += used
        elif comm == "redis-server":
            totals["broker"] += used
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    totals["clients"] = children.ru_utime + children.ru_stime
    with open("/proc/stat") as stat:
        # user nice system idle iowait irq softirq steal …: busy is all but idle and iowait.
        ticks = [int(x) for x in stat.readline().split()[1:9]]
    totals["machine"] = (sum(ticks) - ticks[3] - ticks[4]) / TICKS
    return totals


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in before}


def as_requests(webhooks) -> list:
    return [
        ("POST", path, body, {**headers, "Content-Type": content_type})
        for _label, path, body, headers, content_type in webhooks
    ]


# --- gunicorn --------------------------------------------------------------------------------


def start_gunicorn(env: dict, port: int, *, workers: int, worker_class: str, threads: int):
    command = [
        sys.executable, "-m", "gunicorn", "salesos.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--worker-class", worker_class, "--threads", str(threads),
        "--keep-alive", "10", "--backlog", "2048", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with status {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return process
        except OSError:
            time.sleep(0.2)
    stop_gunicorn(process)
    raise SystemExit("gunicorn did not answer /healthz within 30 s")


def stop_gunicorn(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- Checks ----------------------------------------------------------------------------------


def stored(tenant) -> dict:
    from django.db import connection

    from tenants.context import tenant_context

    queries = {
        "duplicate_messages": "SELECT count(*) - count(DISTINCT (channel_id, provider_message_id))"
        " FROM channels_app_message WHERE provider_message_id <> ''",
        "duplicate_status_events": "SELECT count(*) - count(DISTINCT (channel_id,"
        " provider_message_id, provider_status)) FROM channels_app_messagestatusevent",
        "inbound": "SELECT count(*) FROM channels_app_message WHERE direction = 'inbound'",
        "status_events": "SELECT count(*) FROM channels_app_messagestatusevent",
        "unapplied_events": "SELECT count(*) FROM channels_app_messagestatusevent"
        " WHERE NOT applied",
        "outbound_read": "SELECT count(*) FROM channels_app_message"
        " WHERE direction = 'outbound' AND status = 'read'",
        "unread_total": "SELECT coalesce(sum(unread_count), 0) FROM channels_app_conversation",
    }
    # Row-level security: the counts are the bench business's, read in its context.
    with tenant_context(tenant), connection.cursor() as cursor:
        result = {}
        for name, sql in queries.items():
            cursor.execute(sql)
            result[name] = cursor.fetchone()[0]
    return result


def queued_tasks(redis_url: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return client.llen(CELERY_QUEUE)
    finally:
        client.close()


def flush_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- main ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("-n", type=int, help="webhooks to post (default 4000, quick 2000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args(argv)
    n = args.n or (2000 if args.quick else 12000)

    # One run at a time: two would share the database and broker, and each other's CPU.
    (ROOT / "var").mkdir(exist_ok=True)
    lock = open(ROOT / "var" / "bench-ingest.lock", "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another ingest benchmark is running; waiting for it to finish")
        fcntl.flock(lock, fcntl.LOCK_EX)

    admin_url = os.environ.get("DATABASE_ADMIN_URL") or DEFAULT_ADMIN_URL
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    port = free_port()
    say(f"database {BENCH_DATABASE}, broker {redis_url}, port {port}")
    database_url = fresh_database(admin_url)
    flush_redis(redis_url)
    env = app_environment(database_url, redis_url, port)
    os.environ.update(env)

    import django

    django.setup()

    from django.db import connections

    started = time.perf_counter()
    tenant, warm_up, webhooks, expected = seed_and_build(n, args.seed)
    connections.close_all()
    say(
        f"migrated and seeded in {time.perf_counter() - started:.1f} s: {len(webhooks)} "
        f"webhooks ({expected['inbound'] - len(warm_up)} new messages, "
        f"{expected['status_events']} statuses for {expected['outbound']} sent messages, "
        f"{len(webhooks) - expected['status_events'] - expected['inbound'] + len(warm_up)}"
        " duplicates)"
    )

    child_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = start_gunicorn(
        child_env, port, workers=args.workers, worker_class=args.worker_class,
        threads=args.threads,
    )  # fmt: skip
    per_process = max(1, args.clients // args.client_processes)
    clients = dict(processes=args.client_processes, threads=per_process)
    clients["server_pid"] = server.pid
    # At least a few seconds of the bare endpoint, half before and half after the webhooks,
    # so a change in the machine's other load during the run weighs on both alike.
    bare_half = [("GET", "/healthz", None, {})] * (max(len(webhooks), 4000) // 2)
    try:
        # Warm-up: every worker thread opens its database connection, loads its code and
        # learns the channels' addresses.
        load(port, as_requests(warm_up), **clients)
        load(port, bare_half[:500], **clients)
        bare_before = load(port, bare_half, **clients)
        ingest = load(port, as_requests(webhooks), **clients)
        bare_after = load(port, bare_half, **clients)
    finally:
        stop_gunicorn(server)
    bare = merge_results(bare_before, bare_after)

    counts = stored(tenant)
    tasks = queued_tasks(redis_url)
    duplicates = counts["duplicate_messages"] + counts["duplicate_status_events"]
    lost = (expected["inbound"] - counts["inbound"]) + (
        expected["status_events"] - counts["status_events"]
    )
    ratio = ingest["per_s"] / bare["per_s"]

    setup = f"{args.workers} {args.worker_class} workers"
    if args.worker_class == "gthread":
        setup += f" x {args.threads} threads"
    print()
    print(f"gunicorn: {setup}; clients: {args.client_processes} processes x {per_process} "
          f"keep-alive connections")  # fmt: skip
    print(f"{'endpoint':<22}{'requests':>9}{'per s':>9}{'p50 ms':>9}{'p90 ms':>9}"
          f"{'p99 ms':>9}{'max ms':>9}  status codes")  # fmt: skip
    for name, result in (("webhooks", ingest), ("/healthz (bare)", bare)):
        codes = ", ".join(f"{c}x{k}" for c, k in sorted(result["codes"].items()))
        print(
            f"{name:<22}{result['requests']:>9}{result['per_s']:>9.0f}{result['p50']:>9.1f}"
            f"{result['p90']:>9.1f}{result['p99']:>9.1f}{result['max']:>9.1f}  {codes}"
        )
    print()
    cores = os.cpu_count() or 1
    print(f"{'CPU ms per request':<22}{'app':>9}{'database':>9}{'broker':>9}{'clients':>9}"
          f"{'other':>9}   machine busy")  # fmt: skip
    for name, result in (("webhooks", ingest), ("/healthz (bare)", bare)):
        cpu, count = result["cpu"], result["requests"]
        other = cpu["machine"] - cpu["app"] - cpu["database"] - cpu["broker"] - cpu["clients"]
        busy = cpu["machine"] / (result["wall"] * cores)
        print(
            f"{name:<22}{1000 * cpu['app'] / count:>9.2f}{1000 * cpu['database'] / count:>9.2f}"
            f"{1000 * cpu['broker'] / count:>9.2f}{1000 * cpu['clients'] / count:>9.2f}"
            f"{1000 * max(other, 0) / count:>9.2f}   {busy:.0%} of {cores} cores"
        )
    print()
    print(f"{'stored':<34}{'expected':>10}{'found':>10}")
    rows = [
        ("inbound messages", expected["inbound"], counts["inbound"]),
        ("status events", expected["status_events"], counts["status_events"]),
        ("follow-up tasks in the broker", expected["inbound"], tasks),
        ("messages stored twice", 0, counts["duplicate_messages"]),
        ("status events stored twice", 0, counts["duplicate_status_events"]),
        ("status events left unapplied", 0, counts["unapplied_events"]),
        ("sent messages now read", expected["read"], counts["outbound_read"]),
        ("unread count over conversations", expected["inbound"], counts["unread_total"]),
    ]
    for label, want, got in rows:
        print(f"{label:<34}{want:>10}{got:>10}{'' if want == got else '  <-- differs'}")
    print()
    target = ratio >= 0.3 and ingest["p99"] < 250 and duplicates == 0
    print(f"target (ratio >= 0.3, p99 < 250 ms, no duplicates): {'met' if target else 'NOT met'}")

    if not args.keep:
        connections.close_all()
        drop_database(admin_url)
    flush_redis(redis_url)
    print(
        f"bench ingest: webhooks_per_s={ingest['per_s']:.0f} bare_per_s={bare['per_s']:.0f} "
        f"ratio={ratio:.2f} p50_ms={ingest['p50']:.1f} p99_ms={ingest['p99']:.1f} "
        f"duplicates={duplicates}"
    )
    bad_codes = sum(k for c, k in ingest["codes"].items() if c != 200)
    return 1 if (duplicates or lost or bad_codes) else 0


if __name__ == "__main__":
    sys.exit(main())
