"""A real Celery worker, a real Redis broker, the same PostgreSQL test database.

`invite_member` commits and enqueues `send_invitation_email`; a `celery -A salesos worker`
subprocess picks it up, activates the tenant (the task reads the invitation through the
tenant-scoped manager and row-level security, so it would fail otherwise) and writes the
e-mail with the file backend. The worker gets its own Redis database and queue so it never
takes another run's tasks.
"""

from __future__ import annotations

import email
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core import signing
from django.db import connection

from salesos.celery import app as celery_app
from tenants import services
from tenants.context import tenant_context
from tenants.models import Membership, Role
from tenants.tasks import send_invitation_email
from tests.factories import TenantFactory, member

pytestmark = [
    pytest.mark.postgres_only,  # the worker must share the test database: not in-memory SQLite
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parent.parent
TEST_REDIS_DB = int(os.environ.get("CELERY_TEST_REDIS_DB", "15"))
WAIT_SECONDS = 30
LINK = re.compile(r"https?://\S+/invitations/(?P<token>[^/\s]+)/")


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def _broker_url() -> str:
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit(parts._replace(path=f"/{TEST_REDIS_DB}"))


class Worker:
    def __init__(self, *, mail_dir: Path, log: Path, queue: str, broker: str):
        self.mail_dir, self.log, self.queue, self.broker = mail_dir, log, queue, broker
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


def _body(message: email.message.Message) -> str:
    return message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")


def _invitation_mails(worker: Worker, address: str) -> list[str]:
    return [_body(m) for m in worker.mails() if address in (m["To"] or "")]


@pytest.fixture
def worker(tmp_path):
    import redis

    queue = f"salesos-test-{uuid.uuid4().hex[:12]}"
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    broker = _broker_url()
    running = Worker(mail_dir=mail_dir, log=tmp_path / "worker.log", queue=queue, broker=broker)
    running.start()

    # This process publishes to the same broker and queue, for real (not eagerly).
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


def test_the_worker_emails_the_invitation_that_invite_member_committed(worker):
    tenant = TenantFactory(name="Worker Dental", slug="worker-dental")
    admin = member(tenant, role=Role.OWNER, email="owner@worker.example", full_name="Olga Owner")
    by = Membership.objects.get(tenant=tenant, user=admin)

    invitation = services.invite_member(
        tenant=tenant, email="newcomer@worker.example", role=Role.AGENT, by=by
    )

    bodies = worker.wait_for(
        lambda: _invitation_mails(worker, "newcomer@worker.example"), "invitation e-mail"
    )
    link = LINK.search(bodies[0])
    assert link, bodies[0]
    assert link.group(0).startswith(settings.PUBLIC_BASE_URL)
    payload = signing.loads(link.group("token"), salt=services.INVITATION_SALT)
    assert payload == {"i": invitation.pk, "t": tenant.pk}
    assert "Worker Dental" in bodies[0]
    # The task read the invitation through the tenant-scoped manager: it ran for the tenant.
    assert "send_invitation_email" in worker.output()
    assert "succeeded" in worker.output()
    assert "NoActiveTenant" not in worker.output()


def test_running_the_task_twice_is_safe_and_a_withdrawn_invitation_is_not_sent(worker):
    tenant = TenantFactory(name="Twice Motors", slug="twice-motors")
    admin = member(tenant, role=Role.OWNER, email="owner@twice.example", full_name="Tom Owner")
    by = Membership.objects.get(tenant=tenant, user=admin)
    invitation = services.invite_member(
        tenant=tenant, email="again@twice.example", role=Role.AGENT, by=by
    )
    worker.wait_for(lambda: _invitation_mails(worker, "again@twice.example"), "first e-mail")

    send_invitation_email.delay(tenant.pk, invitation.pk)  # a redelivery
    bodies = worker.wait_for(
        lambda: m if len(m := _invitation_mails(worker, "again@twice.example")) >= 2 else None,
        "second e-mail",
    )
    tokens = [LINK.search(body).group("token") for body in bodies]
    assert all(
        signing.loads(t, salt=services.INVITATION_SALT)["i"] == invitation.pk for t in tokens
    )
    with tenant_context(tenant):
        invitation.refresh_from_db()
    assert invitation.state == "pending"

    # Withdrawn: the task is a no-op. The worker runs one task at a time, so once the mail
    # queued after it has arrived, the withdrawn one has been handled.
    with tenant_context(tenant):
        services.revoke_invitation(invitation=invitation)
    send_invitation_email.delay(tenant.pk, invitation.pk)
    later = services.invite_member(
        tenant=tenant, email="later@twice.example", role=Role.AGENT, by=by
    )
    worker.wait_for(lambda: _invitation_mails(worker, "later@twice.example"), "later e-mail")
    assert len(_invitation_mails(worker, "again@twice.example")) == 2
    assert later.pk != invitation.pk
    assert "Traceback" not in worker.output()
