#!/usr/bin/env python3
"""Data-request benchmark: erase one contact with 50,000 messages, export another with the
same, through the real path (request → findings → Celery task → registry-driven erasure and
verification, or the streamed archive), with wall time and peak memory.

Baselines, measured in the same run on a third contact of the same shape:
- erase: raw SQL `DELETE`s of that contact's status events, messages, conversation and
  contact (what the work would cost with no registry, no verification, no proof);
- export: `COPY (SELECT … messages …) TO STDOUT` into a file (the cheapest way to get the
  rows out of PostgreSQL).
Peak memory is the process's resident size, sampled every 5 ms during the operation, above
what it was just before (so it is what the operation added, not the interpreter).

    .venv/bin/python bench/erasure.py --quick     # about a minute
    .venv/bin/python bench/erasure.py             # more history around the subjects

Needs PostgreSQL (DATABASE_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres,
or the application role's own CREATEDB right); it creates and drops its own database
(`salesos_bench_erasure`). Celery runs eagerly in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import sys
import tempfile
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
)

BENCH_DATABASE = "salesos_bench_erasure"
DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PAGE = os.sysconf("SC_PAGE_SIZE")


def say(message: str) -> None:
    print(f"[bench erasure] {message}", flush=True)


def _admin(admin_url: str):
    import psycopg

    info = admin_conninfo(admin_url)
    try:
        return psycopg.connect(**info, autocommit=True), info
    except psycopg.OperationalError:
        conn = psycopg.connect(
            host=info["host"], port=info["port"], user=APP_ROLE, password=APP_PASSWORD,
            dbname="postgres", autocommit=True, connect_timeout=5,
        )  # fmt: skip
        return conn, info


def fresh_database(admin_url: str) -> str:
    from psycopg import sql

    conn, info = _admin(admin_url)
    with conn:
        name = sql.Identifier(BENCH_DATABASE)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(name, sql.Identifier(APP_ROLE)))
    password = quote(APP_PASSWORD, safe="")
    return f"postgres://{APP_ROLE}:{password}@{info['host']}:{info['port']}/{BENCH_DATABASE}"


def drop_database(admin_url: str) -> None:
    from psycopg import sql

    conn, _info = _admin(admin_url)
    with conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(BENCH_DATABASE)
            )
        )


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakMemory:
    """Resident memory sampled in a thread; `.peak_mb` is the most added during the block."""

    def __enter__(self):
        # Give freed memory back first, so what the operation adds shows in the resident size.
        gc.collect()
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        self.base = rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self.started = time.perf_counter()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())
        self.peak_mb = (self.peak - self.base) / 2**20


def seed(*, messages: int, others: int):
    """A business with three contacts of `messages` messages each (a tenth of them outbound,
    with a delivery status), consent events, raw payloads, notes; and `others` small contacts
    around them."""
    from django.core.management import call_command
    from django.db import connection

    from channels_app.models import (
        Channel,
        Conversation,
        InboundWebhook,
        Message,
    )
    from crm.models import Contact, Note
    from privacy.models import ConsentEvent
    from tenants.context import tenant_context
    from tenants.models import Tenant

    call_command("migrate", interactive=False, verbosity=0)
    tenant = Tenant.objects.create(name="Bench Erasure", slug="bench-erasure")
    with tenant_context(tenant):
        channel = Channel.objects.create(kind=Channel.Kind.SANDBOX, name="Sandbox")
        subjects = []
        for index, label in enumerate(("erase", "export", "baseline")):
            phone = f"+4477009{index:05d}"
            contact = Contact.objects.create(
                name=f"Subject {label}", phone=phone, email=f"{label}@bench.example"
            )
            conversation = Conversation.objects.create(channel=channel, contact=contact)
            # Generated by PostgreSQL: a tenth outbound with a delivery status, as in real use.
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO channels_app_message (tenant_id, conversation_id, channel_id,
                        direction, sender_kind, body, media, template_variables, purpose,
                        provider_message_id, idempotency_key, status, error_code, error_reason,
                        attempts, created_at, status_changed_at)
                    SELECT %(tenant)s, %(conversation)s, %(channel)s,
                        CASE WHEN g %% 10 = 0 THEN 'outbound' ELSE 'inbound' END,
                        CASE WHEN g %% 10 = 0 THEN 'agent' ELSE 'customer' END,
                        'message ' || g || ' about order ' || g * 7 || ' from ' || %(phone)s,
                        '[]', '{}', '', %(label)s || '-' || g, '',
                        CASE WHEN g %% 10 = 0 THEN 'sent' ELSE 'received' END, '', '', 0,
                        now(), now()
                    FROM generate_series(0, %(n)s - 1) AS g
                    """,
                    {
                        "tenant": tenant.pk,
                        "conversation": conversation.pk,
                        "channel": channel.pk,
                        "phone": phone,
                        "label": label,
                        "n": messages,
                    },
                )
                cursor.execute(
                    """
                    INSERT INTO channels_app_messagestatusevent (tenant_id, channel_id,
                        message_id, provider_message_id, status, provider_status, error_code,
                        error_reason, received_at, applied)
                    SELECT tenant_id, channel_id, id, provider_message_id, 'delivered',
                        'delivered', '', '', now(), true
                    FROM channels_app_message
                    WHERE conversation_id = %s AND direction = 'outbound'
                    """,
                    [conversation.pk],
                )
            InboundWebhook.objects.bulk_create(
                [
                    InboundWebhook(
                        tenant=tenant,
                        channel=channel,
                        body=f"From=whatsapp%3A%2B{phone[1:]}&Body=message+{n}",
                    )
                    for n in range(200)
                ]
            )
            ConsentEvent.objects.bulk_create(
                [
                    ConsentEvent(
                        tenant=tenant,
                        contact=contact,
                        medium="whatsapp",
                        purpose="transactional",
                        action="granted",
                        source="agent",
                        evidence=f"agreed on the phone {phone}",
                    )
                ]
            )
            Note.objects.create(contact=contact, body=f"call {phone}")
            subjects.append(contact)
        for n in range(others):
            other = Contact.objects.create(name=f"Other {n}", phone=f"+4420700{n:05d}")
            conversation = Conversation.objects.create(channel=channel, contact=other)
            Message.objects.bulk_create(
                [
                    Message(
                        tenant=tenant,
                        conversation=conversation,
                        channel=channel,
                        direction="inbound",
                        sender_kind="customer",
                        body=f"hello {k}",
                        status="received",
                    )
                    for k in range(20)
                ]
            )
    return tenant, subjects


