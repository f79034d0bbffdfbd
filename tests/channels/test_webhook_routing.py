"""Webhook addresses and the per-process route cache (channels_app.routing).

The cache only remembers where a token led; every request checks it against the database
inside the remembered tenant, so a rotated token, a deleted channel or a changed secret takes
effect at once, and a wrong hint never crosses tenants.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from channels_app import routing
from channels_app.models import Channel, Message
from channels_app.services.channels import rotate_webhook_token
from tenants.context import clear, get_current_tenant, tenant_context
from tests.factories import ChannelFactory
from tests.fakes import meta_inbound_message
from tests.fakes.webhooks import FORM, encode_form, twilio_inbound_message

pytestmark = pytest.mark.django_db

CUSTOMER = "+14155550199"
_ids = iter(range(1, 10**6))


@pytest.fixture(autouse=True)
def empty_route_cache():
    routing.clear_route_cache()
    yield
    routing.clear_route_cache()


def post_twilio(client, channel, *, token=None, auth_token=None, body="Hi"):
    path = reverse("hook_twilio_inbound", kwargs={"token": token or channel.webhook_token})
    params, headers = twilio_inbound_message(
        settings.PUBLIC_BASE_URL + path,
        auth_token or channel.twilio_auth_token,
        from_=CUSTOMER,
        to=channel.twilio_from,
        body=body,
        account_sid=channel.twilio_account_sid,
        message_sid=f"SM{next(_ids):032x}",
    )
    return client.post(path, encode_form(params), content_type=FORM, headers=headers)


def post_meta(client, channel, *, body="Hola"):
    path = reverse("hook_meta", kwargs={"token": channel.webhook_token})
    raw, headers = meta_inbound_message(
        channel.meta_app_secret,
        phone_number_id=channel.meta_phone_number_id,
        waba_id=channel.meta_business_account_id,
        from_wa_id=CUSTOMER.lstrip("+"),
        body=body,
        message_id=f"wamid.{next(_ids):048x}",
    )
    return client.post(path, raw, content_type="application/json", headers=headers)


def bodies(tenant) -> list[str]:
    with tenant_context(tenant):
        return list(Message.objects.order_by("id").values_list("body", flat=True))


def cross_tenant_lookups(queries) -> int:
    """Statements that switched platform access on (the slow, cross-tenant lookup)."""
    return sum("'app.platform_access', 'on'" in q["sql"] for q in queries)


@pytest.fixture
def twilio(tenant_a):
    return ChannelFactory(tenant=tenant_a, twilio=True)


def test_a_known_address_skips_the_cross_tenant_lookup_and_stores_in_its_tenant(
    client, twilio, tenant_a, tenant_b
):
    assert post_twilio(client, twilio, body="first").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        assert post_twilio(client, twilio, body="second").status_code == 200

    if connection.vendor == "postgresql":
        assert cross_tenant_lookups(queries.captured_queries) == 0
    assert bodies(tenant_a) == ["first", "second"]
    assert bodies(tenant_b) == []
    assert get_current_tenant() is None  # the middleware cleared it after the response


def test_a_rotated_token_is_refused_at_once(client, twilio, tenant_a):
    assert post_twilio(client, twilio, body="before").status_code == 200
    old_token = twilio.webhook_token
    with tenant_context(tenant_a):
        rotate_webhook_token(channel=twilio)

    assert post_twilio(client, twilio, token=old_token, body="old").status_code == 404
    assert post_twilio(client, twilio, body="new").status_code == 200
    assert bodies(tenant_a) == ["before", "new"]


def test_a_deleted_channel_is_not_found_at_once(client, twilio, tenant_a):
    assert post_twilio(client, twilio).status_code == 200
    with tenant_context(tenant_a):
        Channel.objects.filter(pk=twilio.pk).delete()

    response = post_twilio(client, twilio)
    assert response.status_code == 404
    assert response.json() == {"error": "unknown webhook address"}


def test_a_changed_secret_is_used_at_once(client, twilio, tenant_a):
    assert post_twilio(client, twilio).status_code == 200
    old_secret = twilio.twilio_auth_token
    with tenant_context(tenant_a):
        channel = Channel.objects.get(pk=twilio.pk)
        channel.twilio_auth_token = "a-new-auth-token-0123456789abcdef"
        channel.save()

    assert post_twilio(client, channel, auth_token=old_secret).status_code == 403
    assert post_twilio(client, channel).status_code == 200


def test_a_switched_off_channel_is_seen_at_once(client, twilio, tenant_a):
    assert post_twilio(client, twilio).status_code == 200
    with tenant_context(tenant_a):
        Channel.objects.filter(pk=twilio.pk).update(is_active=False)

    assert post_twilio(client, twilio, body="still there?").status_code == 200
    with tenant_context(tenant_a):
        assert Channel.objects.get(pk=twilio.pk).last_error  # the panel says so


def test_a_wrong_hint_never_crosses_tenants(client, tenant_a, tenant_b):
    ours = ChannelFactory(tenant=tenant_a, twilio=True)
    theirs = ChannelFactory(tenant=tenant_b, twilio=True)
    assert post_twilio(client, ours, body="to a").status_code == 200
    # The cache claims that b's address leads to a's channel (as a stale or corrupted entry
    # could): the check inside tenant a finds no such row, and the lookup starts over.
    with tenant_context(tenant_a):
        routing._remember(theirs.webhook_token, Channel.objects.get(pk=ours.pk), "stale")

    assert post_twilio(client, theirs, body="to b").status_code == 200
    assert bodies(tenant_a) == ["to a"]
    assert bodies(tenant_b) == ["to b"]


def test_channels_of_two_tenants_each_store_in_their_own(client, tenant_a, tenant_b):
    ours = ChannelFactory(tenant=tenant_a, meta=True)
    theirs = ChannelFactory(tenant=tenant_b, meta=True)
    for round_ in range(2):  # the second round comes from the cache
        assert post_meta(client, ours, body=f"a{round_}").status_code == 200
        assert post_meta(client, theirs, body=f"b{round_}").status_code == 200
    assert bodies(tenant_a) == ["a0", "a1"]
    assert bodies(tenant_b) == ["b0", "b1"]


def test_a_hit_activates_the_channels_tenant_with_fresh_rows(twilio, tenant_a):
    clear()
    first = routing.activate_channel(twilio.webhook_token)
    assert first.pk == twilio.pk and get_current_tenant().pk == tenant_a.pk
    tenant_a.name = "Renamed Dental"
    tenant_a.save()

    again = routing.activate_channel(twilio.webhook_token)
    assert again is not first  # each request gets its own objects
    assert get_current_tenant().pk == tenant_a.pk
    assert get_current_tenant().name == "Renamed Dental"
    assert again.tenant.name == "Renamed Dental"
    clear()  # what the middleware does after each request
    assert routing.activate_channel("no-such-token") is None
    assert get_current_tenant() is None


def test_an_address_under_another_provider_is_not_found_from_the_cache(client, tenant_a):
    sandbox = ChannelFactory(tenant=tenant_a)
    routing.activate_channel(sandbox.webhook_token)  # remembered
    path = reverse("hook_meta", kwargs={"token": sandbox.webhook_token})
    assert client.post(path, b"{}", content_type="application/json").status_code == 404


def test_unknown_addresses_are_not_remembered_and_the_cache_is_bounded(
    client, tenant_a, monkeypatch
):
    monkeypatch.setattr(routing, "ROUTE_CACHE_SIZE", 3)
    for _ in range(3):
        response = client.post(
            "/hooks/sandbox/not-a-token/", b"{}", content_type="application/json"
        )
        assert response.status_code == 404
    assert routing._routes == {}

    channels = [ChannelFactory(tenant=tenant_a) for _ in range(5)]
    for channel in channels:
        assert routing.activate_channel(channel.webhook_token) == channel
    assert len(routing._routes) <= 3
    assert channels[-1].webhook_token in routing._routes


def test_an_expired_entry_is_looked_up_again(client, twilio, tenant_a, monkeypatch):
    monkeypatch.setattr(routing, "ROUTE_TTL_SECONDS", -1.0)
    assert post_twilio(client, twilio, body="one").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert post_twilio(client, twilio, body="two").status_code == 200
    if connection.vendor == "postgresql":
        assert cross_tenant_lookups(queries.captured_queries) == 1
    assert bodies(tenant_a) == ["one", "two"]
