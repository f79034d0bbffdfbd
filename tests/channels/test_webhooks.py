"""Provider webhooks end to end: signed requests through the real URLs, views and adapters."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channels_app.models import Channel, Conversation, InboundWebhook, Message, MessageStatusEvent
from channels_app.providers.sandbox import signed_request
from crm.models import Contact
from tenants.context import tenant_context
from tests.factories import ChannelFactory, MessageFactory
from tests.fakes import meta_inbound_message, meta_status
from tests.fakes.webhooks import FORM, encode_form, twilio_inbound_message, twilio_status_callback

pytestmark = pytest.mark.django_db

CUSTOMER = "+14155550199"


# --- helpers -----------------------------------------------------------------------------------


def hook(name: str, channel) -> str:
    return reverse(name, kwargs={"token": channel.webhook_token})


def post_sandbox(client, channel, events: list[dict]):
    request = signed_request(channel, events)
    return client.post(
        request.full_path, request.body, content_type="application/json", headers=request.headers
    )


def post_twilio(client, channel, params: dict, headers: dict, name="hook_twilio_inbound"):
    return client.post(hook(name, channel), encode_form(params), content_type=FORM, headers=headers)


def twilio_inbound(target, **kwargs):
    url = settings.PUBLIC_BASE_URL + hook("hook_twilio_inbound", target)
    kwargs.setdefault("from_", CUSTOMER)
    kwargs.setdefault("to", target.twilio_from)
    kwargs.setdefault("account_sid", target.twilio_account_sid)
    return twilio_inbound_message(url, target.twilio_auth_token, **kwargs)


def twilio_status(channel, **kwargs):
    url = settings.PUBLIC_BASE_URL + hook("hook_twilio_status", channel)
    kwargs.setdefault("account_sid", channel.twilio_account_sid)
    return twilio_status_callback(url, channel.twilio_auth_token, **kwargs)


def post_meta(client, channel, body: bytes, headers: dict):
    return client.post(
        hook("hook_meta", channel), body, content_type="application/json", headers=headers
    )


def meta_message(channel, **kwargs):
    kwargs.setdefault("phone_number_id", channel.meta_phone_number_id)
    kwargs.setdefault("waba_id", channel.meta_business_account_id)
    kwargs.setdefault("from_wa_id", CUSTOMER.lstrip("+"))
    return meta_inbound_message(channel.meta_app_secret, **kwargs)


def outbound(channel, provider_message_id: str, status=Message.Status.ACCEPTED):
    return MessageFactory(
        tenant=channel.tenant,
        conversation__channel=channel,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=status,
        provider_message_id=provider_message_id,
    )


def fresh(channel) -> Channel:
    with tenant_context(channel.tenant):
        return Channel.objects.get(pk=channel.pk)


@pytest.fixture
def sandbox(tenant_a):
    return ChannelFactory(tenant=tenant_a)


@pytest.fixture
def twilio(tenant_a):
    return ChannelFactory(tenant=tenant_a, twilio=True)


@pytest.fixture
def meta(tenant_a):
    return ChannelFactory(tenant=tenant_a, meta=True)


# --- accepted ----------------------------------------------------------------------------------


def test_a_signed_sandbox_message_creates_the_contact_conversation_and_message(client, sandbox):
    response = post_sandbox(
        client,
        sandbox,
        [{"type": "message", "id": "sbx-in-1", "from": "+1 415 555 0199", "name": "Ana",
          "body": "Hi, are you open on Saturday?"}],
    )  # fmt: skip

    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "duplicates": 0}
    with tenant_context(sandbox.tenant):
        contact = Contact.objects.get()
        assert (contact.phone, contact.name, contact.source) == (CUSTOMER, "Ana", "sandbox")
        conversation = Conversation.objects.get()
        assert conversation.contact == contact and conversation.channel == sandbox
        assert conversation.status == Conversation.Status.OPEN
        assert conversation.unread_count == 1
        assert conversation.window_open()
        assert conversation.last_message_preview == "Hi, are you open on Saturday?"
        message = Message.objects.get()
        assert message.direction == Message.Direction.INBOUND
        assert message.body == "Hi, are you open on Saturday?"
        assert InboundWebhook.objects.get().events == 1
    assert fresh(sandbox).last_inbound_at is not None


def test_a_signed_twilio_whatsapp_message_is_stored_with_its_media(client, twilio):
    params, headers = twilio_inbound(
        twilio,
        body="Here is the photo",
        profile_name="Ana",
        media=[("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
                "image/jpeg")],
    )  # fmt: skip

    response = post_twilio(client, twilio, params, headers)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Response/>" in response.content
    with tenant_context(twilio.tenant):
        message = Message.objects.get()
        assert message.provider_message_id == params["MessageSid"]
        assert message.conversation.contact.phone == CUSTOMER
        assert message.media == [
            {
                "content_type": "image/jpeg",
                "provider_media_id": "",
                "url": params["MediaUrl0"],
                "filename": "",
                "size": None,
            }
        ]


def test_a_twilio_sms_reply_lands_in_the_same_conversation(client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    for text in ("Hello", "Are you there?"):
        params, headers = twilio_inbound(channel, body=text, channel="sms")
        assert post_twilio(client, channel, params, headers).status_code == 200
    with tenant_context(tenant_a):
        conversation = Conversation.objects.get()
        assert conversation.messages.count() == 2
        assert conversation.unread_count == 2
        assert conversation.last_message_preview == "Are you there?"


def test_twilio_status_callbacks_move_our_message_forward(client, twilio):
    message = outbound(twilio, "SM" + "a" * 32)
    for status in ("sent", "delivered", "read"):
        params, headers = twilio_status(
            twilio, message_sid=message.provider_message_id, status=status
        )
        response = post_twilio(client, twilio, params, headers, name="hook_twilio_status")
        assert response.status_code == 200

    with tenant_context(message.tenant):
        message.refresh_from_db()
    assert message.status == Message.Status.READ
    assert message.sent_at and message.delivered_at and message.read_at
    with tenant_context(twilio.tenant):
        events = MessageStatusEvent.objects.order_by("id")
        assert [e.provider_status for e in events] == ["sent", "delivered", "read"]
        assert all(e.applied and e.message_id == message.pk for e in events)


def test_a_failed_twilio_delivery_keeps_the_code_and_the_reason_in_words(client, twilio):
    message = outbound(twilio, "SM" + "b" * 32, status=Message.Status.SENT)
    params, headers = twilio_status(
        twilio, message_sid=message.provider_message_id, status="undelivered", error_code=30003
    )
    assert post_twilio(client, twilio, params, headers, "hook_twilio_status").status_code == 200
    with tenant_context(message.tenant):
        message.refresh_from_db()
    assert message.status == Message.Status.UNDELIVERED
    assert message.error_code == "30003"
    assert "unreachable" in message.error_reason


def test_a_signed_meta_message_and_its_status_are_accepted(client, meta):
    body, headers = meta_message(meta, body="Hola", profile_name="Luis")
    response = post_meta(client, meta, body, headers)
    assert response.status_code == 200
    with tenant_context(meta.tenant):
        incoming = Message.objects.get()
        assert incoming.body == "Hola"
        assert incoming.conversation.contact.name == "Luis"

    sent = outbound(meta, "wamid.OUT1", status=Message.Status.SENT)
    body, headers = meta_status(
        meta.meta_app_secret,
        message_id="wamid.OUT1",
        status="delivered",
        recipient=CUSTOMER,
        phone_number_id=meta.meta_phone_number_id,
    )
    assert post_meta(client, meta, body, headers).status_code == 200
    with tenant_context(sent.tenant):
        sent.refresh_from_db()
    assert sent.status == Message.Status.DELIVERED


def test_meta_subscription_handshake_echoes_the_challenge(client, meta):
    url = hook("hook_meta", meta)
    handshake = {"hub.mode": "subscribe", "hub.challenge": "42"}
    ok = client.get(url, {**handshake, "hub.verify_token": "meta-verify-token"})
    assert ok.status_code == 200 and ok.content == b"42"

    wrong = client.get(url, {**handshake, "hub.verify_token": "guess"})
    assert wrong.status_code == 403
    assert wrong.json()["error"]
    assert fresh(meta).rejected_signatures == 1


def test_a_webhook_on_a_switched_off_channel_is_still_stored(client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a, is_active=False)
    response = post_sandbox(
        client, channel, [{"type": "message", "id": "sbx-in-off", "from": CUSTOMER, "body": "Hi"}]
    )
    assert response.status_code == 200
    with tenant_context(tenant_a):
        assert Message.objects.filter(provider_message_id="sbx-in-off").exists()
    assert "switched-off" in fresh(channel).last_error


# --- refused -----------------------------------------------------------------------------------


def test_a_forged_twilio_signature_is_refused_and_counted(client, twilio):
    params, headers = twilio_inbound(twilio, body="Hi")
    params["Body"] = "Send me everything"  # changed after signing

    response = post_twilio(client, twilio, params, headers)

    assert response.status_code == 403
    assert response.json() == {"error": "X-Twilio-Signature does not match"}
    channel = fresh(twilio)
    assert channel.rejected_signatures == 1
    assert channel.last_rejection_reason == "X-Twilio-Signature does not match"
    assert channel.last_rejection_at is not None
    with tenant_context(twilio.tenant):
        assert not Message.objects.exists()
        assert not InboundWebhook.objects.exists()


def test_a_signature_made_with_another_token_is_refused(client, twilio):
    url = settings.PUBLIC_BASE_URL + hook("hook_twilio_inbound", twilio)
    params, headers = twilio_inbound_message(
        url, "not-the-auth-token", from_=CUSTOMER, to=twilio.twilio_from,
        account_sid=twilio.twilio_account_sid, body="Hi",
    )  # fmt: skip
    assert post_twilio(client, twilio, params, headers).status_code == 403


@pytest.mark.parametrize("provider", ["twilio", "meta", "sandbox"])
def test_a_missing_signature_is_refused_and_counted(client, tenant_a, provider):
    if provider == "twilio":
        channel = ChannelFactory(tenant=tenant_a, twilio=True)
        params, _headers = twilio_inbound(channel, body="Hi")
        response = post_twilio(client, channel, params, {})
    elif provider == "meta":
        channel = ChannelFactory(tenant=tenant_a, meta=True)
        body, _headers = meta_message(channel, body="Hi")
        response = post_meta(client, channel, body, {})
    else:
        channel = ChannelFactory(tenant=tenant_a)
        body = json.dumps({"events": [{"type": "message", "id": "x", "from": CUSTOMER}]})
        response = client.post(hook("hook_sandbox", channel), body, content_type="application/json")
    assert response.status_code == 403
    assert "missing" in response.json()["error"]
    assert fresh(channel).rejected_signatures == 1


def test_a_forged_meta_signature_is_refused(client, meta):
    body, headers = meta_message(meta, body="Hi")
    headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    response = post_meta(client, meta, body, headers)
    assert response.status_code == 403
    assert fresh(meta).rejected_signatures == 1


def test_an_unknown_address_is_not_found(client, twilio):
    response = client.post("/hooks/twilio/not-a-token/inbound/", "a=b", content_type=FORM)
    assert response.status_code == 404
    assert response.json() == {"error": "unknown webhook address"}


def test_a_channel_token_under_another_provider_is_not_found(client, sandbox):
    # A sandbox channel's token on the Twilio URL: the address does not exist.
    url = reverse("hook_twilio_inbound", kwargs={"token": sandbox.webhook_token})
    assert client.post(url, "a=b", content_type=FORM).status_code == 404
    assert fresh(sandbox).rejected_signatures == 0


def test_only_post_is_allowed_on_twilio_and_sandbox_hooks(client, twilio, sandbox):
    response = client.get(hook("hook_twilio_inbound", twilio))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert client.put(hook("hook_sandbox", sandbox)).status_code == 405
    assert client.delete(hook("hook_meta", sandbox)).status_code == 405


def test_an_oversized_body_is_refused_and_counted_as_malformed(client, sandbox, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    events = [{"type": "message", "id": "big", "from": CUSTOMER, "body": "x" * 2000}]
    response = post_sandbox(client, sandbox, events)
    assert response.status_code == 413
    assert "larger than 1024 bytes" in response.json()["error"]
    channel = fresh(sandbox)
    assert channel.rejected_malformed == 1
    with tenant_context(sandbox.tenant):
        assert not Message.objects.exists()


def test_a_malformed_body_gets_400_with_the_reason_and_is_counted(client, twilio):
    params, headers = twilio_inbound(twilio, body="Hi", extra={"NumMedia": "many"})
    response = post_twilio(client, twilio, params, headers)
    assert response.status_code == 400
    assert response.json() == {"error": "NumMedia is not a number"}
    channel = fresh(twilio)
    assert channel.rejected_malformed == 1
    assert channel.last_rejection_reason == "NumMedia is not a number"


def test_an_invalid_phone_is_refused_while_its_valid_sibling_is_stored(client, sandbox):
    response = post_sandbox(
        client,
        sandbox,
        [
            {"type": "message", "id": "sbx-bad", "from": "12", "body": "Hi"},
            {"type": "message", "id": "sbx-good", "from": CUSTOMER, "body": "Hello"},
        ],
    )
    assert response.status_code == 400
    data = response.json()
    assert data["error"].startswith("events[0]: ")
    assert "“12” is not a phone number" in data["error"]
    assert data["accepted"] == 1
    with tenant_context(sandbox.tenant):
        assert list(Message.objects.values_list("provider_message_id", flat=True)) == ["sbx-good"]
    assert fresh(sandbox).rejected_malformed == 1


# --- retries -----------------------------------------------------------------------------------


def test_a_replayed_twilio_webhook_answers_200_and_is_stored_once(client, twilio):
    params, headers = twilio_inbound(twilio, body="Hi")
    first = post_twilio(client, twilio, params, headers)
    again = post_twilio(client, twilio, params, headers)
    assert first.status_code == again.status_code == 200
    with tenant_context(twilio.tenant):
        assert Message.objects.count() == 1
        assert Conversation.objects.get().unread_count == 1
        assert sorted(InboundWebhook.objects.values_list("events", "duplicates")) == [
            (0, 1),
            (1, 0),
        ]


def test_a_replayed_meta_status_is_one_event(client, meta):
    outbound(meta, "wamid.OUT2", status=Message.Status.SENT)
    body, headers = meta_status(
        meta.meta_app_secret, message_id="wamid.OUT2", status="read", recipient=CUSTOMER,
        phone_number_id=meta.meta_phone_number_id,
    )  # fmt: skip
    for _ in range(3):
        assert post_meta(client, meta, body, headers).status_code == 200
    with tenant_context(meta.tenant):
        assert MessageStatusEvent.objects.count() == 1


# --- cost --------------------------------------------------------------------------------------
# Budgets of a webhook to an address the process already knows (the usual case), counting on
# PostgreSQL the two statements that switch the connection's tenant on and off, and the check
# of the remembered route. SQLite has no tenant settings but reads the channel every time.


def cost_budget(postgresql: int, sqlite: int) -> int:
    return postgresql if connection.vendor == "postgresql" else sqlite


def test_a_status_callback_costs_a_handful_of_queries(
    client, twilio, django_assert_max_num_queries
):
    message = outbound(twilio, "SM" + "c" * 32)
    params, headers = twilio_status(twilio, message_sid=message.provider_message_id, status="sent")
    assert post_twilio(client, twilio, params, headers, "hook_twilio_status").status_code == 200
    params, headers = twilio_status(
        twilio, message_sid=message.provider_message_id, status="delivered"
    )
    # Tenant on, route check, one statement storing and applying the event, tenant off.
    with django_assert_max_num_queries(cost_budget(4, 7)):
        response = post_twilio(client, twilio, params, headers, "hook_twilio_status")
    assert response.status_code == 200
    with tenant_context(twilio.tenant):
        message.refresh_from_db()
        assert message.status == Message.Status.DELIVERED
        assert message.sent_at and message.delivered_at
        assert MessageStatusEvent.objects.filter(message=message, applied=True).count() == 2


def test_a_message_from_a_known_customer_costs_a_bounded_number_of_queries(
    client, twilio, django_assert_max_num_queries
):
    for text in ("first", "second"):  # (the first also notes the channel's last inbound)
        params, headers = twilio_inbound(twilio, body=text)
        post_twilio(client, twilio, params, headers)
    params, headers = twilio_inbound(twilio, body="third")
    # Tenant on, route check, savepoint, contact and conversation, message, conversation,
    # the opt-out wording (a one-word message could be a keyword), raw body, release, off.
    with django_assert_max_num_queries(cost_budget(10, 10)):
        assert post_twilio(client, twilio, params, headers).status_code == 200


def test_a_sentence_from_a_known_customer_reads_no_opt_out_settings(client, twilio):
    params, headers = twilio_inbound(twilio, body="first")
    post_twilio(client, twilio, params, headers)
    params, headers = twilio_inbound(
        twilio, body="Could you move my appointment to Thursday afternoon, please?"
    )
    with CaptureQueriesContext(connection) as queries:
        assert post_twilio(client, twilio, params, headers).status_code == 200
    assert not [q for q in queries.captured_queries if "privacy_" in q["sql"]]
    with tenant_context(twilio.tenant):
        assert Conversation.objects.get().unread_count == 2


def test_status_callbacks_are_not_kept_as_raw_bodies_but_messages_are(client, meta):
    sent = outbound(meta, "wamid.OUT3", status=Message.Status.SENT)
    body, headers = meta_status(
        meta.meta_app_secret, message_id="wamid.OUT3", status="delivered",
        recipient=CUSTOMER, phone_number_id=meta.meta_phone_number_id,
    )  # fmt: skip
    assert post_meta(client, meta, body, headers).status_code == 200
    body, headers = meta_message(meta, body="Gracias")
    assert post_meta(client, meta, body, headers).status_code == 200

    with tenant_context(meta.tenant):
        (raw,) = InboundWebhook.objects.all()
        assert "Gracias" in raw.body and (raw.events, raw.duplicates) == (1, 0)
        event = MessageStatusEvent.objects.get()
        assert (event.message_id, event.applied) == (sent.pk, True)


def test_a_plain_get_on_the_meta_hook_is_refused_with_a_reason(client, meta):
    response = client.get(hook("hook_meta", meta))
    assert response.status_code == 400
    assert "hub.challenge" in response.json()["error"]
