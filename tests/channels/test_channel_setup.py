"""Channel setup pages: connecting each kind, form errors, secrets, webhook addresses, health."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from channels_app.models import Channel
from channels_app.services import channels as services
from privacy.models import ConsentEvent
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import (
    ChannelFactory,
    ConsentEventFactory,
    ConversationFactory,
    MessageFactory,
    member,
)

pytestmark = pytest.mark.django_db

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
SERVICE_SID = "MG" + "fedcba9876543210" * 2
AUTH_TOKEN = "auth-token-never-shown-4f1c9a7e"
ACCESS_TOKEN = "EAAG-access-token-never-shown-77c1"
APP_SECRET = "app-secret-never-shown-93aa"


def url(name, tenant, **kwargs):
    return reverse(f"channels:{name}", kwargs={"tenant_slug": tenant.slug, **kwargs})


def add_url(tenant, kind):
    return url("channel_add", tenant) + f"?kind={kind}"


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


@pytest.fixture
def agent_client(client, tenant_a):
    client.force_login(member(tenant_a, role=Role.AGENT))
    return client


def twilio_data(**overrides):
    data = {
        "kind": "twilio_whatsapp",
        "name": "WhatsApp main",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": "+1 415 523 8886",
        "twilio_messaging_service_sid": "",
        "rate_limit_per_second": "",
    }
    return {**data, **overrides}


def meta_data(**overrides):
    data = {
        "kind": "meta_whatsapp",
        "name": "Cloud API",
        "meta_phone_number_id": "106540352242922",
        "meta_business_account_id": "102290129340398",
        "meta_access_token": ACCESS_TOKEN,
        "meta_app_secret": APP_SECRET,
        "meta_verify_token": "my-verify-token-123",
        "sender": "",
        "rate_limit_per_second": "",
    }
    return {**data, **overrides}


def only_channel(tenant) -> Channel:
    with tenant_context(tenant):
        return Channel.objects.get()


def errors_of(response) -> dict:
    return response.context["form"].errors


# --- Connecting each kind -----------------------------------------------------------------


def test_an_owner_connects_a_twilio_whatsapp_sender(owner_client, tenant_a):
    response = owner_client.post(add_url(tenant_a, "twilio_whatsapp"), twilio_data())

    channel = only_channel(tenant_a)
    assert response.status_code == 302
    assert response["Location"] == url("channel", tenant_a, channel_id=channel.pk)
    assert channel.kind == Channel.Kind.TWILIO_WHATSAPP
    assert channel.twilio_account_sid == ACCOUNT_SID
    assert channel.twilio_auth_token == AUTH_TOKEN
    assert channel.twilio_from == "+14155238886"  # normalised to E.164
    assert channel.sender == "+14155238886"
    assert channel.is_active


def test_a_messaging_service_alone_is_a_sender(owner_client, tenant_a):
    owner_client.post(
        add_url(tenant_a, "twilio_whatsapp"),
        twilio_data(twilio_from="", twilio_messaging_service_sid=SERVICE_SID),
    )

    channel = only_channel(tenant_a)
    assert channel.twilio_messaging_service_sid == SERVICE_SID
    assert channel.sender == SERVICE_SID


def test_twilio_sms_confirms_opt_outs_itself_by_default(owner_client, tenant_a):
    page = owner_client.get(add_url(tenant_a, "twilio_sms")).content.decode()
    assert "Twilio sends its own STOP confirmation" in page
    assert re.search(r'<input[^>]*name="provider_confirms_opt_out"[^>]*checked', page)

    owner_client.post(
        add_url(tenant_a, "twilio_sms"),
        twilio_data(kind="twilio_sms", provider_confirms_opt_out="on"),
    )

    channel = only_channel(tenant_a)
    assert channel.kind == Channel.Kind.TWILIO_SMS
    assert channel.provider_confirms_opt_out is True
    assert channel.medium == "sms"


def test_twilio_sms_without_provider_confirmation(owner_client, tenant_a):
    owner_client.post(add_url(tenant_a, "twilio_sms"), twilio_data(kind="twilio_sms"))

    assert only_channel(tenant_a).provider_confirms_opt_out is False


def test_the_whatsapp_form_has_no_opt_out_checkbox(owner_client, tenant_a):
    page = owner_client.get(add_url(tenant_a, "twilio_whatsapp")).content.decode()

    assert "provider_confirms_opt_out" not in page


def test_an_owner_connects_a_meta_cloud_api_number(owner_client, tenant_a):
    response = owner_client.post(
        add_url(tenant_a, "meta_whatsapp"), meta_data(sender="+1 555 000 1111")
    )

    channel = only_channel(tenant_a)
    assert response.status_code == 302
    assert channel.kind == Channel.Kind.META_WHATSAPP
    assert channel.meta_phone_number_id == "106540352242922"
    assert channel.meta_access_token == ACCESS_TOKEN
    assert channel.meta_app_secret == APP_SECRET
    assert channel.meta_verify_token == "my-verify-token-123"
    assert channel.sender == "+15550001111"


def test_the_meta_form_suggests_a_random_verify_token(owner_client, tenant_a):
    first = owner_client.get(add_url(tenant_a, "meta_whatsapp")).context["form"]
    second = owner_client.get(add_url(tenant_a, "meta_whatsapp")).context["form"]

    token = first.initial["meta_verify_token"]
    assert len(token) >= 24
    assert token != second.initial["meta_verify_token"]


def test_an_owner_adds_the_sandbox_with_a_generated_signing_key(owner_client, tenant_a):
    response = owner_client.post(
        add_url(tenant_a, "sandbox"), {"kind": "sandbox", "name": "Try it"}
    )

    channel = only_channel(tenant_a)
    assert response.status_code == 302
    assert channel.kind == Channel.Kind.SANDBOX
    assert len(channel.sandbox_secret) >= 32
    page = owner_client.get(response["Location"]).content.decode()
    assert url("simulator", tenant_a, channel_id=channel.pk) in page
    assert channel.sandbox_secret not in page


def test_the_add_page_without_a_kind_offers_every_kind(owner_client, tenant_a):
    page = owner_client.get(url("channel_add", tenant_a)).content.decode()

    for kind in Channel.Kind:
        assert f"?kind={kind.value}" in page
    assert owner_client.get(add_url(tenant_a, "carrier_pigeon")).status_code == 400


# --- Form errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"twilio_account_sid": "AB0123"}, "twilio_account_sid", "“AC” followed by 32"),
        ({"twilio_account_sid": "AC123"}, "twilio_account_sid", "“AC” followed by 32"),
        ({"twilio_account_sid": ""}, "twilio_account_sid", "required"),
        ({"twilio_auth_token": ""}, "twilio_auth_token", "required"),
        ({"twilio_from": "not a number"}, "twilio_from", "is not a phone number"),
        ({"twilio_from": "+1 555"}, "twilio_from", "not a possible phone number"),
        (
            {"twilio_from": "", "twilio_messaging_service_sid": ""},
            "twilio_from",
            "sender number, the messaging service SID, or both",
        ),
        (
            {"twilio_messaging_service_sid": "MGxyz"},
            "twilio_messaging_service_sid",
            "“MG” followed by 32",
        ),
        ({"name": "   "}, "name", "required"),
        ({"rate_limit_per_second": "0"}, "rate_limit_per_second", "greater than or equal to 1"),
        ({"rate_limit_per_second": "5000"}, "rate_limit_per_second", "less than or equal"),
    ],
    ids=[
        "sid-prefix",
        "sid-length",
        "sid-missing",
        "token-missing",
        "phone-garbage",
        "phone-impossible",
        "no-sender",
        "service-sid",
        "blank-name",
        "rate-zero",
        "rate-huge",
    ],
)
def test_twilio_form_errors(owner_client, tenant_a, overrides, field, words):
    response = owner_client.post(add_url(tenant_a, "twilio_whatsapp"), twilio_data(**overrides))

    assert response.status_code == 200
    assert words in " ".join(errors_of(response)[field])
    with tenant_context(tenant_a):
        assert not Channel.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"meta_app_secret": ""}, "meta_app_secret", "required"),
        ({"meta_access_token": ""}, "meta_access_token", "required"),
        ({"meta_phone_number_id": "12 34 ab"}, "meta_phone_number_id", "long numbers"),
        ({"meta_business_account_id": ""}, "meta_business_account_id", "required"),
        ({"meta_verify_token": "short"}, "meta_verify_token", "at least 8"),
        ({"meta_verify_token": ""}, "meta_verify_token", "required"),
        ({"sender": "12"}, "sender", "phone number"),
    ],
    ids=["no-app-secret", "no-token", "bad-id", "no-waba", "short-verify", "no-verify", "sender"],
)
def test_meta_form_errors(owner_client, tenant_a, overrides, field, words):
    response = owner_client.post(add_url(tenant_a, "meta_whatsapp"), meta_data(**overrides))

    assert response.status_code == 200
    assert words in " ".join(errors_of(response)[field])
    with tenant_context(tenant_a):
        assert not Channel.objects.exists()


def test_a_rejected_form_does_not_send_the_secrets_back(owner_client, tenant_a):
    response = owner_client.post(
        add_url(tenant_a, "meta_whatsapp"), meta_data(meta_phone_number_id="nope")
    )
    html = response.content.decode()

    assert response.status_code == 200
    assert ACCESS_TOKEN not in html
    assert APP_SECRET not in html


# --- Editing: secrets are never shown, empty keeps them ------------------------------------


def test_the_channel_page_never_shows_the_secrets(owner_client, tenant_a):
    twilio = ChannelFactory(tenant=tenant_a, twilio=True, twilio_auth_token=AUTH_TOKEN)
    meta = ChannelFactory(
        tenant=tenant_a, meta=True, meta_access_token=ACCESS_TOKEN, meta_app_secret=APP_SECRET
    )

    twilio_html = owner_client.get(url("channel", tenant_a, channel_id=twilio.pk)).content
    meta_html = owner_client.get(url("channel", tenant_a, channel_id=meta.pk)).content
    listing = owner_client.get(url("channels", tenant_a)).content

    for html in (twilio_html, meta_html, listing):
        for secret in (AUTH_TOKEN, ACCESS_TOKEN, APP_SECRET, AUTH_TOKEN[-4:] + '"'):
            assert secret.encode() not in html
    assert b'type="password"' in twilio_html
    assert "Set. Leave empty to keep the current value." in twilio_html.decode()
    assert "Not set." in twilio_html.decode()  # the optional webhook shared key


def test_an_empty_secret_on_edit_keeps_the_current_one(owner_client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a, twilio=True, twilio_auth_token=AUTH_TOKEN)

    response = owner_client.post(
        url("channel", tenant_a, channel_id=channel.pk),
        twilio_data(
            name="Renamed",
            twilio_account_sid=channel.twilio_account_sid,
            twilio_auth_token="",
            rate_limit_per_second="12",
            is_active="on",
        ),
    )

    channel = only_channel(tenant_a)
    assert response.status_code == 302
    assert channel.name == "Renamed"
    assert channel.twilio_auth_token == AUTH_TOKEN
    assert channel.rate_limit_per_second == 12
    assert channel.effective_rate_per_second == 12


def test_a_new_secret_on_edit_replaces_the_old_and_resets_the_check(owner_client, tenant_a):
    channel = ChannelFactory(
        tenant=tenant_a, twilio=True, connection_ok=True, connection_detail="Connected."
    )

    owner_client.post(
        url("channel", tenant_a, channel_id=channel.pk),
        twilio_data(
            twilio_account_sid=channel.twilio_account_sid,
            twilio_auth_token="a-brand-new-token",
            is_active="on",
        ),
    )

    channel = only_channel(tenant_a)
    assert channel.twilio_auth_token == "a-brand-new-token"
    assert channel.connection_ok is None and channel.connection_detail == ""


def test_the_edit_page_shows_the_provider_default_rate(owner_client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a, twilio_sms=True)

    html = owner_client.get(url("channel", tenant_a, channel_id=channel.pk)).content.decode()

    assert "default for this kind of channel, 1 per second" in html


def test_editing_keeps_health_counters_written_meanwhile(owner_client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    # The inbound pipeline counts a refused webhook while the owner edits the name.
    with tenant_context(tenant_a):
        Channel.objects.filter(pk=channel.pk).update(rejected_signatures=7)
        services.update_channel(channel=channel, name="New name")
    assert only_channel(tenant_a).rejected_signatures == 7


def test_switching_a_channel_off_and_on(owner_client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a)

    owner_client.post(url("channel_active", tenant_a, channel_id=channel.pk), {"active": "0"})
    assert only_channel(tenant_a).is_active is False
    page = owner_client.get(url("channels", tenant_a)).content.decode()
    assert "Switched off" in page

    owner_client.post(url("channel_active", tenant_a, channel_id=channel.pk), {"active": "1"})
    assert only_channel(tenant_a).is_active is True


def test_delete_asks_first_and_deletes_only_on_post(owner_client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    message = MessageFactory(
        tenant=tenant_a, conversation=ConversationFactory(tenant=tenant_a, channel=channel)
    )
    # The consent ledger outlives the channel: its proof stays, without the link.
    proof = ConsentEventFactory(
        tenant=tenant_a, contact=message.conversation.contact, channel=channel, message=message
    )

    confirm = owner_client.get(url("channel_delete", tenant_a, channel_id=channel.pk))
    assert confirm.status_code == 200
    assert "1 conversation" in confirm.content.decode()
    with tenant_context(tenant_a):
        assert Channel.objects.filter(pk=channel.pk).exists()

    response = owner_client.post(url("channel_delete", tenant_a, channel_id=channel.pk))

    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert not Channel.objects.filter(pk=channel.pk).exists()
        proof = ConsentEvent.objects.get(pk=proof.pk)
    assert proof.channel_id is None and proof.message_id is None


# --- Roles --------------------------------------------------------------------------------


def test_an_agent_may_look_but_not_add_or_change(agent_client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a, twilio=True, twilio_auth_token=AUTH_TOKEN)
    detail = url("channel", tenant_a, channel_id=channel.pk)

    listing = agent_client.get(url("channels", tenant_a))
    page = agent_client.get(detail)

    assert listing.status_code == 200 and channel.name in listing.content.decode()
    assert page.status_code == 200
    assert b'<form class="form form-wide"' not in page.content  # no settings form
    assert channel.webhook_token.encode() not in page.content  # addresses are for admins
    assert agent_client.get(add_url(tenant_a, "sandbox")).status_code == 403
    assert agent_client.post(add_url(tenant_a, "sandbox"), {"name": "x"}).status_code == 403
    assert agent_client.post(detail, twilio_data(name="Hijacked")).status_code == 403
    for name in (
        "channel_active",
        "channel_delete",
        "channel_rotate_webhook",
        "channel_test",
        "channel_sync_templates",
    ):
        assert agent_client.post(url(name, tenant_a, channel_id=channel.pk)).status_code == 403
    assert agent_client.post(url("messaging_policy", tenant_a), {}).status_code == 403
    channel = only_channel(tenant_a)
    assert channel.name != "Hijacked" and channel.is_active


def test_an_admin_may_change_channels(client, tenant_a):
    client.force_login(member(tenant_a, role=Role.ADMIN))

    response = client.post(add_url(tenant_a, "sandbox"), {"kind": "sandbox", "name": "Admin's"})

    assert response.status_code == 302


# --- Webhook addresses --------------------------------------------------------------------


def test_twilio_webhook_addresses_are_shown_to_paste(owner_client, tenant_a, settings):
    settings.PUBLIC_BASE_URL = "https://salesos.example"
    channel = ChannelFactory(tenant=tenant_a, twilio=True)

    html = owner_client.get(url("channel", tenant_a, channel_id=channel.pk)).content.decode()

    token = channel.webhook_token
    assert f'value="https://salesos.example/hooks/twilio/{token}/inbound/"' in html
    assert f'value="https://salesos.example/hooks/twilio/{token}/status/"' in html
    assert "readonly" in html


def test_meta_webhook_address_and_verify_token_are_shown(owner_client, tenant_a, settings):
    settings.PUBLIC_BASE_URL = "https://salesos.example"
    channel = ChannelFactory(tenant=tenant_a, meta=True, meta_verify_token="verify-me-please")

    html = owner_client.get(url("channel", tenant_a, channel_id=channel.pk)).content.decode()

    assert f'value="https://salesos.example/hooks/meta/{channel.webhook_token}/"' in html
    assert 'value="verify-me-please"' in html


def test_webhook_urls_match_the_hook_routes(tenant_a, settings):
    settings.PUBLIC_BASE_URL = "https://x.example"
    sandbox = ChannelFactory(tenant=tenant_a)
    sms = ChannelFactory(tenant=tenant_a, twilio_sms=True)

    assert list(services.webhook_urls(sandbox).values()) == [
        f"https://x.example/hooks/sandbox/{sandbox.webhook_token}/"
    ]
    assert len(services.webhook_urls(sms)) == 2


def test_rotating_the_webhook_address_retires_the_old_one(owner_client, client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    old = channel.webhook_token

    response = owner_client.post(
        url("channel_rotate_webhook", tenant_a, channel_id=channel.pk), follow=True
    )

    new = only_channel(tenant_a).webhook_token
    html = response.content.decode()
    assert new != old
    assert f"/hooks/sandbox/{new}/" in html and f"/hooks/sandbox/{old}/" not in html
    assert "the old ones no longer work" in html
    assert (
        client.post(f"/hooks/sandbox/{old}/", b"{}", content_type="application/json").status_code
        == 404
    )


# --- Connection check ---------------------------------------------------------------------


def test_the_sandbox_connection_always_works(owner_client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a)

    response = owner_client.post(url("channel_test", tenant_a, channel_id=channel.pk), follow=True)

    html = response.content.decode()
    assert "Connection works: The sandbox is built in" in html
    channel = only_channel(tenant_a)
    assert channel.connection_ok is True and channel.connection_checked_at is not None


def test_twilio_connection_success_is_shown(owner_client, tenant_a, provider_stub):
    sid, token = provider_stub.twilio_account(friendly_name="Alpha Dental Twilio")
    channel = ChannelFactory(
        tenant=tenant_a, twilio=True, twilio_account_sid=sid, twilio_auth_token=token
    )

    response = owner_client.post(url("channel_test", tenant_a, channel_id=channel.pk), follow=True)

    html = response.content.decode()
    assert "Connection works" in html and "Alpha Dental Twilio" in html
    assert only_channel(tenant_a).connection_ok is True


def test_twilio_refusing_the_token_is_explained(owner_client, tenant_a, provider_stub):
    sid, _ = provider_stub.twilio_account()
    channel = ChannelFactory(
        tenant=tenant_a, twilio=True, twilio_account_sid=sid, twilio_auth_token="wrong-token"
    )

    response = owner_client.post(url("channel_test", tenant_a, channel_id=channel.pk), follow=True)

    html = response.content.decode()
    assert "Connection failed: Twilio refused the account SID and auth token" in html
    channel = only_channel(tenant_a)
    assert channel.connection_ok is False
    assert "Twilio refused" in channel.connection_detail
    assert "wrong-token" not in html


def test_meta_connection_success_and_a_bad_token(owner_client, tenant_a, provider_stub):
    provider_stub.meta_phone_number("106540352242922", "EAAG-good", verified_name="Alpha Dental")
    good = ChannelFactory(
        tenant=tenant_a,
        meta=True,
        meta_phone_number_id="106540352242922",
        meta_access_token="EAAG-good",
    )
    bad = ChannelFactory(
        tenant=tenant_a,
        meta=True,
        meta_phone_number_id="106540352242922",
        meta_access_token="EAAG-revoked",
    )

    ok = owner_client.post(url("channel_test", tenant_a, channel_id=good.pk), follow=True)
    failed = owner_client.post(url("channel_test", tenant_a, channel_id=bad.pk), follow=True)

    assert "Connection works: Connected to" in ok.content.decode()
    assert "Alpha Dental" in ok.content.decode()
    assert "Connection failed: Meta refused the access token" in failed.content.decode()


def test_an_unreachable_provider_is_explained(owner_client, tenant_a, settings):
    settings.META_GRAPH_BASE_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    channel = ChannelFactory(tenant=tenant_a, meta=True)

    response = owner_client.post(url("channel_test", tenant_a, channel_id=channel.pk), follow=True)

    assert "Connection failed" in response.content.decode()
    assert only_channel(tenant_a).connection_ok is False


# --- Health panel -------------------------------------------------------------------------


def test_the_health_panel_shows_inbound_errors_and_rejections(owner_client, tenant_a):
    from django.utils import timezone

    channel = ChannelFactory(tenant=tenant_a)
    now = timezone.now()
    with tenant_context(tenant_a):
        Channel.objects.filter(pk=channel.pk).update(
            last_inbound_at=now,
            last_error_at=now,
            last_error="Message 12: the number is not on WhatsApp",
            rejected_signatures=3,
            rejected_malformed=2,
            last_rejection_at=now,
            last_rejection_reason="X-Sandbox-Signature does not match",
            connection_ok=False,
            connection_detail="Twilio refused the account SID",
            connection_checked_at=now,
        )

    for page in (url("channels", tenant_a), url("channel", tenant_a, channel_id=channel.pk)):
        html = owner_client.get(page).content.decode()
        assert "Message 12: the number is not on WhatsApp" in html
        assert "3 with a bad signature" in html and "2 malformed" in html
        assert "X-Sandbox-Signature does not match" in html
        assert "Twilio refused the account SID" in html
        assert "badge-failed" in html


def test_pages_carry_no_inline_code(owner_client, tenant_a):
    from tests.test_pages import assert_no_third_party_code

    channel = ChannelFactory(tenant=tenant_a, meta=True)
    for page in (
        url("channels", tenant_a),
        url("channel", tenant_a, channel_id=channel.pk),
        url("channel_delete", tenant_a, channel_id=channel.pk),
        url("channel_add", tenant_a),
        add_url(tenant_a, "meta_whatsapp"),
    ):
        response = owner_client.get(page)
        assert response.status_code == 200, page
        assert_no_third_party_code(response.content.decode(), page)
