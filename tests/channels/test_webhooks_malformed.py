"""Whatever a correctly signed webhook contains, the answer is 200 or a 400 that says why,
never a server error (property-based: thousands of generated bodies over the runs)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from django.conf import settings
from django.urls import reverse
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from channels_app.providers.sandbox import sign
from tests.factories import ChannelFactory
from tests.fakes.webhooks import FORM, encode_form, meta_signature, twilio_signature

pytestmark = pytest.mark.django_db

EXAMPLES = hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)

# Bodies that look like each provider's, with every field possibly wrong.
sandbox_events = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "status", "other"])},
        optional={
            "id": st.text(max_size=140) | json_values,
            "from": st.text(max_size=45) | st.from_regex(r"\+?[0-9 ]{0,20}", fullmatch=True),
            "body": st.text(max_size=50) | json_values,
            "status": st.sampled_from(["sent", "delivered", "read", "failed", "bogus"]),
            "media": json_values,
            "name": json_values,
        },
    )
    | json_values,
    max_size=5,
)
sandbox_bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | sandbox_events.map(lambda e: json.dumps({"events": e}).encode())
)

twilio_forms = st.dictionaries(
    st.sampled_from(
        [
            "MessageSid",
            "SmsSid",
            "From",
            "To",
            "Body",
            "NumMedia",
            "MediaUrl0",
            "MediaContentType0",
            "MessageStatus",
            "SmsStatus",
            "ErrorCode",
            "ProfileName",
            "Latitude",
            "Longitude",
            "AccountSid",
            "RawDlrDoneDate",
        ]
    ),
    st.text(max_size=70)
    | st.from_regex(r"(whatsapp:)?\+?[0-9]{0,16}", fullmatch=True)
    | st.sampled_from(["queued", "sent", "delivered", "read", "failed", "received", "-1", "30"]),
    max_size=8,
)

meta_bodies = (
    st.binary(max_size=200)
    | json_values.map(
        lambda v: json.dumps(
            {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": v}]}]}
        ).encode()
    )
    | json_values.map(lambda v: json.dumps({"entry": v}).encode())
)


def assert_answered(response):
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        reason = response.json()["error"]
        assert isinstance(reason, str) and reason.strip()


@given(body=sandbox_bodies)
@EXAMPLES
def test_any_signed_sandbox_body_gets_200_or_a_reason(client, tenant_a, body):
    channel = ChannelFactory(tenant=tenant_a)
    response = client.post(
        reverse("hook_sandbox", kwargs={"token": channel.webhook_token}),
        body,
        content_type="application/json",
        headers={"X-Sandbox-Signature": sign(channel.sandbox_secret, body)},
    )
    assert_answered(response)


@given(params=twilio_forms)
@EXAMPLES
# PostgreSQL text cannot hold a NUL character: one in any field must not become a 500.
@example(params={"SmsSid": "0", "MessageStatus": "QUEUED", "ErrorCode": "\x00"})
@example(params={"MessageSid": "SM\x00", "From": "+15550001111", "Body": "a\x00b"})
@example(params={"MessageSid": "SM1", "From": "+1555000\x002", "ProfileName": "\x00"})
def test_any_signed_twilio_form_gets_200_or_a_reason(client, tenant_a, params):
    channel = ChannelFactory(tenant=tenant_a, twilio=True)
    path = reverse("hook_twilio_inbound", kwargs={"token": channel.webhook_token})
    signature = twilio_signature(settings.PUBLIC_BASE_URL + path, channel.twilio_auth_token, params)
    response = client.post(
        path,
        encode_form(params),
        content_type=FORM,
        headers={"X-Twilio-Signature": signature},
    )
    assert_answered(response)


@given(body=st.binary(max_size=200))
@EXAMPLES
def test_any_signed_twilio_bytes_get_200_or_a_reason(client, tenant_a, body):
    channel = ChannelFactory(tenant=tenant_a, twilio=True)
    path = reverse("hook_twilio_status", kwargs={"token": channel.webhook_token})
    try:
        params = dict(parse_qsl(body.decode()))
    except UnicodeDecodeError:
        params = {}
    signature = twilio_signature(settings.PUBLIC_BASE_URL + path, channel.twilio_auth_token, params)
    response = client.post(path, body, content_type=FORM, headers={"X-Twilio-Signature": signature})
    # Bytes that are not form data cannot carry a valid signature: 403 is right for them.
    assert response.status_code in (200, 400, 403), response.content
    assert response.status_code == 200 or response.json()["error"]


@given(body=meta_bodies)
@EXAMPLES
def test_any_signed_meta_body_gets_200_or_a_reason(client, tenant_a, body):
    channel = ChannelFactory(tenant=tenant_a, meta=True)
    response = client.post(
        reverse("hook_meta", kwargs={"token": channel.webhook_token}),
        body,
        content_type="application/json",
        headers={"X-Hub-Signature-256": meta_signature(channel.meta_app_secret, body)},
    )
    assert_answered(response)


def test_a_nul_character_is_dropped_and_the_rest_of_the_message_kept(client, tenant_a):
    from channels_app.models import Message
    from tenants.context import tenant_context

    channel = ChannelFactory(tenant=tenant_a, twilio=True)
    path = reverse("hook_twilio_inbound", kwargs={"token": channel.webhook_token})
    params = {"MessageSid": "SM\x00nul", "From": "+15550001111", "Body": "see you\x00 at 3"}
    signature = twilio_signature(settings.PUBLIC_BASE_URL + path, channel.twilio_auth_token, params)

    response = client.post(
        path, encode_form(params), content_type=FORM, headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 200
    with tenant_context(tenant_a):
        message = Message.objects.get(provider_message_id="SMnul")
    assert message.body == "see you at 3"
