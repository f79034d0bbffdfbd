#!/usr/bin/env python3
"""Bot benchmark: knowledge-base retrieval in a large knowledge base, and the reply pipeline's
own cost.

What it does, in one run:

1. creates its own PostgreSQL database (`salesos_bench_retrieval`, owned by the application
   role `salesos_app`, no superuser, row-level security on) and migrates it; a Redis database
   of its own is the Celery broker (the bot's reply is really enqueued for delivery);
2. builds 50 businesses: one with 50,000 knowledge-base chunks (1,000 documents of 50 chunks,
   about 120 words each, drawn from a Zipf-distributed vocabulary of 20,000 words plus
   common English) and 49 others alongside (2,000 chunks each; 400 with --quick), and
   computes the search vectors as the application does;
3. retrieval: times `retrieve(question, limit=5)` — the ranked full-text query the bot runs
   — for questions of 4 to 9 words drawn from the same vocabulary, in the large business;
   baseline in the same run: one primary-key lookup of a chunk (the cost of a round trip
   through the same tenant-scoped, RLS-checked connection);
4. pipeline: a local fake OpenAI-compatible server (instant answers) and a sandbox channel;
   for each new customer message times `reply_to_message` (checks, retrieval, request,
   provider call, metering, send through `send_message`, the run record) and subtracts the
   time spent inside the provider call itself, measured on the same call: what is left is
   the pipeline's own overhead.

    .venv/bin/python bench/retrieval.py --quick     # about a minute
    .venv/bin/python bench/retrieval.py             # the full run

Targets (issue 5): p95 top-5 retrieval < 50 ms; pipeline overhead (p95) < 100 ms.

Needs PostgreSQL (DATABASE_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres,
or the application role's own CREATEDB right) and Redis (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/12 — the benchmark flushes that database).
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import os
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402 - one copy, named per bench
    DEFAULT_ADMIN_URL,
    drop_database,
    flush_redis,
    fresh_database,
)

BENCH_DATABASE = "salesos_bench_retrieval"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
BIG_CHUNKS = 50_000
CHUNKS_PER_DOCUMENT = 50
OTHER_TENANTS = 49
VOCABULARY = 20_000
WORDS_PER_CHUNK = 120
_COMMON_TEXT = (
    "the a and to of in for is on with you we our your are at be this can or it as from "
    "have will not by an more all if about any when do what how which time day price open "
    "book appointment service clinic shop order delivery return payment card week month"
)
COMMON = _COMMON_TEXT.split()


def say(message: str) -> None:
    print(f"[bench retrieval] {message}", flush=True)


# --- PostgreSQL and Redis ----------------------------------------------------------------------


def environment(database_url: str, redis_url: str) -> dict[str, str]:
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
        "RATE_LIMIT_REDIS_URL": "memory",
        "CACHE_URL": "locmemcache://bench",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        "OPENAI_MAX_RETRIES": "0",
        "ENV_FILE": os.devnull,
    }


# --- Data ------------------------------------------------------------------------------------


class Words:
    """A Zipf-distributed vocabulary: a few words are everywhere, most are rare."""

    def __init__(self, seed: int):
        self.random = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        made = set()
        while len(made) < VOCABULARY:
            length = self.random.randint(4, 10)
            made.add("".join(self.random.choice(letters) for _ in range(length)))
        self.words = COMMON + sorted(made)
        weights = [1.0 / (rank + 1) for rank in range(len(self.words))]
        total = 0.0
        self.cumulative = []
        for weight in weights:
            total += weight
            self.cumulative.append(total)

    def draw(self, count: int) -> list[str]:
        return self.random.choices(self.words, cum_weights=self.cumulative, k=count)

    def text(self, count: int) -> str:
        return " ".join(self.draw(count)) + "."

    def question(self) -> str:
        # Customers' questions mix common words and a topic word or two from the long tail.
        words = self.draw(self.random.randint(3, 7))
        words += self.random.sample(self.words[200:5000], 1)
        return " ".join(words) + "?"


def build_knowledge_base(tenant, *, chunks: int, words: Words) -> int:
    from channels_app.bot import knowledge
    from channels_app.bot.models import KnowledgeChunk, KnowledgeDocument
    from tenants.context import tenant_context

    with tenant_context(tenant):
        documents = KnowledgeDocument.objects.bulk_create(
            [
                KnowledgeDocument(
                    tenant=tenant,
                    title=" ".join(words.draw(3)).capitalize(),
                    content="(bulk)",
                    language="english",
                )
                for _ in range(max(1, chunks // CHUNKS_PER_DOCUMENT))
            ]
        )
        batch = []
        for index in range(chunks):
            document = documents[index % len(documents)]
            batch.append(
                KnowledgeChunk(
                    tenant=tenant,
                    document=document,
                    position=index // len(documents),
                    text=words.text(WORDS_PER_CHUNK),
                )
            )
            if len(batch) == 5000:
                KnowledgeChunk.objects.bulk_create(batch)
                batch = []
        KnowledgeChunk.objects.bulk_create(batch)
        return knowledge.rebuild_search_vectors()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def row(label: str, values: list[float]) -> str:
    return (
        f"{label:<40}{len(values):>7}{statistics.median(values):>9.2f}{pct(values, 95):>9.2f}"
        f"{pct(values, 99):>9.2f}{max(values):>9.2f}"
    )


# --- Measurements ----------------------------------------------------------------------------


def measure_retrieval(tenant, questions: list[str]) -> tuple[list[float], list[float], float]:
    from channels_app.bot.models import KnowledgeChunk
    from channels_app.bot.retrieval import retrieve
    from tenants.context import tenant_context

    with tenant_context(tenant):
        ids = list(KnowledgeChunk.objects.values_list("id", flat=True)[:1000])
        for question in questions[:20]:  # warm-up: plans, caches
            retrieve(question=question, limit=5)
        timings, baseline, found = [], [], 0
        for index, question in enumerate(questions):
            started = time.perf_counter()
            result = retrieve(question=question, limit=5)
            timings.append((time.perf_counter() - started) * 1000)
            found += bool(result)
            started = time.perf_counter()
            KnowledgeChunk.objects.filter(pk=ids[index % len(ids)]).values_list("text").first()
            baseline.append((time.perf_counter() - started) * 1000)
    return timings, baseline, found / len(questions)


def measure_pipeline(tenant, questions: list[str], *, conversations: int):
    """(pipeline ms, provider ms, overhead ms) per answered message."""
    from django.db import connection
    from django.utils import timezone

    from channels_app.bot import pipeline, providers
    from channels_app.bot.models import BotProfile, BotRun, TokenBalance
    from channels_app.models import Channel, Conversation, Message
    from crm.models import Contact
    from tenants.context import tenant_context
    from tests.fakes.openai_stub import OpenAIStub

    spent: list[float] = []
    original = providers.answer

    def timed_answer(request, *, config):
        # Instrumentation only: the real call runs; its duration is the model's share.
        started = time.perf_counter()
        try:
            return original(request, config=config)
        finally:
            spent.append((time.perf_counter() - started) * 1000)

    results, statements = [], []
    with OpenAIStub() as stub, tenant_context(tenant):
        providers.answer = timed_answer
        try:
            channel = Channel.objects.create(kind=Channel.Kind.SANDBOX, name="Bench")
            BotProfile.objects.create(
                channel=None, enabled=True, api_key="sk-bench", api_base_url=stub.base_url
            )
            TokenBalance.objects.update_or_create(defaults={"tokens_remaining": 10**12})
            threads = []
            for number in range(conversations):
                contact = Contact.objects.create(phone=f"+1555010{number:04d}", name="Bench")
                conversation = Conversation.objects.create(channel=channel, contact=contact)
                for turn in range(4):  # some history: questions and answers
                    for direction, kind in (("inbound", "customer"), ("outbound", "agent")):
                        Message.objects.create(
                            conversation=conversation, channel=channel, direction=direction,
                            sender_kind=kind, body=" ".join(questions[turn].split()[:8]),
                            status="received" if direction == "inbound" else "delivered",
                        )  # fmt: skip
                threads.append(conversation)
            for index, question in enumerate(questions):
                conversation = threads[index % len(threads)]
                now = timezone.now()
                message = Message.objects.create(
                    conversation=conversation, channel=channel, direction="inbound",
                    sender_kind="customer", body=question, status="received",
                    provider_message_id=f"bench-{index}", created_at=now,
                )  # fmt: skip
                Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=now)
                stub.answer("Thank you, here is what we know.")
                before = len(spent)
                queries = [0]

                def count(execute, sql, params, many, context, queries=queries):
                    queries[0] += 1
                    return execute(sql, params, many, context)

                started = time.perf_counter()
                with connection.execute_wrapper(count):
                    run = pipeline.reply_to_message(message_id=message.pk)
                total = (time.perf_counter() - started) * 1000
                statements.append(queries[0])
                provider = sum(spent[before:])
                if index >= 10 and run.outcome == BotRun.Outcome.ANSWERED:  # after warm-up
                    results.append((total, provider, total - provider))
        finally:
            providers.answer = original
        answered = BotRun.objects.filter(outcome=BotRun.Outcome.ANSWERED).count()
    return results, answered, statistics.median(statements)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--questions", type=int, help="retrieval queries (default 1000)")
    parser.add_argument("--messages", type=int, help="pipeline runs (default 400)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args(argv)
    questions_n = args.questions or (200 if args.quick else 1000)
    messages_n = args.messages or (80 if args.quick else 400)
    others = 400 if args.quick else 2000

    (ROOT / "var").mkdir(exist_ok=True)
    lock = open(ROOT / "var" / "bench-retrieval.lock", "w")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another retrieval benchmark is running; waiting for it to finish")
        fcntl.flock(lock, fcntl.LOCK_EX)

    admin_url = os.environ.get("DATABASE_ADMIN_URL") or DEFAULT_ADMIN_URL
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    say(f"database {BENCH_DATABASE}, broker {redis_url}")
    database_url = fresh_database(admin_url, BENCH_DATABASE)
    flush_redis(redis_url)
    os.environ.update(environment(database_url, redis_url))

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tenants.models import Tenant

    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        words = Words(args.seed)
        big = Tenant.objects.create(name="Big knowledge base", slug="bench-big")
        built = build_knowledge_base(big, chunks=BIG_CHUNKS, words=words)
        small = None
        for number in range(OTHER_TENANTS):
            tenant = Tenant.objects.create(name=f"Neighbour {number}", slug=f"bench-{number}")
            build_knowledge_base(tenant, chunks=others, words=words)
            small = small or tenant
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        say(
            f"migrated and built in {time.perf_counter() - started:.1f} s: {built} chunks in "
            f"the large business, {OTHER_TENANTS} x {others} alongside"
        )

        questions = [words.question() for _ in range(questions_n)]
        timings, baseline, hit_rate = measure_retrieval(big, questions)
        small_timings, _small_baseline, _ = measure_retrieval(small, questions[:200])
        results, answered, statements = measure_pipeline(
            big, [words.question() for _ in range(messages_n)], conversations=20
        )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(admin_url, BENCH_DATABASE)
        flush_redis(redis_url)

    p95 = pct(timings, 95)
    overhead = [o for _t, _p, o in results]
    overhead_p95 = pct(overhead, 95)
    print()
    print(f"{'measurement (ms)':<40}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    print(row(f"retrieve top-5, {BIG_CHUNKS} chunks", timings))
    print(row(f"retrieve top-5, {others} chunks", small_timings))
    print(row("baseline: one chunk by primary key", baseline))
    print(row("pipeline, whole run", [t for t, _p, _o in results]))
    print(row("  of which the provider call", [p for _t, p, _o in results]))
    print(row("  pipeline overhead (run - provider)", overhead))
    print()
    print(f"questions with at least one chunk found: {hit_rate:.0%}; answered runs: {answered}")
    print(
        f"SQL statements per pipeline run (median): {statements:.0f}; overhead p50 in "
        f"baseline round trips: {statistics.median(overhead) / statistics.median(baseline):.1f}"
    )
    met = p95 < 50 and overhead_p95 < 100
    print(f"target (retrieval p95 < 50 ms, overhead p95 < 100 ms): {'met' if met else 'NOT met'}")
    print(f"bench retrieval: p95_ms={p95:.1f} overhead_ms={overhead_p95:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
