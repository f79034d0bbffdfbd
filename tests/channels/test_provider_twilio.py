"""The Twilio adapter against the local Twilio stub, with the official client and validator."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from channels_app.models import Message, MessageTemplate
from channels_app.providers import twilio as twilio_module
from channels_app.providers.base import (
    InboundMessage,
    ProviderError,
    StatusUpdate,
    WebhookRejected,
    WebhookRequest,
    provider_for,
)
from channels_app.providers.twilio import TwilioProvider, api_url
from tenants.context import tenant_context
from tests.factories import MessageFactory, MessageTemplateFactory
from tests.fakes import twilio_inbound_message, twilio_status_callback
from tests.fakes.webhooks import FORM, encode_form

pytestmark = pytest.mark.django_db

PUBLIC = "https://app.example.com"
MEDIA = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/"


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.PUBLIC_BASE_URL = PUBLIC
    twilio_module._SUBACCOUNT_TOKENS.clear()
    yield
    twilio_module._SUBACCOUNT_TOKENS.clear()


@pytest.fixture
def channel(twilio_channel):
    # `twilio_channel` and `sms_channel` (tests/channels/sending_fixtures.py) are channels whose
    # account the provider stub knows.
    return twilio_channel


def hook_path(channel, suffix=""):
    return f"/hooks/twilio/{channel.webhook_token}/{suffix}"


def webhook_request(path, params, headers, **extra) -> WebhookRequest:
    """The request as Django sees it behind the TLS proxy (http, internal host)."""
    django_request = RequestFactory().post(
        path, encode_form(params), content_type=FORM, headers=headers, **extra
    )
    return WebhookRequest.from_django(django_request)


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


# --- routing to the stub ------------------------------------------------------------------


def test_provider_for_twilio_kinds(channel, sms_channel):
    assert isinstance(provider_for(channel), TwilioProvider)
    assert isinstance(provider_for(sms_channel), TwilioProvider)


def test_api_url_rewrites_only_when_configured(settings):
    settings.TWILIO_API_BASE_URL = ""
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1.json"
    assert api_url(url) == url
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"
    assert api_url(url) == "http://127.0.0.1:9/twilio/api/2010-04-01/Accounts/AC1.json"
    assert api_url("https://api.dublin.ie1.twilio.com/x") == "http://127.0.0.1:9/twilio/api/x"
    assert api_url("https://content.twilio.com/v1/ContentAndApprovals").startswith(
        "http://127.0.0.1:9/twilio/content/"
    )


# --- signatures -----------------------------------------------------------------------------


def test_valid_signature_behind_a_proxy(channel):
    path = hook_path(channel)
    params, headers = twilio_inbound_message(
        PUBLIC + path,
        channel.twilio_auth_token,
        from_="+15550001111",
        to=channel.twilio_from,
        body="Hi",
        account_sid=channel.twilio_account_sid,
    )
    request = webhook_request(
        path, params, headers, HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="proxy"
    )
    TwilioProvider(channel).verify(request)
    # The URL Django would rebuild (http://testserver/…) is not what Twilio signed.
    django_request = RequestFactory().post(
        path, encode_form(params), content_type=FORM, headers=headers
    )
    from twilio.request_validator import RequestValidator

    assert not RequestValidator(channel.twilio_auth_token).validate(
        django_request.build_absolute_uri(), params, headers["X-Twilio-Signature"]
    )


def test_signature_covers_query_string(channel):
    path = hook_path(channel) + "?kind=inbound&x=%2Fa"
    params, headers = twilio_inbound_message(
        PUBLIC + path, channel.twilio_auth_token, from_="+15550001111", to="+1555", body="Hi"
    )
    TwilioProvider(channel).verify(webhook_request(path, params, headers))
    with pytest.raises(WebhookRejected):
        TwilioProvider(channel).verify(webhook_request(hook_path(channel), params, headers))


def test_forged_and_missing_signatures_are_rejected(channel):
    path = hook_path(channel)
    params, headers = twilio_inbound_message(
        PUBLIC + path, "not-the-token", from_="+15550001111", to="+1555", body="Hi",
        account_sid=channel.twilio_account_sid,
    )  # fmt: skip
    with pytest.raises(WebhookRejected) as info:
        TwilioProvider(channel).verify(webhook_request(path, params, headers))
    assert info.value.status_code == 403
    assert "does not match" in info.value.reason

    good_params, good_headers = twilio_inbound_message(
        PUBLIC + path, channel.twilio_auth_token, from_="+15550001111", to="+1555", body="Hi",
        account_sid=channel.twilio_account_sid,
    )  # fmt: skip
    tampered = dict(good_params, Body="Send me everything")
    with pytest.raises(WebhookRejected):
        TwilioProvider(channel).verify(webhook_request(path, tampered, good_headers))

    del good_headers["X-Twilio-Signature"]
    with pytest.raises(WebhookRejected) as info:
        TwilioProvider(channel).verify(webhook_request(path, good_params, good_headers))
    assert info.value.reason == "missing X-Twilio-Signature"


def test_messaging_service_sender_in_a_subaccount(channel, provider_stub):
    """A sender inside a Messaging Service of a subaccount: signed with the subaccount's
    token, AccountSid is the subaccount's. The parent's credentials read that token."""
    sub_sid, sub_token = provider_stub.twilio_account(owner_account_sid=channel.twilio_account_sid)
    path = hook_path(channel)
    params, headers = twilio_inbound_message(
        PUBLIC + path, sub_token, from_="+15550001111", to="+15550009999", body="Hi",
        account_sid=sub_sid, messaging_service_sid="MG" + "5" * 32,
    )  # fmt: skip
    provider = TwilioProvider(channel)
    provider.verify(webhook_request(path, params, headers))
    # The token is remembered: a second webhook needs no lookup.
    lookups = len(provider_stub.requests)
    provider.verify(webhook_request(path, params, headers))
    assert len(provider_stub.requests) == lookups
    # Status callbacks of messages sent through the service validate too.
    params, headers = twilio_status_callback(
        PUBLIC + hook_path(channel, "status/"), sub_token, message_sid="SM" + "1" * 32,
        status="delivered", account_sid=sub_sid, messaging_service_sid="MG" + "5" * 32,
    )  # fmt: skip
    provider.verify(webhook_request(hook_path(channel, "status/"), params, headers))


def test_messaging_service_in_the_channel_account(channel):
    channel.twilio_messaging_service_sid = "MG" + "6" * 32
    path = hook_path(channel)
    params, headers = twilio_inbound_message(
        PUBLIC + path, channel.twilio_auth_token, from_="+15550001111", to="+15550009999",
        body="Hi", account_sid=channel.twilio_account_sid,
        messaging_service_sid=channel.twilio_messaging_service_sid,
    )  # fmt: skip
    TwilioProvider(channel).verify(webhook_request(path, params, headers))


def test_foreign_account_is_not_trusted(channel, provider_stub):
    other_sid, other_token = provider_stub.twilio_account()  # not a subaccount
    path = hook_path(channel)
    params, headers = twilio_inbound_message(
        PUBLIC + path, other_token, from_="+15550001111", to="+1555", body="Hi",
        account_sid=other_sid,
    )  # fmt: skip
    with pytest.raises(WebhookRejected) as info:
        TwilioProvider(channel).verify(webhook_request(path, params, headers))
    assert "neither the channel's account nor one of its subaccounts" in info.value.reason


def test_shared_key_signature(channel):
    path = hook_path(channel)
    params, headers = twilio_inbound_message(
        PUBLIC + path, channel.twilio_auth_token, from_="+15550001111", to="+1555", body="Hi",
        shared_key=("webhooks_sharedkey_01", "shared-secret"),
    )  # fmt: skip
    with pytest.raises(WebhookRejected) as info:
        TwilioProvider(channel).verify(webhook_request(path, params, headers))
    assert "shared key" in info.value.reason
    channel.twilio_webhook_signing_secret = "shared-secret"
    TwilioProvider(channel).verify(webhook_request(path, params, headers))


# --- parsing --------------------------------------------------------------------------------


def test_parse_whatsapp_inbound_with_media(channel):
    params, headers = twilio_inbound_message(
        PUBLIC + "/x", "t", from_="+15550001111", to="+1555", body="Look",
        profile_name="Ana Lima",
        media=[(MEDIA + "ME1", "image/jpeg"), (MEDIA + "ME2", "application/pdf")],
    )  # fmt: skip
    (event,) = TwilioProvider(channel).parse(webhook_request("/x", params, headers))
    assert isinstance(event, InboundMessage)
    assert event.provider_message_id == params["MessageSid"]
    assert event.from_phone == "+15550001111"
    assert event.body == "Look"
    assert event.profile_name == "Ana Lima"
    assert [(m.url[-3:], m.content_type) for m in event.media] == [
        ("ME1", "image/jpeg"),
        ("ME2", "application/pdf"),
    ]


def test_parse_sms_inbound(sms_channel):
    params, headers = twilio_inbound_message(
        PUBLIC + "/x", "t", from_="+15550001111", to="+1555", body="STOP", channel="sms"
    )
    (event,) = TwilioProvider(sms_channel).parse(webhook_request("/x", params, headers))
    assert event.from_phone == "+15550001111"
    assert event.body == "STOP"
    assert event.media == ()


def test_parse_location(channel):
    params, headers = twilio_inbound_message(
        PUBLIC + "/x", "t", from_="+15550001111", to="+1555", body="",
        extra={"Latitude": "38.7", "Longitude": "-9.1", "Label": "Clinic"},
    )  # fmt: skip
    (event,) = TwilioProvider(channel).parse(webhook_request("/x", params, headers))
    assert event.body == "Location: Clinic (38.7, -9.1)"


TWILIO_STATUSES = {
    "accepted": Message.Status.ACCEPTED,
    "scheduled": Message.Status.ACCEPTED,
    "canceled": Message.Status.CANCELED,
    "queued": Message.Status.ACCEPTED,
    "sending": Message.Status.ACCEPTED,
    "sent": Message.Status.SENT,
    "failed": Message.Status.FAILED,
    "delivered": Message.Status.DELIVERED,
    "undelivered": Message.Status.UNDELIVERED,
    "receiving": Message.Status.RECEIVED,
    "received": Message.Status.RECEIVED,
    "read": Message.Status.READ,
    "partially_delivered": Message.Status.SENT,
}


@pytest.mark.parametrize(("twilio_status", "ours"), TWILIO_STATUSES.items())
def test_parse_every_status(channel, twilio_status, ours):
    params, headers = twilio_status_callback(
        PUBLIC + "/x", "t", message_sid="SM" + "7" * 32, status=twilio_status
    )
    (event,) = TwilioProvider(channel).parse(webhook_request("/x", params, headers))
    assert isinstance(event, StatusUpdate)
    assert event.provider_message_id == "SM" + "7" * 32
    assert event.status == ours
    assert event.provider_status == twilio_status
    assert event.error_code == ""


def test_parse_failed_status_with_reason(sms_channel):
    params, headers = twilio_status_callback(
        PUBLIC + "/x", "t", message_sid="SM" + "7" * 32, status="undelivered",
        error_code=30007, channel="sms",
    )  # fmt: skip
    (event,) = TwilioProvider(sms_channel).parse(webhook_request("/x", params, headers))
    assert event.status == Message.Status.UNDELIVERED
    assert event.error_code == "30007"
    assert "spam" in event.error_reason


def test_parse_sms_delivery_receipt_time(sms_channel):
    params, headers = twilio_status_callback(
        PUBLIC + "/x", "t", message_sid="SM" + "7" * 32, status="delivered", channel="sms",
        extra={"RawDlrDoneDate": "2403151230"},
    )  # fmt: skip
    (event,) = TwilioProvider(sms_channel).parse(webhook_request("/x", params, headers))
    assert event.timestamp.isoformat() == "2024-03-15T12:30:00+00:00"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"From=%2B1555&Body=x", "no MessageSid"),
        (b"MessageSid=SM1&MessageStatus=exploded", "unknown MessageStatus"),
        (b"MessageSid=SM1&From=%2B1&NumMedia=lots", "NumMedia is not a number"),
        (b"MessageSid=SM1&From=%2B1&NumMedia=1", "MediaUrl0 is missing"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_parse_malformed(channel, body, reason):
    request = WebhookRequest("POST", "/x", {}, body, FORM)
    with pytest.raises(WebhookRejected) as info:
        TwilioProvider(channel).parse(request)
    assert info.value.status_code == 400
    assert reason in info.value.reason


# --- sending --------------------------------------------------------------------------------


def test_send_text_exactly(channel, provider_stub):
    message = outbound(channel, body="Your appointment is confirmed.")
    result = TwilioProvider(channel).send(message, to_phone="+15550001111")
    assert result.provider_message_id.startswith("SM")
    assert result.status == Message.Status.ACCEPTED
    (sent,) = provider_stub.sent
    assert {k: v for k, v in sent.items() if k[0].isupper()} == {
        "To": "whatsapp:+15550001111",
        "From": "whatsapp:+14155238886",
        "Body": "Your appointment is confirmed.",
        "StatusCallback": f"{PUBLIC}/hooks/twilio/{channel.webhook_token}/status/",
    }
    assert sent["account_sid"] == channel.twilio_account_sid
    assert sent["message_id"] == result.provider_message_id


def test_send_sms_with_media(sms_channel, provider_stub):
    message = outbound(
        sms_channel,
        body="Here is the map",
        media=[{"url": "https://cdn.example.com/map.png", "content_type": "image/png"}],
    )
    TwilioProvider(sms_channel).send(message, to_phone="+15550001111")
    (sent,) = provider_stub.sent
    assert sent["To"] == "+15550001111"
    assert sent["From"] == "+14155550100"
    assert sent["MediaUrl"] == ["https://cdn.example.com/map.png"]
    assert sent["Body"] == "Here is the map"


def test_send_template_through_messaging_service(channel, provider_stub):
    channel.twilio_messaging_service_sid = "MG" + "8" * 32
    with tenant_context(channel.tenant):
        template = MessageTemplateFactory(tenant=channel.tenant, channel=channel)
    message = outbound(
        channel, body="", template=template, template_variables={"1": "Ana", "2": "A-17"}
    )
    result = TwilioProvider(channel).send(message, to_phone="+15550001111")
    assert result.status == Message.Status.ACCEPTED
    (sent,) = provider_stub.sent
    assert "From" not in sent and "Body" not in sent
    assert sent["MessagingServiceSid"] == "MG" + "8" * 32
    assert sent["ContentSid"] == template.provider_template_id
    assert json.loads(sent["ContentVariables"]) == {"1": "Ana", "2": "A-17"}


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (21610, "unsubscribed"),
        (21211, "not valid"),
        (63016, "24-hour window"),
        (21408, "geo permissions"),
        (21614, "not a mobile number"),
        (63003, "no WhatsApp account"),
    ],
)
def test_permanent_errors(channel, provider_stub, code, words):
    provider_stub.fail_permanently(code=code)
    with pytest.raises(ProviderError) as info:
        TwilioProvider(channel).send(outbound(channel, body="x"), to_phone="+15550001111")
    assert info.value.permanent
    assert not info.value.ambiguous
    assert info.value.code == str(code)
    assert words in info.value.reason
    assert provider_stub.sent == []


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_errors(channel, provider_stub, status):
    provider_stub.fail_next(1, status=status)
    provider = TwilioProvider(channel)
    message = outbound(channel, body="x")
    with pytest.raises(ProviderError) as info:
        provider.send(message, to_phone="+15550001111")
    assert not info.value.permanent
    assert not info.value.ambiguous
    provider.send(message, to_phone="+15550001111")
    assert len(provider_stub.sent) == 1


def test_connection_refused_is_transient(channel, settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"
    with pytest.raises(ProviderError) as info:
        TwilioProvider(channel).send(outbound(channel, body="x"), to_phone="+15550001111")
    assert not info.value.permanent
    assert not info.value.ambiguous


def test_timeout_after_sending_is_ambiguous_and_found_again(channel, provider_stub, monkeypatch):
    monkeypatch.setattr(twilio_module, "READ_TIMEOUT", 0.3)
    provider_stub.delay(1.0, times=1)
    message = outbound(channel, body="Exactly once, please")
    provider = TwilioProvider(channel)
    with pytest.raises(ProviderError) as info:
        provider.send(message, to_phone="+15550001111")
    assert info.value.ambiguous
    assert len(provider_stub.sent) == 1  # it did reach Twilio
    monkeypatch.undo()  # the lookup gets the usual timeout: a loaded machine is not a lost send
    with tenant_context(channel.tenant):
        found = provider.find_sent(message, to_phone="+15550001111")
    assert found == provider_stub.sent[0]["message_id"]


def test_find_sent_ignores_messages_already_recorded(channel, provider_stub):
    provider = TwilioProvider(channel)
    first = outbound(channel, body="Same words")
    result = provider.send(first, to_phone="+15550001111")
    with tenant_context(channel.tenant):
        Message.objects.filter(pk=first.pk).update(provider_message_id=result.provider_message_id)
        second = outbound(channel, body="Same words")
        assert provider.find_sent(second, to_phone="+15550001111") is None
        other = outbound(channel, body="Never sent")
        assert provider.find_sent(other, to_phone="+15550001111") is None


# --- console --------------------------------------------------------------------------------


def test_test_connection(channel, provider_stub):
    check = TwilioProvider(channel).test_connection()
    assert check.ok
    assert "Sales OS test account" in check.detail
    channel.twilio_auth_token = "wrong-token"
    check = TwilioProvider(channel).test_connection()
    assert not check.ok
    assert "refused the account SID and auth token" in check.detail


def test_test_connection_unreachable(channel, settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"
    check = TwilioProvider(channel).test_connection()
    assert not check.ok
    assert check.detail.startswith("Could not reach Twilio")


def test_fetch_templates(channel, provider_stub):
    sid = channel.twilio_account_sid
    provider_stub.twilio_content(
        sid, friendly_name="appointment_reminder", body="Hi {{1}}, see you at {{2}}.",
        variables={"2": "10:00", "1": "Ana"}, language="en",
    )  # fmt: skip
    provider_stub.twilio_content(
        sid, friendly_name="promo", body="Sale!", category="MARKETING", status="rejected",
        rejection_reason="Promotional content in a utility template",
    )  # fmt: skip
    provider_stub.twilio_content(sid, friendly_name="draft", body="Draft", status="unsubmitted")
    templates = {t.name: t for t in TwilioProvider(channel).fetch_templates()}
    reminder = templates["appointment_reminder"]
    assert reminder.status == MessageTemplate.Status.APPROVED
    assert reminder.category == MessageTemplate.Category.UTILITY
    assert reminder.body == "Hi {{1}}, see you at {{2}}."
    assert reminder.variables == ("1", "2")
    assert reminder.provider_template_id.startswith("HX")
    assert reminder.language == "en"
    promo = templates["promo"]
    assert promo.status == MessageTemplate.Status.REJECTED
    assert promo.category == MessageTemplate.Category.MARKETING
    assert promo.rejection_reason == "Promotional content in a utility template"
    assert templates["draft"].status == MessageTemplate.Status.PENDING


def test_fetch_templates_many_pages(channel, provider_stub):
    for index in range(230):
        provider_stub.twilio_content(
            channel.twilio_account_sid, friendly_name=f"t{index:03d}", body="x"
        )
    templates = TwilioProvider(channel).fetch_templates()
    assert len(templates) == 230


def test_fetch_media_with_account_credentials(channel, provider_stub):
    url = provider_stub.twilio_media(channel.twilio_account_sid, b"JPEGDATA", "image/jpeg")
    content = TwilioProvider(channel).fetch_media({"url": url, "content_type": "image/jpeg"})
    assert content.content == b"JPEGDATA"
    assert content.content_type == "image/jpeg"


def test_fetch_media_refuses_foreign_urls(channel):
    with pytest.raises(ProviderError) as info:
        TwilioProvider(channel).fetch_media({"url": "https://evil.example.com/x.jpg"})
    assert info.value.permanent
