#!/usr/bin/env python3
"""Contact list benchmark: the list page and search at 1,000,000 contacts in one business.

What it does, in one run:

1. creates its own PostgreSQL database (`salesos_bench_contacts`, owned by the application role
   `salesos_app`: no superuser, row-level security on) and migrates it;
2. fills one business with N contacts in a single `INSERT … SELECT generate_series` (names
   from first x last name lists, unique E.164 phones, e-mails, spread-out creation and
   activity times, a tag on every tenth contact), a second business with a few thousand
   (so the tenant filter has something to skip), then VACUUM ANALYZEs (the search keys are
   generated columns, indexed like the sort fields);
3. requests the contact list through Django's test client with production settings (the full
   middleware stack, a logged-in owner, row-level security on the connection) and measures,
   per case, the wall time of each request: page 1 and a deep page (keyset cursor at 90 % of
   the list) for two sorts, and searches by name, phone digits and e-mail;
4. measures in the same run what the numbers compare with: the bare `/healthz` answer through
   the same client (the framework's floor) and, for the deep page, the same rows fetched with
   OFFSET (what keyset pagination avoids), at the query level next to the keyset query.

    .venv/bin/python bench/contacts.py --quick     # 200,000 contacts, about a minute
    .venv/bin/python bench/contacts.py             # 1,000,000 contacts

Target (issue 4): p95 page time under 100 ms for page 1, a deep page and a search.

Needs PostgreSQL (DATABASE_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres,
or the role's own CREATEDB right).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402 - one copy, named per bench
    DEFAULT_ADMIN_URL,
    drop_database,
    fresh_database,
)

BENCH_DATABASE = "salesos_bench_contacts"

FIRST = [
    "Ana",
    "Bo",
    "Chen",
    "Dara",
    "Eli",
    "Farah",
    "Gus",
    "Hana",
    "Ivo",
    "Jana",
    "Kofi",
    "Lena",
    "Marco",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Xia",
    "Yara",
    "Zane",
    "Alba",
    "Bruno",
    "Clara",
    "Dmitri",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Iris",
    "Jonas",
    "Kira",
    "Luca",
    "Maya",
    "Nils",
    "Olga",
    "Pablo",
    "Rina",
    "Sven",
    "Tomas",
    "Ugo",
    "Vito",
    "Wanda",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Lima",
    "Shah",
    "Rossi",
    "Muller",
    "Okafor",
    "Martin",
    "Silva",
    "Costa",
    "Novak",
    "Kowalski",
    "Nielsen",
    "Jensen",
    "Garcia",
    "Lopez",
    "Moreau",
    "Dubois",
    "Bauer",
    "Weber",
    "Fischer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schulz",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Braun",
    "Zimmer",
    "Kruger",
    "Hartmann",
    "Lange",
    "Werner",
    "Krause",
    "Meier",
    "Lehmann",
    "Huber",
    "Kaiser",
    "Fuchs",
    "Peters",
    "Scholz",
    "Moller",
    "Weiss",
    "Jung",
    "Hahn",
    "Vogel",
    "Friedrich",
    "Keller",
    "Gunther",
    "Frank",
    "Berger",
    "Winkler",
    "Roth",
    "Beck",
    "Lorenz",
    "Baumann",
    "Franke",
    "Albrecht",
    "Schuster",
    "Simon",
    "Ludwig",
    "Bohm",
    "Winter",
    "Kraus",
    "Schmitt",
    "Krämer",
    "Vogt",
    "Stein",
    "Jager",
    "Otto",
    "Sommer",
    "Gross",
    "Seidel",
    "Heinrich",
    "Brandt",
    "Haas",
    "Schreiber",
    "Graf",
    "Schulte",
    "Dietrich",
    "Ziegler",
    "Kuhn",
    "Pohl",
    "Engel",
    "Horn",
    "Busch",
    "Bergmann",
    "Thomas",
    "Voigt",
    "Sauer",
    "Arnold",
    "Wolff",
    "Pfeiffer",
]


def say(message: str) -> None:
    print(f"[bench contacts] {message}", flush=True)


def app_environment(database_url: str) -> dict[str, str]:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return {
        "DJANGO_SETTINGS_MODULE": "salesos.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": f"bench:{key}",
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "60",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "CACHE_URL": "locmemcache://bench",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "USE_X_FORWARDED_PROTO": "0",
        "SECURE_HSTS_SECONDS": "0",
        "STATIC_MANIFEST": "0",
        "LOG_LEVEL": "WARNING",
        "ENV_FILE": os.devnull,
    }


# --- data ---------------------------------------------------------------------------------------


def _insert_contacts(cursor, *, tenant_id: int, n: int, phone_prefix: str) -> None:
    """N contacts of one business in one statement (RLS checks every row's tenant)."""
    cursor.execute("SELECT set_config('app.tenant_id', %s, false)", [str(tenant_id)])
    cursor.execute(
        """
        INSERT INTO crm_contact (
            tenant_id, name, phone, email, language, source, lifecycle_stage, attributes,
            created_at, updated_at, last_activity_at
        )
        SELECT
            %(tenant)s,
            (%(first)s::text[])[1 + i %% %(nf)s]
                || ' ' || (%(last)s::text[])[1 + (i / %(nf)s) %% %(nl)s],
            %(prefix)s || lpad(i::text, 8, '0'),
            lower((%(first)s::text[])[1 + i %% %(nf)s]) || '.' || i || '@example.com',
            '',
            'import',
            (ARRAY['lead','customer','qualified','subscriber'])[1 + i %% 4],
            CASE WHEN i %% 5 = 0 THEN '{"plan": "gold"}'::jsonb ELSE '{}'::jsonb END,
            now() - make_interval(secs => i * 7),
            now() - make_interval(secs => (i::bigint * 7919) %% 31536000),
            now() - make_interval(secs => (i::bigint * 104729) %% 31536000)
        FROM generate_series(1, %(n)s) AS i
        """,
        {
            "tenant": tenant_id,
            "first": FIRST,
            "last": LAST,
            "nf": len(FIRST),
            "nl": len(LAST),
            "prefix": phone_prefix,
            "n": n,
        },
    )


def seed(n: int):
    from django.core.management import call_command
    from django.db import connection

    from crm.models import Tag
    from tenants.context import tenant_context
    from tenants.models import Membership, Role, Tenant, User

    call_command("migrate", interactive=False, verbosity=0)
    tenant = Tenant.objects.create(name="Bench Clinic", slug="bench-clinic")
    neighbour = Tenant.objects.create(name="Neighbour", slug="neighbour")
    user = User.objects.create_user(email="bench@example.com", password="bench-password-123")
    Membership.objects.create(tenant=tenant, user=user, role=Role.OWNER)

    started = time.perf_counter()
    with connection.cursor() as cursor:
        _insert_contacts(cursor, tenant_id=neighbour.pk, n=5000, phone_prefix="+4420")
        _insert_contacts(cursor, tenant_id=tenant.pk, n=n, phone_prefix="+1415")
    inserted = time.perf_counter() - started
    with tenant_context(tenant):
        tags = [Tag.objects.create(name=name) for name in ("vip", "insurance", "late payer")]
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO crm_contacttag (tenant_id, contact_id, tag_id)
                SELECT tenant_id, id, %s FROM crm_contact WHERE id %% 10 = 3
                UNION ALL
                SELECT tenant_id, id, %s FROM crm_contact WHERE id %% 25 = 0
                """,
                [tags[0].pk, tags[1].pk],
            )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # What autovacuum has done long before anyone lists a million contacts (it vacuums
        # after inserts too): statistics, and the visibility map index-only scans rely on.
        cursor.execute("VACUUM ANALYZE")
    indexed = time.perf_counter() - started
    return tenant, user, tags[0].pk, inserted, indexed


# --- measuring -----------------------------------------------------------------------------------


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed_get(client, path: str, params: dict | None = None) -> tuple[float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = f"{path}?{urlencode(params, doseq=True)}" if params else path
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    rows = response.content.count(b'<tr>\n  <td><a href="/app/')
    return elapsed, len(queries), rows


def deep_cursor(tenant, sort: str, fraction: float) -> tuple[str, int]:
    """The keyset cursor of the row at `fraction` of the list in this sort, and its offset."""
    from crm.selectors.contacts import ContactFilter, contacts_matching, encode_cursor, ordered
    from tenants.context import tenant_context

    with tenant_context(tenant):
        queryset = ordered(contacts_matching(ContactFilter()), sort)
        total = queryset.count()
        offset = int(total * fraction)
        row = queryset[offset]
        return encode_cursor(row, sort), offset


def query_ms(tenant, fn, repeat: int) -> float:
    from tenants.context import tenant_context

    samples = []
    with tenant_context(tenant):
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - started) * 1000)
    return p95(samples)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 contacts, about a minute")
    parser.add_argument("-n", type=int, help="contacts (default 1,000,000; quick 200,000)")
    parser.add_argument("--repeat", type=int, help="requests per case (default 60; quick 30)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--database",
        default=BENCH_DATABASE,
        help=f"name of the (dropped and re-created) bench database; default {BENCH_DATABASE}",
    )
    args = parser.parse_args(argv)
    n = args.n or (200_000 if args.quick else 1_000_000)
    repeat = args.repeat or (30 if args.quick else 60)

    (ROOT / "var").mkdir(exist_ok=True)
    lock = open(ROOT / "var" / "bench-contacts.lock", "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another contacts benchmark is running; waiting for it to finish")
        fcntl.flock(lock, fcntl.LOCK_EX)

    admin_url = os.environ.get("DATABASE_ADMIN_URL") or DEFAULT_ADMIN_URL
    database_url = fresh_database(admin_url, args.database)
    os.environ.update(app_environment(database_url))

    import warnings

    import django

    # The bench serves no static files; whitenoise's notice about their folder is noise here.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    django.setup()

    from django.test import Client
    from django.urls import reverse

    from crm.selectors.contacts import (
        PAGE_SIZE,
        ContactFilter,
        after_cursor,
        contact_page,
        contacts_matching,
        decode_cursor,
        ordered,
    )

    try:
        started = time.perf_counter()
        tenant, user, vip_id, inserted, indexed = seed(n)
        say(
            f"{n:,} contacts inserted in {inserted:.1f} s, VACUUM ANALYZE in "
            f"{indexed:.1f} s (total setup {time.perf_counter() - started:.1f} s)"
        )
        client = Client()
        client.force_login(user)
        path = reverse("crm:contacts", kwargs={"tenant_slug": tenant.slug})

        cases: list[tuple[str, str, list[dict]]] = []
        cases.append(("page1", "page 1, by name", [{}]))
        cursor, offset_name = deep_cursor(tenant, "name", 0.9)
        cases.append(("deep", f"deep page (row {offset_name:,}), by name", [{"after": cursor}]))
        cases.append(("page1_recent", "page 1, recent activity", [{"sort": "-activity"}]))
        cursor_recent, offset_recent = deep_cursor(tenant, "-activity", 0.9)
        cases.append(
            (
                "deep_recent",
                f"deep page (row {offset_recent:,}), recent activity",
                [{"sort": "-activity", "after": cursor_recent}],
            )
        )
        searches = [
            {"q": "lena kruger"},
            {"q": "+1 415 000 123"},
            {"q": "omar.4214"},  # an e-mail prefix: omar.4214@example.com
            {"q": "hartmann"},
            {"q": "nobody-matches-this"},
        ]
        cases.append(("search", "search (name, phone, e-mail, none)", searches))
        cases.append(
            (
                "filter",
                "filter: tag vip + stage customer",
                [{"tag": str(vip_id), "stage": "customer"}],
            )
        )

        # Warm up: imports, templates, the connection, the buffer cache.
        for _ in range(5):
            timed_get(client, "/healthz")
            for _key, _label, variants in cases:
                for params in variants:
                    timed_get(client, path, params)

        results = {}
        bare = [timed_get(client, "/healthz")[0] for _ in range(repeat)]
        for key, label, variants in cases:
            samples, queries, rows = [], 0, 0
            for i in range(repeat):
                elapsed, count, shown = timed_get(client, path, variants[i % len(variants)])
                samples.append(elapsed)
                # The most any variant needed (a search that finds nobody shows no rows).
                queries, rows = max(queries, count), max(rows, shown)
            results[key] = (label, statistics.median(samples), p95(samples), queries, rows)
            say(f"{label}: p95 {results[key][2]:.1f} ms")

        # Query level: the deep page's rows by keyset (as the view) vs by OFFSET.
        position = decode_cursor(cursor, "name")

        def by_keyset():
            base = ordered(contacts_matching(ContactFilter()), "name")
            return list(after_cursor(base, "name", *position)[:PAGE_SIZE])

        def by_offset():
            base = ordered(contacts_matching(ContactFilter()), "name")
            return list(base[offset_name : offset_name + PAGE_SIZE])

        def page_one():
            return contact_page(ContactFilter()).contacts

        def search_rows():
            for params in searches:
                contact_page(ContactFilter.from_params(params))

        page1_query_ms = query_ms(tenant, page_one, repeat)
        search_query_ms = query_ms(tenant, search_rows, max(5, repeat // 5)) / len(searches)
        keyset_ms = query_ms(tenant, by_keyset, repeat)
        offset_ms = query_ms(tenant, by_offset, max(5, repeat // 3))
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(admin_url, args.database)

    print()
    print(f"Contact list at {n:,} contacts in one business ({repeat} requests per case)")
    print(f"{'case':<44} {'median ms':>10} {'p95 ms':>8} {'queries':>8} {'rows':>5}")
    print(f"{'bare /healthz (floor)':<44} {statistics.median(bare):>10.1f} {p95(bare):>8.1f}")
    for label, median, high, queries, rows in results.values():
        print(f"{label:<44} {median:>10.1f} {high:>8.1f} {queries:>8} {rows:>5}")
    print(f"{'page 1 rows + tags, queries only':<44} {'':>10} {page1_query_ms:>8.1f}")
    print(f"{'search rows + tags, queries only (mean)':<44} {'':>10} {search_query_ms:>8.1f}")
    print(f"{'deep page rows, keyset query only':<44} {'':>10} {keyset_ms:>8.1f}")
    print(f"{'deep page rows, OFFSET query (baseline)':<44} {'':>10} {offset_ms:>8.1f}")
    print()
    ok = all(results[k][2] < 100 for k in ("page1", "deep", "search"))
    print(f"target p95 < 100 ms for page 1, deep page and search: {'met' if ok else 'NOT met'}")
    print(
        f"bench contacts: p95_page1_ms={results['page1'][2]:.1f} "
        f"p95_deep_ms={results['deep'][2]:.1f} p95_search_ms={results['search'][2]:.1f} "
        f"p95_recent_deep_ms={results['deep_recent'][2]:.1f} "
        f"p95_filter_ms={results['filter'][2]:.1f} offset_deep_ms={offset_ms:.1f} "
        f"p95_bare_ms={p95(bare):.1f} keyset_query_ms={keyset_ms:.1f} contacts={n}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