def carry_out(tenant, *, kind: str, phone: str):
    from privacy import dsr
    from tenants.context import tenant_context

    with tenant_context(tenant):
        data_request = dsr.create_request(kind=kind, phone=phone)
        dsr.confirm_request(data_request=data_request)  # eager Celery: runs on commit
        data_request.refresh_from_db()
    return data_request


def raw_delete(tenant, contact) -> None:
    from django.db import connection, transaction

    from tenants.context import tenant_context

    with tenant_context(tenant), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM channels_app_messagestatusevent WHERE message_id IN "
            "(SELECT m.id FROM channels_app_message m JOIN channels_app_conversation c "
            "ON c.id = m.conversation_id WHERE c.contact_id = %s)",
            [contact.pk],
        )
        cursor.execute(
            "DELETE FROM channels_app_message WHERE conversation_id IN "
            "(SELECT id FROM channels_app_conversation WHERE contact_id = %s)",
            [contact.pk],
        )
        cursor.execute("DELETE FROM channels_app_conversation WHERE contact_id = %s", [contact.pk])
        cursor.execute("UPDATE privacy_consentevent SET contact_id = NULL WHERE contact_id = %s",
                       [contact.pk])  # fmt: skip
        cursor.execute("DELETE FROM crm_note WHERE contact_id = %s", [contact.pk])
        cursor.execute("DELETE FROM crm_contact WHERE id = %s", [contact.pk])


