#!/usr/bin/env python3
"""`make test`: run the whole suite on the best database and broker this machine offers.

- DATABASE_URL / REDIS_URL from the environment win when set.
- Otherwise PostgreSQL is probed at DATABASE_ADMIN_URL's address (default
  postgres://postgres@127.0.0.1:5432/postgres). When it answers, the application role
  `salesos_app` (LOGIN, NOSUPERUSER, NOBYPASSRLS, CREATEDB) and its database `salesos` are
  ensured as that superuser, and the tests run as `salesos_app`, so row-level security applies
  to them exactly as in production. pytest-django creates the test database(s).
- When PostgreSQL does not answer, the suite runs on SQLite and says so; PostgreSQL-only tests
  are skipped and listed at the end.
- Redis is probed at REDIS_URL (default redis://127.0.0.1:6379/0); without it the tests that
  need a real broker and worker are skipped and listed at the end.
- REQUIRE_SERVICES=1 (CI) turns every one of those fallbacks into a failure.
- CELERY_TASK_ALWAYS_EAGER=1 unless set; TEST_WORKERS=N runs N pytest-xdist processes.

Arguments are passed to pytest: `python scripts/run_tests.py tests/tenants -x`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
APP_ROLE = "salesos_app"
APP_PASSWORD = "salesos"
APP_DATABASE = "salesos"


def say(message: str) -> None:
    print(f"[run_tests] {message}", flush=True)


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in {"postgres", "postgresql", "pgsql", "psql", "postgis"}


def app_database_url(admin_url: str) -> str:
    host, port = address(admin_url, 5432)
    return f"postgres://{APP_ROLE}:{quote(APP_PASSWORD, safe='')}@{host}:{port}/{APP_DATABASE}"


def admin_conninfo(admin_url: str) -> dict:
    parts = urlsplit(admin_url)
    info = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "dbname": unquote(parts.path.lstrip("/") or "postgres"),
        "connect_timeout": 5,
    }
    if parts.password:
        info["password"] = unquote(parts.password)
    return info


def ensure_app_role_and_database(admin_url: str) -> None:
    """Create (or bring back into shape) the application role and its database. Idempotent."""
    import psycopg
    from psycopg import errors, sql

    with psycopg.connect(**admin_conninfo(admin_url), autocommit=True) as conn:
        role, password = sql.Identifier(APP_ROLE), sql.Literal(APP_PASSWORD)
        attributes = sql.SQL("LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB PASSWORD {}").format(password)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE ROLE {} {}").format(role, attributes))
                say(f"created role {APP_ROLE}")
            except (errors.DuplicateObject, errors.UniqueViolation):
                pass  # another run created it a moment ago
        conn.execute(sql.SQL("ALTER ROLE {} {}").format(role, attributes))
        if conn.info.server_version >= 150000:
            # The retention purge checks foreign keys per batch itself when it may skip
            # PostgreSQL's per-row checks, and compresses its WAL (privacy/retention.py,
            # `purge_rights`).
            conn.execute(
                sql.SQL(
                    "GRANT SET ON PARAMETER session_replication_role, wal_compression TO {}"
                ).format(role)
            )
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [APP_DATABASE]
        ).fetchone()
        if not exists:
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(APP_DATABASE), role
                    )
                )
                say(f"created database {APP_DATABASE} owned by {APP_ROLE}")
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                pass
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(APP_DATABASE), role)
        )


def choose_database(env: dict[str, str]) -> tuple[str, bool]:
    """The DATABASE_URL to test with, and whether it is PostgreSQL."""
    explicit = env.get("DATABASE_URL")
    if explicit:
        postgres = is_postgres_url(explicit)
        kind = "PostgreSQL" if postgres else "a non-PostgreSQL database"
        say(f"DATABASE_URL is set: testing on {kind} ({_redacted(explicit)})")
        return explicit, postgres
    admin_url = env.get("DATABASE_ADMIN_URL") or DEFAULT_ADMIN_URL
    host, port = address(admin_url, 5432)
    if reachable(host, port):
        try:
            ensure_app_role_and_database(admin_url)
        except Exception as exc:  # report any failure and fall back
            say(f"PostgreSQL answers at {host}:{port} but the role/database setup failed: {exc}")
        else:
            url = app_database_url(admin_url)
            say(
                f"PostgreSQL at {host}:{port}: testing as {APP_ROLE} "
                "(no superuser, no BYPASSRLS; pytest-django creates the test database)"
            )
            return url, True
    else:
        say(f"PostgreSQL does not answer at {host}:{port}.")
    (ROOT / "var").mkdir(exist_ok=True)
    url = f"sqlite:///{ROOT / 'var' / 'test.sqlite3'}"
    say("Falling back to SQLite: PostgreSQL-only tests (row-level security) will be skipped.")
    return url, False


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def redis_status(env: dict[str, str]) -> tuple[str, bool]:
    url = env.get("REDIS_URL") or DEFAULT_REDIS_URL
    host, port = address(url, 6379)
    up = reachable(host, port)
    if up:
        say(f"Redis at {host}:{port}: the real-worker tests will run.")
    else:
        say(f"Redis does not answer at {host}:{port}: the real-worker tests will be skipped.")
    return url, up


def pytest_command(env: dict[str, str], args: list[str]) -> list[str]:
    command = [sys.executable, "-m", "pytest"]
    workers = env.get("TEST_WORKERS", "").strip()
    if workers and workers != "0" and not any(a == "-n" or a.startswith("-n") for a in args):
        command += ["-n", workers]
    return command + args


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    require = truthy(env.get("REQUIRE_SERVICES"))
    database_url, postgres = choose_database(env)
    redis_url, redis_up = redis_status(env)
    env["DATABASE_URL"] = database_url
    env["REDIS_URL"] = redis_url
    env.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "salesos.settings")
    if require:
        problems = []
        if not postgres:
            problems.append("the database is not PostgreSQL")
        if not redis_up:
            problems.append("Redis is unreachable")
        if problems:
            say("REQUIRE_SERVICES=1 but " + " and ".join(problems) + ": failing.")
            return 1
    command = pytest_command(env, args)
    say("running: " + " ".join(command[1:]))
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
