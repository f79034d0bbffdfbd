"""Companies: search, create and edit, a page with their contacts, deals and notes."""

from __future__ import annotations

import pytest

from crm.models import Company, Contact, Note
from tenants.context import tenant_context
from tests.factories import CompanyFactory, ContactFactory, DealFactory

pytestmark = pytest.mark.django_db


def test_the_list_searches_by_name_and_domain(agent_client, url, tenant_a, tenant_b):
    CompanyFactory(tenant=tenant_a, name="Acme Dental", domain="acme.example")
    CompanyFactory(tenant=tenant_a, name="Bolt Motors", domain="bolt.example")
    CompanyFactory(tenant=tenant_b, name="Acme Elsewhere")

    everything = agent_client.get(url("crm:companies")).content.decode()
    assert "Acme Dental" in everything and "Bolt Motors" in everything
    assert "Acme Elsewhere" not in everything
    found = agent_client.get(url("crm:companies"), {"q": "bolt.ex"}).content.decode()
    assert "Bolt Motors" in found and "Acme Dental" not in found


def test_create_and_edit_a_company(agent_client, url, tenant_a):
    response = agent_client.post(
        url("crm:company_new"), {"name": " Acme ", "domain": "https://www.Acme.example/about"}
    )
    with tenant_context(tenant_a):
        company = Company.objects.get()
    assert response["Location"] == url("crm:company", company_id=company.pk)
    assert (company.name, company.domain) == ("Acme", "acme.example")

    assert agent_client.post(url("crm:company_new"), {"name": ""}).status_code == 400
    agent_client.post(url("crm:company_edit", company_id=company.pk), {"name": "Acme Ltd"})
    with tenant_context(tenant_a):
        company.refresh_from_db()
    assert company.name == "Acme Ltd"


def test_the_company_page_shows_its_contacts_deals_and_notes(agent_client, url, tenant_a):
    company = CompanyFactory(tenant=tenant_a, name="Acme")
    ContactFactory(tenant=tenant_a, name="Ana at Acme", company=company)
    ContactFactory(tenant=tenant_a, name="Bo elsewhere")
    DealFactory(tenant=tenant_a, company=company, title="Fleet renewal")
    agent_client.post(
        url("crm:company_note_add", company_id=company.pk), {"body": "Pays in 60 days"}
    )

    html = agent_client.get(url("crm:company", company_id=company.pk)).content.decode()
    assert "Ana at Acme" in html and "Bo elsewhere" not in html
    assert "Fleet renewal" in html
    assert "Pays in 60 days" in html
    with tenant_context(tenant_a):
        assert Note.objects.get().company_id == company.pk


def test_choosing_a_company_on_the_contact_form(agent_client, url, tenant_a, tenant_b):
    mine = CompanyFactory(tenant=tenant_a)
    foreign = CompanyFactory(tenant=tenant_b)
    data = {"name": "Ana", "lifecycle_stage": "lead"}
    assert (
        agent_client.post(url("crm:contact_new"), {**data, "company": foreign.pk}).status_code
        == 400
    )
    assert (
        agent_client.post(url("crm:contact_new"), {**data, "company": mine.pk}).status_code == 302
    )
    with tenant_context(tenant_a):
        assert Contact.objects.get().company_id == mine.pk


def test_deleting_a_company_keeps_its_contacts(client, owner_a, agent_a, url, tenant_a):
    company = CompanyFactory(tenant=tenant_a)
    contact = ContactFactory(tenant=tenant_a, company=company)
    client.force_login(agent_a)
    assert client.post(url("crm:company_delete", company_id=company.pk)).status_code == 403
    client.force_login(owner_a)
    client.post(url("crm:company_delete", company_id=company.pk))
    with tenant_context(tenant_a):
        assert not Company.objects.exists()
        contact.refresh_from_db()
    assert contact.company_id is None
