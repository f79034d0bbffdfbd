"""The lead sources page: add a source, see what to paste, switch it off, recent leads."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm.models import LeadSource
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import LeadFactory, LeadSourceFactory, member

pytestmark = pytest.mark.django_db


def url(name, tenant, **kwargs):
    return reverse(f"crm:{name}", kwargs={"tenant_slug": tenant.slug, **kwargs})


def test_adding_a_google_source_shows_its_webhook_address(client, tenant_a, owner_a):
    client.force_login(owner_a)
    response = client.post(
        url("lead_source_add", tenant_a) + "?kind=google_ads",
        {"kind": "google_ads", "name": "Summer ads", "consent_purpose": "transactional",
         "consent_wording": "Contact me", "google_key": "s3cret-key"},
    )  # fmt: skip
    assert response.status_code == 302
    with tenant_context(tenant_a):
        source = LeadSource.objects.get()
    assert source.google_key == "s3cret-key" and source.kind == "google_ads"
    page = client.get(response["Location"]).content.decode()
    assert f"/hooks/leads/{source.token}/" in page
    assert "s3cret-key" not in page  # the key is never shown again


def test_a_meta_source_needs_its_secrets(client, tenant_a, owner_a):
    client.force_login(owner_a)
    response = client.post(
        url("lead_source_add", tenant_a),
        {"kind": "meta_lead_ads", "name": "Page", "consent_purpose": "none"},
    )
    assert response.status_code == 400
    with tenant_context(tenant_a):
        assert not LeadSource.objects.exists()


def test_the_source_page_lists_recent_leads_and_can_be_switched_off(client, tenant_a, owner_a):
    source = LeadSourceFactory(tenant=tenant_a, name="Ads")
    LeadFactory(tenant=tenant_a, source=source, external_id="L-1", error="No phone")
    client.force_login(owner_a)
    page = client.get(url("lead_source", tenant_a, lead_source_id=source.pk)).content.decode()
    assert "No phone" in page
    response = client.post(url("lead_source_toggle", tenant_a, lead_source_id=source.pk))
    assert response.status_code == 302
    with tenant_context(tenant_a):
        source.refresh_from_db()
    assert not source.enabled


def test_agents_cannot_manage_lead_sources(client, tenant_a):
    client.force_login(member(tenant_a, role=Role.AGENT))
    assert client.get(url("lead_sources", tenant_a)).status_code == 403
