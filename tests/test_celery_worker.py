"""A real Celery worker, a real Redis broker, the same PostgreSQL test database.

`invite_member` commits and enqueues `send_invitation_email`; a `celery -A salesos worker`
subprocess picks it up, activates the tenant (the task reads the invitation through the
tenant-scoped manager and row-level security, so it would fail otherwise) and writes the
e-mail with the file backend. The worker gets its own Redis database and queue so it never
takes another run's tasks.
"""

from __future__ import annotations

import email
import re

import pytest
from django.conf import settings
from django.core import signing

from tenants import services
from tenants.context import tenant_context
from tenants.models import Membership, Role
from tenants.tasks import send_invitation_email
from tests.celery_worker import Worker, running_worker
from tests.factories import TenantFactory, member

pytestmark = [
    pytest.mark.postgres_only,  # the worker must share the test database: not in-memory SQLite
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]

LINK = re.compile(r"https?://\S+/invitations/(?P<token>[^/\s]+)/")


def _body(message: email.message.Message) -> str:
    return message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")


def _invitation_mails(worker: Worker, address: str) -> list[str]:
    return [_body(m) for m in worker.mails() if address in (m["To"] or "")]


@pytest.fixture
def worker(tmp_path):
    with running_worker(tmp_path) as running:
        yield running


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


def test_the_broker_waits_longer_than_the_longest_task_before_handing_it_to_another_worker():
    """acks_late on Redis: a task still running when the visibility timeout passes is given to
    a second worker. Exports of a whole business and retention purges run for many minutes."""
    from salesos.celery import app

    timeout = app.conf.broker_transport_options["visibility_timeout"]
    assert timeout >= 6 * 3600
    assert app.conf.task_acks_late
