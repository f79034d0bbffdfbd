"""The WhatsApp Cloud API adapter against the local Graph API stub."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.test import RequestFactory

from channels_app.models import Message, MessageTemplate
from channels_app.providers.base import (
    InboundMessage,
    ProviderError,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
    provider_for,
)
from channels_app.providers.meta import MetaProvider
from tenants.context import tenant_context
from tests.factories import ChannelFactory, MessageFactory, MessageTemplateFactory
from tests.fakes import meta_inbound_message, meta_status, meta_webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(tenant_a, provider_stub):
    channel = ChannelFactory(tenant=tenant_a, meta=True)
    provider_stub.meta_phone_number(
        channel.meta_phone_number_id,
        channel.meta_access_token,
        display_phone_number="+1 555-000-1111",
        verified_name="Alpha Dental",
        waba_id=channel.meta_business_account_id,
    )
    return channel


def post(body: bytes, headers: dict, path="/hooks/meta/token/") -> WebhookRequest:
    request = RequestFactory().post(path, body, content_type="application/json", headers=headers)
    return WebhookRequest.from_django(request)


def inbound(channel, **kwargs):
    kwargs.setdefault("phone_number_id", channel.meta_phone_number_id)
    kwargs.setdefault("waba_id", channel.meta_business_account_id)
    kwargs.setdefault("from_wa_id", "15550002222")
    return meta_inbound_message(channel.meta_app_secret, **kwargs)


def outbound(channel, **kwargs):
    with tenant_context(channel.tenant):
        return MessageFactory(
            tenant=channel.tenant,
            conversation__channel=channel,
            direction=Message.Direction.OUTBOUND,
            sender_kind=Message.SenderKind.AGENT,
            status=Message.Status.QUEUED,
            provider_message_id="",
            **kwargs,
        )


def test_provider_for_meta(channel):
    assert isinstance(provider_for(channel), MetaProvider)


# --- handshake and signatures ---------------------------------------------------------------


def get(query: str) -> WebhookRequest:
    return WebhookRequest.from_django(RequestFactory().get("/hooks/meta/token/?" + query))


def test_handshake_echoes_the_challenge(channel):
    response = MetaProvider(channel).handshake(
        get("hub.mode=subscribe&hub.verify_token=meta-verify-token&hub.challenge=1158201444")
    )
    assert response.status_code == 200
    assert response.content == b"1158201444"


def test_handshake_with_wrong_token_is_refused(channel):
    response = MetaProvider(channel).handshake(
        get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")
    )
    assert response.status_code == 403
    assert MetaProvider(channel).handshake(get("other=1")) is None
    raw, headers = inbound(channel, body="Hi")
    assert MetaProvider(channel).handshake(post(raw, headers)) is None


def test_valid_signature(channel):
    raw, headers = inbound(channel, body="Hi")
    MetaProvider(channel).verify(post(raw, headers))


def test_forged_tampered_and_missing_signatures(channel):
    raw, headers = meta_inbound_message(
        "some-other-secret", phone_number_id="1", waba_id="2", from_wa_id="3", body="Hi"
    )
    with pytest.raises(WebhookRejected) as info:
        MetaProvider(channel).verify(post(raw, headers))
    assert info.value.status_code == 403

    raw, headers = inbound(channel, body="Hi")
    with pytest.raises(WebhookRejected):
        MetaProvider(channel).verify(post(raw.replace(b"Hi", b"Yo"), headers))

    del headers["X-Hub-Signature-256"]
    with pytest.raises(WebhookRejected) as info:
        MetaProvider(channel).verify(post(raw, headers))
    assert info.value.reason == "missing X-Hub-Signature-256"


def test_signature_is_over_the_raw_bytes(channel):
    # Same JSON, different bytes (spacing, unicode escapes): only the signed bytes pass.
    payload = {"object": "whatsapp_business_account", "entry": [], "note": "ação"}
    raw, headers = meta_webhook(channel.meta_app_secret, payload)
    MetaProvider(channel).verify(post(raw, headers))
    with pytest.raises(WebhookRejected):
        MetaProvider(channel).verify(post(json.dumps(payload).encode(), headers))


# --- parsing --------------------------------------------------------------------------------


def test_parse_text(channel):
    raw, headers = inbound(
        channel, body="Hello", profile_name="Ana Lima", message_id="wamid.ABC", timestamp=1700000000
    )
    (event,) = MetaProvider(channel).parse(post(raw, headers))
    assert isinstance(event, InboundMessage)
    assert event.provider_message_id == "wamid.ABC"
    assert event.from_phone == "+15550002222"
    assert event.body == "Hello"
    assert event.profile_name == "Ana Lima"
    assert event.timestamp.isoformat() == "2023-11-14T22:13:20+00:00"


@pytest.mark.parametrize("kind", ["image", "audio", "document", "video", "sticker"])
def test_parse_media(channel, kind):
    media = {"type": kind, "id": "4490709327384033", "mime_type": "application/x-test"}
    if kind == "document":
        media["filename"] = "invoice.pdf"
    raw, headers = inbound(channel, body="caption" if kind != "audio" else "", media=media)
    (event,) = MetaProvider(channel).parse(post(raw, headers))
    (item,) = event.media
    assert item.provider_media_id == "4490709327384033"
    assert item.content_type == "application/x-test"
    if kind in ("image", "document", "video"):
        assert event.body == "caption"
    if kind == "document":
        assert item.filename == "invoice.pdf"


@pytest.mark.parametrize(
    ("message", "body"),
    [
        (
            {
                "type": "location",
                "location": {"latitude": 38.7, "longitude": -9.1, "name": "Clinic"},
            },
            "Location: Clinic (38.7, -9.1)",
        ),
        ({"type": "button", "button": {"text": "Confirm", "payload": "YES"}}, "Confirm"),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "button_reply",
                    "button_reply": {"id": "b1", "title": "Tomorrow"},
                },
            },
            "Tomorrow",
        ),
        (
            {
                "type": "interactive",
                "interactive": {
                    "type": "list_reply",
                    "list_reply": {"id": "r1", "title": "Cleaning", "description": "30 min"},
                },
            },
            "Cleaning — 30 min",
        ),
        ({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}}, "👍"),
        (
            {
                "type": "unsupported",
                "errors": [{"code": 131051, "title": "Message type unknown"}],
            },
            "[unsupported message: Message type unknown]",
        ),
    ],
)
def test_parse_other_kinds(channel, message, body):
    raw, headers = inbound(channel, message=message)
    (event,) = MetaProvider(channel).parse(post(raw, headers))
    assert event.body == body


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("sent", Message.Status.SENT),
        ("delivered", Message.Status.DELIVERED),
        ("read", Message.Status.READ),
        ("failed", Message.Status.FAILED),
    ],
)
def test_parse_statuses(channel, status, ours):
    raw, headers = meta_status(
        channel.meta_app_secret,
        message_id="wamid.OUT",
        status=status,
        recipient="+15550002222",
        phone_number_id=channel.meta_phone_number_id,
    )
    (event,) = MetaProvider(channel).parse(post(raw, headers))
    assert isinstance(event, StatusUpdate)
    assert event.provider_message_id == "wamid.OUT"
    assert event.status == ours
    assert event.provider_status == status
    assert event.timestamp is not None


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (131050, "stopped marketing messages"),
        (131047, "24 hours"),
        (131026, "could not be delivered"),
    ],
)
def test_parse_failed_status_errors(channel, code, words):
    raw, headers = meta_status(
        channel.meta_app_secret, message_id="wamid.OUT", status="failed",
        recipient="15550002222", errors=[{"code": code, "title": "x"}],
        phone_number_id=channel.meta_phone_number_id,
    )  # fmt: skip
    (event,) = MetaProvider(channel).parse(post(raw, headers))
    assert event.error_code == str(code)
    assert words in event.error_reason


def test_parse_skips_other_numbers_and_unknown_statuses(channel):
    raw, headers = meta_inbound_message(
        channel.meta_app_secret, phone_number_id="999", waba_id="1", from_wa_id="1", body="x"
    )
    assert MetaProvider(channel).parse(post(raw, headers)) == []
    raw, headers = meta_status(
        channel.meta_app_secret, message_id="wamid.X", status="deleted", recipient="1",
        phone_number_id=channel.meta_phone_number_id,
    )  # fmt: skip
    assert MetaProvider(channel).parse(post(raw, headers)) == []


NO_FROM = b'{"entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"x"}]}}]}]}'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "'entry' list"),
        (b'{"object":"page","entry":[]}', "unexpected object"),
        (NO_FROM, "no 'id' or 'from'"),
    ],
)  # fmt: skip
def test_parse_malformed(channel, body, reason):
    with pytest.raises(WebhookRejected) as info:
        MetaProvider(channel).parse(post(body, {}))
    assert info.value.status_code == 400
    assert reason in info.value.reason


# --- sending --------------------------------------------------------------------------------


def test_send_text_exactly(channel, provider_stub):
    message = outbound(channel, body="See you tomorrow at 10.")
    result = MetaProvider(channel).send(message, to_phone="+15550002222")
    assert result.provider_message_id.startswith("wamid.")
    assert result.status == Message.Status.ACCEPTED
    (sent,) = provider_stub.sent
    assert sent == {
        "provider": "meta",
        "phone_number_id": channel.meta_phone_number_id,
        "message_id": result.provider_message_id,
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+15550002222",
        "type": "text",
        "text": {"preview_url": False, "body": "See you tomorrow at 10."},
    }
    auth = [r["headers"].get("Authorization") for r in provider_stub.requests]
    assert auth == [f"Bearer {channel.meta_access_token}"]


def test_send_media(channel, provider_stub):
    message = outbound(
        channel,
        body="Your invoice",
        media=[
            {
                "url": "https://cdn.example.com/i.pdf",
                "content_type": "application/pdf",
                "filename": "invoice.pdf",
            }
        ],
    )
    MetaProvider(channel).send(message, to_phone="+15550002222")
    (sent,) = provider_stub.sent
    assert sent["type"] == "document"
    assert sent["document"] == {
        "link": "https://cdn.example.com/i.pdf",
        "caption": "Your invoice",
        "filename": "invoice.pdf",
    }


def test_send_template_with_variables(channel, provider_stub):
    with tenant_context(channel.tenant):
        template = MessageTemplateFactory(
            tenant=channel.tenant,
            channel=channel,
            name="order_ready",
            language="en_US",
            variables=["1", "2"],
            components=[{"type": "BODY", "text": "Hello {{1}}, your order {{2}} is ready."}],
        )
    message = outbound(
        channel, body="", template=template, template_variables={"2": "A-17", "1": "Ana"}
    )
    MetaProvider(channel).send(message, to_phone="+15550002222")
    (sent,) = provider_stub.sent
    assert sent["type"] == "template"
    assert sent["template"] == {
        "name": "order_ready",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-17"}],
            }
        ],
    }


def test_send_template_with_named_variables_and_text_header(channel, provider_stub):
    with tenant_context(channel.tenant):
        template = MessageTemplateFactory(
            tenant=channel.tenant,
            channel=channel,
            name="reminder",
            language="pt_BR",
            variables=["clinic", "name"],
            components=[
                {"type": "HEADER", "format": "TEXT", "text": "{{clinic}}"},
                {"type": "BODY", "text": "Olá {{name}}!"},
            ],
        )
    message = outbound(
        channel, body="", template=template, template_variables={"clinic": "Alpha", "name": "Ana"}
    )
    MetaProvider(channel).send(message, to_phone="+15550002222")
    components = provider_stub.sent[0]["template"]["components"]
    assert components == [
        {
            "type": "header",
            "parameters": [{"type": "text", "text": "Alpha", "parameter_name": "clinic"}],
        },
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana", "parameter_name": "name"}],
        },
    ]


def test_send_template_missing_variable_is_permanent(channel, provider_stub):
    with tenant_context(channel.tenant):
        template = MessageTemplateFactory(tenant=channel.tenant, channel=channel)
    message = outbound(channel, body="", template=template, template_variables={"1": "Ana"})
    with pytest.raises(ProviderError) as info:
        MetaProvider(channel).send(message, to_phone="+15550002222")
    assert info.value.permanent
    assert "{{2}}" in info.value.reason
    assert provider_stub.sent == []


@pytest.mark.parametrize(
    ("code", "permanent", "words"),
    [
        (131050, True, "stopped marketing messages"),
        (131047, True, "24 hours"),
        (131026, True, "could not be delivered"),
        (190, True, "access token"),
        (130429, False, "throughput"),
        (131000, False, "internal error"),
    ],
)
def test_error_mapping(channel, provider_stub, code, permanent, words):
    provider_stub.fail_permanently(code=code)
    with pytest.raises(ProviderError) as info:
        MetaProvider(channel).send(outbound(channel, body="x"), to_phone="+15550002222")
    assert info.value.permanent is permanent
    assert info.value.code == str(code)
    assert words in info.value.reason
    assert not info.value.ambiguous


def test_bad_token_is_permanent(channel, provider_stub):
    channel.meta_access_token = "revoked"
    with pytest.raises(ProviderError) as info:
        MetaProvider(channel).send(outbound(channel, body="x"), to_phone="+15550002222")
    assert info.value.permanent
    assert info.value.code == "190"


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_transient_then_succeeds(channel, provider_stub, status):
    provider_stub.fail_next(1, status=status)
    provider = MetaProvider(channel)
    message = outbound(channel, body="x")
    with pytest.raises(ProviderError) as info:
        provider.send(message, to_phone="+15550002222")
    assert not info.value.permanent
    provider.send(message, to_phone="+15550002222")
    assert len(provider_stub.sent) == 1


def test_timeout_after_sending_is_ambiguous(channel, provider_stub, monkeypatch):
    import httpx

    from channels_app.providers import meta as meta_module

    monkeypatch.setattr(meta_module, "TIMEOUT", httpx.Timeout(0.3, connect=2))
    provider_stub.delay(1.0, times=1)
    with pytest.raises(ProviderError) as info:
        MetaProvider(channel).send(outbound(channel, body="x"), to_phone="+15550002222")
    assert info.value.ambiguous
    assert len(provider_stub.sent) == 1


def test_connection_refused_is_transient(channel, settings):
    settings.META_GRAPH_BASE_URL = "http://127.0.0.1:9"
    with pytest.raises(ProviderError) as info:
        MetaProvider(channel).send(outbound(channel, body="x"), to_phone="+15550002222")
    assert not info.value.permanent
    assert not info.value.ambiguous


# --- console --------------------------------------------------------------------------------


def test_test_connection(channel):
    check = MetaProvider(channel).test_connection()
    assert check.ok
    assert check.detail == "Connected to +1 555-000-1111 (Alpha Dental), quality rating GREEN."


def test_test_connection_failures_in_words(channel, settings):
    channel.meta_access_token = "revoked"
    check = MetaProvider(channel).test_connection()
    assert not check.ok
    assert "refused the access token" in check.detail
    channel.meta_access_token = "EAAG-meta-access-token"
    channel.meta_phone_number_id = "404404"
    check = MetaProvider(channel).test_connection()
    assert not check.ok
    assert "does not know the phone number ID 404404" in check.detail
    settings.META_GRAPH_BASE_URL = "http://127.0.0.1:9"
    check = MetaProvider(channel).test_connection()
    assert not check.ok
    assert "Could not connect to Meta" in check.detail


def test_fetch_templates_paged(channel, provider_stub):
    waba = channel.meta_business_account_id
    for index in range(120):
        provider_stub.meta_template(waba, name=f"t{index:03d}", body="Hi {{1}}")
    provider_stub.meta_template(
        waba, name="promo", body="Sale for {{1}} until {{2}}", category="MARKETING",
        status="REJECTED", rejected_reason="INCORRECT_CATEGORY", language="pt_BR",
    )  # fmt: skip
    templates = MetaProvider(channel).fetch_templates()
    assert len(templates) == 121
    promo = templates[-1]
    assert promo.name == "promo"
    assert promo.language == "pt_BR"
    assert promo.status == MessageTemplate.Status.REJECTED
    assert promo.category == MessageTemplate.Category.MARKETING
    assert promo.body == "Sale for {{1}} until {{2}}"
    assert promo.variables == ("1", "2")
    assert promo.rejection_reason == "INCORRECT_CATEGORY"
    assert promo.components[0]["type"] == "BODY"
    assert templates[0].status == MessageTemplate.Status.APPROVED
    assert templates[0].category == MessageTemplate.Category.UTILITY


def test_fetch_media_two_steps(channel, provider_stub):
    media_id = provider_stub.meta_media(b"OggS-voice", "audio/ogg")
    content = MetaProvider(channel).fetch_media(
        {"provider_media_id": media_id, "content_type": "audio/ogg"}
    )
    assert content.content == b"OggS-voice"
    assert content.content_type == "audio/ogg"
    assert hashlib.sha256(content.content).hexdigest()
    with pytest.raises(ProviderError):
        MetaProvider(channel).fetch_media({"provider_media_id": "123456"})