def raw_copy(tenant, contact, path: Path) -> int:
    from django.db import connection

    from tenants.context import tenant_context

    with tenant_context(tenant), connection.cursor() as cursor, open(path, "wb") as out:
        query = (
            "COPY (SELECT m.* FROM channels_app_message m JOIN channels_app_conversation c "
            f"ON c.id = m.conversation_id WHERE c.contact_id = {int(contact.pk)}) "
            "TO STDOUT WITH (FORMAT csv, HEADER)"
        )
        with cursor.cursor.copy(query) as copy:
            for chunk in copy:
                out.write(chunk)
    return path.stat().st_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--messages", type=int, default=50_000, help="messages per subject")
    parser.add_argument("--others", type=int, help="other contacts (default 2000, quick 200)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args(argv)
    others = args.others if args.others is not None else (200 if args.quick else 2000)

    admin_url = os.environ.get("DATABASE_ADMIN_URL") or DEFAULT_ADMIN_URL
    database_url = fresh_database(admin_url)
    media = tempfile.mkdtemp(prefix="bench-erasure-")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "salesos.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": "bench-erasure-not-secret",
            "FIELD_ENCRYPTION_KEYS": "bench:ZGV2ZWxvcG1lbnQtb25seS1rZXktMzItYnl0ZXMhISE=",
            "ALLOWED_HOSTS": "127.0.0.1",
            "CELERY_TASK_ALWAYS_EAGER": "1",
            "MEDIA_ROOT": media,
            "LOG_LEVEL": "WARNING",
            "STATIC_MANIFEST": "0",
        }
    )
    import django

    django.setup()
    from django.db import connections

    started = time.perf_counter()
    say(
        f"database {BENCH_DATABASE}: seeding 3 subjects x {args.messages} messages, {others} others"
    )
    tenant, (to_erase, to_export, baseline) = seed(messages=args.messages, others=others)
    say(f"seeded in {time.perf_counter() - started:.1f} s")

    with PeakMemory() as raw_erase:
        raw_delete(tenant, baseline)
    with PeakMemory() as erase:
        erased = carry_out(tenant, kind="erasure", phone=to_erase.phone)
    with PeakMemory() as raw_export:
        raw_bytes = raw_copy(tenant, to_export, Path(media) / "copy.csv")
    with PeakMemory() as export:
        exported = carry_out(tenant, kind="export", phone=to_export.phone)

    from tenants.context import tenant_context

    with tenant_context(tenant):
        archive_bytes = exported.export_file.size
    rows_erased = erased.result["total"]
    rows_exported = exported.result["total"]
    print()
    print(f"{'operation':<34}{'rows':>9}{'seconds':>10}{'peak MB':>10}{'x baseline':>12}")
    table = [
        ("erase (request, task, verify)", rows_erased, erase, raw_erase),
        ("  raw SQL DELETE (baseline)", None, raw_erase, None),
        ("export (zip: JSON + CSV + HTML)", rows_exported, export, raw_export),
        ("  COPY TO file (baseline)", None, raw_export, None),
    ]
    for label, rows, measured, base in table:
        ratio = f"{measured.seconds / base.seconds:>12.1f}" if base else f"{'':>12}"
        shown = f"{rows:>9}" if rows is not None else f"{'':>9}"
        print(f"{label:<34}{shown}{measured.seconds:>10.2f}{measured.peak_mb:>10.1f}{ratio}")
    print()
    print(f"erasure status {erased.status}, verification clean: {erased.verification['clean']}")
    print(f"archive {archive_bytes / 2**20:.1f} MB (COPY of the messages alone: "
          f"{raw_bytes / 2**20:.1f} MB)")  # fmt: skip
    ok = (
        erased.status == "done"
        and erased.verification.get("clean")
        and exported.status == "done"
        and rows_exported >= args.messages
    )
    connections.close_all()
    if not args.keep:
        drop_database(admin_url)
    print(
        f"bench erasure: erase_s={erase.seconds:.2f} export_s={export.seconds:.2f} "
        f"erase_peak_mb={erase.peak_mb:.1f} export_peak_mb={export.peak_mb:.1f} "
        f"raw_delete_s={raw_erase.seconds:.2f} raw_copy_s={raw_export.seconds:.2f}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
