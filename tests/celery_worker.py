"""A real `celery worker` subprocess for tests: same PostgreSQL test database, a Redis broker
database and queue of its own (so it never takes another run's tasks), e-mail to files.

`running_worker(tmp_path)` starts one and points this process's Celery app at the same broker
and queue (publishing for real, not eagerly) until the block ends.
"""

from __future__ import annotations

import contextlib
import email
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from salesos.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent
TEST_REDIS_DB = int(os.environ.get("CELERY_TEST_REDIS_DB", "15"))
WAIT_SECONDS = 30


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def broker_url() -> str:
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit(parts._replace(path=f"/{TEST_REDIS_DB}"))


class Worker:
    def __init__(
        self, *, mail_dir: Path, log: Path, queue: str, broker: str, env: dict | None = None
    ):
        self.mail_dir, self.log, self.queue, self.broker = mail_dir, log, queue, broker
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "salesos.settings",
            "SALESOS_TESTING": "1",  # the same apps (and test-only models) as this process
            "DEBUG": "0",
            "SECRET_KEY": settings.SECRET_KEY,  # invitation links are signed with it
            "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": self.broker,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "EMAIL_URL": f"filemail:///{self.mail_dir}",  # environ drops one slash
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        command = [
            sys.executable, "-m", "celery", "-A", "salesos", "worker",
            "--pool=solo", "--concurrency=1", "--queues", self.queue,
            "--hostname", f"{self.queue}@%h", "--loglevel=INFO",
            "--without-heartbeat", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def mails(self) -> list[email.message.Message]:
        messages = []
        for path in sorted(self.mail_dir.glob("*.log")):
            for chunk in path.read_text().split("-" * 79):
                if chunk.strip():
                    messages.append(email.message_from_string(chunk.strip()))
        return messages

    def wait_for(self, condition, what: str):
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            if self.process is not None and self.process.poll() is not None:
                pytest.fail(f"the worker exited while waiting for {what}:\n{self.output()}")
            time.sleep(0.1)
        pytest.fail(f"no {what} after {WAIT_SECONDS}s; worker output:\n{self.output()}")


@contextlib.contextmanager
def running_worker(tmp_path: Path, *, env: dict[str, str] | None = None):
    """A started worker (with `env` added to its environment), stopped and cleaned up after."""
    import redis

    queue = f"salesos-test-{uuid.uuid4().hex[:12]}"
    broker = broker_url()
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    running = Worker(
        mail_dir=mail_dir, log=tmp_path / "worker.log", queue=queue, broker=broker, env=env
    )
    running.start()

    # Import every app's tasks module, as a worker does at start: otherwise a task module this
    # process first imports after an earlier worker test finalized the app can be missing from
    # the registry its `.delay()` looks in.
    celery_app.loader.import_default_modules()
    saved = {
        key: celery_app.conf[key]
        for key in ("broker_url", "task_default_queue", "task_always_eager")
    }
    celery_app.close()
    celery_app.__dict__.pop("amqp", None)
    celery_app.conf.update(broker_url=broker, task_default_queue=queue, task_always_eager=False)
    try:
        yield running
    finally:
        running.stop()
        celery_app.close()
        celery_app.__dict__.pop("amqp", None)
        celery_app.conf.update(saved)
        client = redis.Redis.from_url(broker)
        client.delete(queue, f"{queue}\x06\x163", f"{queue}\x06\x166", f"{queue}\x06\x169")
        client.close()
