"""The sandbox simulator: the owner plays a customer, through the real inbound pipeline."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from channels_app import ratelimit
from channels_app.models import Conversation, InboundWebhook, Message, MessageStatusEvent
from crm.models import Contact
from privacy.gate import COMPLIANCE, can_message
from privacy.models import ConsentAction, ConsentState, Purpose
from salesos.celery import app as celery_app
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import ChannelFactory, member
from tests.test_pages import assert_no_third_party_code

pytestmark = pytest.mark.django_db

PHONE = "+15555550142"


@pytest.fixture(autouse=True)
def _messaging(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.RATE_LIMIT_REDIS_URL = "memory"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    ratelimit.reset()
    yield
    ratelimit.reset()
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def channel(tenant_a):
    # A brand-new sandbox has no signing key yet: the simulator creates it on first use.
    return ChannelFactory(tenant=tenant_a, name="Sandbox", sandbox_secret="")


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


def url(name, channel, **params):
    path = reverse(
        f"channels:{name}",
        kwargs={"tenant_slug": channel.tenant.slug, "channel_id": channel.pk},
    )
    if params:
        path += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return path


def say(client, channel, body, *, phone=PHONE, name="Ana Lima", execute=None):
    return client.post(
        url("simulator_send", channel),
        {"phone": phone, "name": name, "body": body},
        headers={"HX-Request": "true"},
    )


def messages_of(tenant, phone=PHONE):
    with tenant_context(tenant):
        return list(
            Message.objects.filter(conversation__contact__phone=phone).order_by("created_at", "id")
        )


def test_the_simulator_page_renders_for_owners(owner_client, tenant_a, channel):
    response = owner_client.get(url("simulator", channel))
    html = response.content.decode()

    assert response.status_code == 200
    assert_no_third_party_code(html, "simulator")
    assert "Phone simulator" in html
    assert "+1 555-555-0100" in html  # a fictional number suggested for a new customer


def test_agents_cannot_open_the_simulator(client, tenant_a, channel):
    client.force_login(member(tenant_a, role=Role.AGENT))

    assert client.get(url("simulator", channel)).status_code == 403


def test_only_sandbox_channels_have_a_simulator(owner_client, tenant_a):
    twilio = ChannelFactory(tenant=tenant_a, twilio=True)

    assert owner_client.get(url("simulator", twilio)).status_code == 404


def test_a_simulated_message_goes_through_the_pipeline_into_the_inbox(
    owner_client, tenant_a, channel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = say(owner_client, channel, "Hi, can I book a cleaning?")

    assert response.status_code == 200
    assert "Hi, can I book a cleaning?" in response.content.decode()
    with tenant_context(tenant_a):
        contact = Contact.objects.get(phone=PHONE)
        conversation = Conversation.objects.get(contact=contact, channel=channel)
        [message] = Message.objects.filter(conversation=conversation)
        webhook = InboundWebhook.objects.get(channel=channel)
        channel.refresh_from_db()
    assert contact.name == "Ana Lima"
    assert contact.source == Contact.Source.SANDBOX
    assert message.direction == Message.Direction.INBOUND
    assert message.provider_message_id.startswith("sbx-in-")
    assert conversation.unread_count == 1 and conversation.window_open()
    # Signed like a provider's webhook, with the key the simulator created.
    assert channel.sandbox_secret
    assert "Hi, can I book a cleaning?" in webhook.body
    inbox = owner_client.get(reverse("channels:inbox", kwargs={"tenant_slug": tenant_a.slug}))
    assert "Ana Lima" in inbox.content.decode()
    assert "Hi, can I book a cleaning?" in inbox.content.decode()


def test_a_second_message_finds_the_same_contact_by_phone(owner_client, tenant_a, channel):
    say(owner_client, channel, "Hello")
    say(owner_client, channel, "Anyone there?", phone="+1 (555) 555-0142", name="")

    with tenant_context(tenant_a):
        assert Contact.objects.filter(phone=PHONE).count() == 1
    assert [m.body for m in messages_of(tenant_a)] == ["Hello", "Anyone there?"]


def test_stop_opts_out_and_shows_exactly_one_confirmation(
    owner_client, tenant_a, channel, django_capture_on_commit_callbacks
):
    say(owner_client, channel, "Hello")
    with django_capture_on_commit_callbacks(execute=True):
        say(owner_client, channel, "STOP")
    screen = owner_client.post(url("simulator_screen", channel, phone=PHONE.replace("+", "%2B")))

    outbound = [m for m in messages_of(tenant_a) if m.direction == Message.Direction.OUTBOUND]
    assert len(outbound) == 1
    [confirmation] = outbound
    assert confirmation.purpose == COMPLIANCE
    assert "unsubscribed" in confirmation.body
    assert confirmation.body in screen.content.decode()
    with tenant_context(tenant_a):
        contact = Contact.objects.get(phone=PHONE)
        state = ConsentState.objects.get(
            contact=contact, medium="whatsapp", purpose="transactional"
        )
        assert state.action == ConsentAction.WITHDRAWN
        assert not can_message(contact, channel, Purpose.TRANSACTIONAL)


def test_the_phone_reports_delivered_then_read_for_replies_it_shows(
    owner_client, tenant_a, channel, django_capture_on_commit_callbacks
):
    from channels_app.services.sending import send_message

    say(owner_client, channel, "Hello")
    with tenant_context(tenant_a):
        conversation = Conversation.objects.get(contact__phone=PHONE)
        with django_capture_on_commit_callbacks(execute=True):
            reply = send_message(
                conversation=conversation,
                body="Hi Ana, Tuesday at 10?",
                purpose=Purpose.TRANSACTIONAL,
                sender_kind=Message.SenderKind.AGENT,
            )
    screen_url = url("simulator_screen", channel, phone=PHONE.replace("+", "%2B"))

    def status():
        with tenant_context(tenant_a):
            reply.refresh_from_db()
        return reply.status

    assert status() == Message.Status.SENT
    first = owner_client.post(screen_url, headers={"HX-Request": "true"})
    assert "Hi Ana, Tuesday at 10?" in first.content.decode()
    assert status() == Message.Status.DELIVERED
    owner_client.post(screen_url, headers={"HX-Request": "true"})
    assert status() == Message.Status.READ
    with tenant_context(tenant_a):
        provider_statuses = set(
            MessageStatusEvent.objects.filter(message=reply).values_list(
                "provider_status", flat=True
            )
        )
    assert provider_statuses == {"delivered", "read"}


def test_notes_and_unsent_replies_never_reach_the_phone(owner_client, tenant_a, channel, owner_a):
    from channels_app.services.conversations import add_note

    say(owner_client, channel, "Hello")
    with tenant_context(tenant_a):
        conversation = Conversation.objects.get(contact__phone=PHONE)
        add_note(conversation=conversation, body="Secret team note", author=owner_a)

    screen = owner_client.post(url("simulator_screen", channel, phone=PHONE.replace("+", "%2B")))

    assert "Hello" in screen.content.decode()
    assert "Secret team note" not in screen.content.decode()


def test_an_invalid_phone_number_is_a_form_error(owner_client, tenant_a, channel):
    response = say(owner_client, channel, "Hello", phone="not a phone")

    assert "is not a phone number" in response.content.decode()
    with tenant_context(tenant_a):
        assert not Message.objects.exists()


def test_an_empty_message_is_a_form_error(owner_client, tenant_a, channel):
    response = say(owner_client, channel, "")

    assert "Type a message first." in response.content.decode()


def test_without_htmx_the_phone_redirects_back_to_itself(owner_client, tenant_a, channel):
    response = owner_client.post(
        url("simulator_send", channel), {"phone": PHONE, "name": "Ana", "body": "Hello"}
    )

    assert response.status_code == 302
    assert re.search(r"phone=%2B15555550142", response["Location"])
    page = owner_client.get(response["Location"]).content.decode()
    assert "Hello" in page


def test_a_sandbox_conversation_links_to_the_simulator(owner_client, tenant_a, channel):
    say(owner_client, channel, "Hello")
    with tenant_context(tenant_a):
        conversation = Conversation.objects.get(contact__phone=PHONE)

    html = owner_client.get(
        reverse(
            "channels:inbox_thread",
            kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conversation.pk},
        )
    ).content.decode()

    assert url("simulator", channel) + "?phone=%2B15555550142" in html
