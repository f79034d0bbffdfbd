"""manage.py seed_demo: a demo business someone can log in to straight away."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from tenants.models import Membership, Role, Tenant, User

pytestmark = pytest.mark.django_db


def seed(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_creates_the_demo_business_owner_and_agent():
    output = seed()

    tenant = Tenant.objects.get(slug="demo")
    roles = dict(Membership.objects.filter(tenant=tenant).values_list("user__email", "role"))
    assert tenant.name == "Demo Dental Clinic"
    assert roles == {"demo@example.com": Role.OWNER, "agent@example.com": Role.AGENT}
    assert "http://localhost:8000/app/demo/" in output or "/app/demo/" in output
    assert "demo@example.com" in output
    assert "demo-password-123" in output


def test_seed_twice_gives_the_same_result():
    first = seed()
    second = seed()

    assert first == second
    assert Tenant.objects.filter(slug="demo").count() == 1
    assert Membership.objects.filter(tenant__slug="demo").count() == 2
    assert User.objects.filter(email="demo@example.com").count() == 1


def test_the_demo_owner_can_log_in_with_the_printed_password(client, settings):
    output = seed()
    password = re.search(r"demo@example\.com / (\S+)", output).group(1)

    response = client.post(
        reverse("account_login"), {"login": "demo@example.com", "password": password}
    )

    assert response.status_code == 302
    home = client.get(reverse("tenant:home", kwargs={"tenant_slug": "demo"}))
    assert home.status_code == 200
    assert "Demo Dental Clinic" in home.content.decode()


def test_no_superuser_is_created_by_default():
    seed()

    assert not User.objects.filter(is_superuser=True).exists()
    assert not User.objects.filter(is_staff=True).exists()


def test_with_admin_creates_a_superuser_who_can_open_the_admin(client):
    output = seed("--with-admin")
    password = re.search(r"admin@example\.com / (\S+)", output).group(1)

    assert client.login(email="admin@example.com", password=password)
    assert client.get(reverse("admin:index")).status_code == 200
    assert User.objects.get(email="admin@example.com").is_superuser


# --- The messaging demo ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _in_process_rate_limits(settings):
    # Demo replies are delivered in the test; their rate limit needs no Redis.
    settings.RATE_LIMIT_REDIS_URL = "memory"


def _demo_inbox():
    from channels_app.models import Channel, Conversation, Message, MessageTemplate
    from tenants.context import tenant_context

    tenant = Tenant.objects.get(slug="demo")
    with tenant_context(tenant):
        channel = Channel.objects.get(kind=Channel.Kind.SANDBOX)
        conversations = {
            c.contact.name: c
            for c in Conversation.objects.filter(channel=channel).select_related(
                "contact", "assignee"
            )
        }
        messages = list(
            Message.objects.filter(channel=channel).values_list("direction", "body", "author_id")
        )
        templates = MessageTemplate.objects.filter(channel=channel, status="approved").count()
    return tenant, channel, conversations, messages, templates


def test_seed_adds_a_sandbox_channel_with_demo_conversations(django_capture_on_commit_callbacks):
    from channels_app.models import Conversation

    with django_capture_on_commit_callbacks(execute=True):
        output = seed()

    _tenant, channel, conversations, messages, templates = _demo_inbox()
    agent = User.objects.get(email="agent@example.com")
    assert channel.sandbox_secret  # the simulator can sign its webhooks
    assert templates >= 1  # for the conversation outside the window
    assert f"/app/demo/channels/sandbox/{channel.pk}/simulator/" in output
    assert set(conversations) == {"Maria Garcia", "James Wilson", "Priya Patel", "Tom Becker"}
    assert conversations["Maria Garcia"].assignee is None
    assert conversations["Maria Garcia"].unread_count == 1
    assert conversations["James Wilson"].assignee == agent
    assert conversations["Priya Patel"].status == Conversation.Status.RESOLVED
    assert not conversations["Tom Becker"].window_open()
    assert all(c.window_open() for name, c in conversations.items() if name != "Tom Becker")
    directions = {direction for direction, _body, _author in messages}
    assert directions == {"inbound", "outbound"}
    # Replies were sent by people of the business, through the sending service.
    assert all(author for direction, _b, author in messages if direction == "outbound")


def test_seeding_the_messaging_demo_twice_changes_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        seed()
    first = _demo_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        seed()
    second = _demo_inbox()

    assert first[1].pk == second[1].pk
    assert sorted(first[3]) == sorted(second[3])
    assert {n: c.last_message_at for n, c in first[2].items()} == {
        n: c.last_message_at for n, c in second[2].items()
    }
