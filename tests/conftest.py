"""Shared fixtures and the suite's service policy.

- Tests marked `postgres_only` (row-level security, full-text search) are skipped, with a
  reason, when the suite runs on SQLite.
- Tests marked `needs_redis` (a real broker and a real Celery worker) are skipped, with a
  reason, when Redis does not answer at REDIS_URL.
- Both lists are printed at the end of the run. With REQUIRE_SERVICES=1 (CI) the run fails when
  the database is not PostgreSQL, Redis is unreachable, or any such test was skipped.
"""

from __future__ import annotations

import functools
import os

import pytest
from django.conf import settings
from django.db import connection

from tenants import context
from tests.factories import TenantFactory, member

# The local provider stub (Twilio REST + Meta Graph) as the `provider_stub` fixture, and the
# sending tests' fixtures (none of them autouse).
pytest_plugins = ["tests.fakes.fixtures", "tests.channels.sending_fixtures"]

SERVICE_MARKERS = {
    "postgres_only": "PostgreSQL-only tests",
    "needs_redis": "Redis / real Celery worker tests",
}


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes", "on"}


@functools.cache
def redis_problem() -> str | None:
    """None when Redis answers at settings.REDIS_URL, otherwise why not."""
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2
        )
        client.ping()
        client.close()
    except Exception as exc:
        return f"Redis does not answer at {settings.REDIS_URL} ({type(exc).__name__})"
    return None


def pytest_collection_modifyitems(config, items):
    if not settings.IS_POSTGRES:
        skip = pytest.mark.skip(reason="PostgreSQL-only: the suite is running on SQLite")
        for item in items:
            if "postgres_only" in item.keywords:
                item.add_marker(skip)
    if any("needs_redis" in item.keywords for item in items):
        problem = redis_problem()
        if problem:
            skip = pytest.mark.skip(reason=f"needs Redis: {problem}")
            for item in items:
                if "needs_redis" in item.keywords:
                    item.add_marker(skip)


# --- Which service tests were skipped, reported at the end (works under pytest-xdist) -------

_skipped_service_tests: dict[str, list[tuple[str, str]]] = {name: [] for name in SERVICE_MARKERS}


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_runtest_logreport(report):
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    for marker in SERVICE_MARKERS:
        if marker in report.keywords:
            _skipped_service_tests[marker].append((report.nodeid, _skip_reason(report)))


def _service_failures() -> list[str]:
    problems = []
    if not settings.IS_POSTGRES:
        problems.append(f"the database is {connection.vendor}, not PostgreSQL")
    if redis_problem():
        problems.append(redis_problem())
    for marker, title in SERVICE_MARKERS.items():
        if _skipped_service_tests[marker]:
            problems.append(f"{len(_skipped_service_tests[marker])} {title} were skipped")
    return problems


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller decides
    if services_required() and _service_failures() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    write = terminalreporter.write_line
    for marker, title in SERVICE_MARKERS.items():
        skipped = _skipped_service_tests[marker]
        if not skipped:
            continue
        terminalreporter.section(f"skipped {title} ({marker}): {len(skipped)}", sep="-")
        for nodeid, reason in sorted(set(skipped)):
            write(f"SKIPPED {nodeid}: {reason}")
    if services_required():
        problems = _service_failures()
        if problems:
            terminalreporter.section("REQUIRE_SERVICES=1: failing the run", sep="!", red=True)
            for problem in problems:
                write(f"- {problem}", red=True)
        else:
            write("REQUIRE_SERVICES=1: PostgreSQL and Redis were used; no service test skipped.")


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_tenant_leaks_between_tests(django_db_blocker):
    # Also for tests without database access: a connection a transactional test left open
    # is reset too (clear() only writes to connections that are already open).
    with django_db_blocker.unblock():
        context.clear()
    yield
    with django_db_blocker.unblock():
        context.clear()


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Alpha Dental", slug="alpha-dental")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Bravo Motors", slug="bravo-motors")


@pytest.fixture
def owner_a(tenant_a):
    return member(tenant_a, email="owner@alpha.example")


@pytest.fixture
def owner_b(tenant_b):
    return member(tenant_b, email="owner@bravo.example")


@pytest.fixture
def pg_connection(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only")
    return connection
