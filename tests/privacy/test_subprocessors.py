"""P16: the sub-processor list follows what the business has switched on."""

from __future__ import annotations

import pytest
from django.urls import reverse

from privacy.subprocessors import META, TWILIO, subprocessors
from tenants.context import tenant_context
from tests.factories import BotProfileFactory, ChannelFactory

pytestmark = pytest.mark.django_db


def names(tenant) -> list[str]:
    with tenant_context(tenant):
        return [processor.name for processor in subprocessors()]


def test_only_the_platform_with_just_the_sandbox(tenant_a, settings):
    settings.PLATFORM_SUBPROCESSORS = "Hetzner Online GmbH|Servers|Germany;Postmark|E-mail|USA"
    ChannelFactory(tenant=tenant_a)
    assert names(tenant_a) == ["Hetzner Online GmbH", "Postmark"]


def test_active_channels_add_their_provider_once(tenant_a, tenant_b):
    ChannelFactory(tenant=tenant_a, twilio=True)
    ChannelFactory(tenant=tenant_a, twilio_sms=True)
    ChannelFactory(tenant=tenant_a, meta=True, is_active=False)
    ChannelFactory(tenant=tenant_b, meta=True)

    found = names(tenant_a)

    assert found.count(TWILIO) == 1
    assert META not in found  # switched off here; active only in another business


def test_the_ai_provider_appears_when_the_bot_calls_one(tenant_a, settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    BotProfileFactory(tenant=tenant_a, enabled=True)
    assert not any("AI" in n or "OpenAI" in n for n in names(tenant_a))  # local responder

    settings.OPENAI_API_KEY = "sk-test"
    assert "OpenAI, L.L.C." in names(tenant_a)

    with tenant_context(tenant_a):
        from channels_app.models import BotProfile

        BotProfile.objects.update(api_base_url="https://llm.example.eu/v1")
    assert "llm.example.eu" in names(tenant_a)


def test_the_list_downloads_as_text(client, tenant_a, owner_a):
    ChannelFactory(tenant=tenant_a, meta=True)
    client.force_login(owner_a)

    response = client.get(
        reverse("privacy:subprocessors_text", kwargs={"tenant_slug": tenant_a.slug})
    )

    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert text.startswith("Sub-processors of Alpha Dental")
    assert f"- {META}: Delivers and receives WhatsApp messages" in text
