"""The contact form (phone in E.164, duplicates, attributes by kind, tags, owner) and the
custom attribute definitions owners and admins manage."""

from __future__ import annotations

import pytest

from crm.models import Contact, ContactAttribute, Tag
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import ContactAttributeFactory, ContactFactory, TagFactory, member

pytestmark = pytest.mark.django_db


def post_contact(client, url, **fields):
    data = {"name": "Ana Lima", "phone": "", "lifecycle_stage": "lead", **fields}
    return client.post(url("crm:contact_new"), data)


def test_a_new_contact_gets_its_phone_in_e164(agent_client, url, tenant_a):
    response = post_contact(agent_client, url, phone="+1 (415) 555-0199", email="ana@x.example")
    with tenant_context(tenant_a):
        contact = Contact.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("crm:contact", contact_id=contact.pk)
    assert contact.phone == "+14155550199"
    assert contact.source == Contact.Source.MANUAL


def test_a_bad_phone_number_is_a_form_error(agent_client, url, tenant_a):
    response = post_contact(agent_client, url, phone="415 555")
    assert response.status_code == 400
    assert "is not a" in response.content.decode()
    with tenant_context(tenant_a):
        assert not Contact.objects.exists()


def test_a_duplicate_phone_links_to_the_contact_that_has_it(agent_client, url, tenant_a):
    existing = ContactFactory(tenant=tenant_a, name="Existing", phone="+14155550199")
    response = post_contact(agent_client, url, phone="+1 415 555 0199")
    html = response.content.decode()
    assert response.status_code == 400
    assert "Another contact already has this phone number" in html
    assert f'href="{url("crm:contact", contact_id=existing.pk)}"' in html
    with tenant_context(tenant_a):
        assert Contact.objects.count() == 1


def test_the_same_phone_in_another_business_is_fine(agent_client, url, tenant_a, tenant_b):
    ContactFactory(tenant=tenant_b, phone="+14155550199")
    assert post_contact(agent_client, url, phone="+14155550199").status_code == 302


def test_editing_keeps_its_own_phone_and_refuses_anothers(agent_client, url, tenant_a):
    ana = ContactFactory(tenant=tenant_a, name="Ana", phone="+14155550101")
    ContactFactory(tenant=tenant_a, name="Bo", phone="+14155550102")
    edit = url("crm:contact_edit", contact_id=ana.pk)

    ok = agent_client.post(
        edit, {"name": "Ana L.", "phone": "+14155550101", "lifecycle_stage": "customer"}
    )
    assert ok.status_code == 302
    taken = agent_client.post(
        edit, {"name": "Ana", "phone": "+14155550102", "lifecycle_stage": "lead"}
    )
    assert taken.status_code == 400
    with tenant_context(tenant_a):
        ana.refresh_from_db()
    assert (ana.name, ana.phone, ana.lifecycle_stage) == ("Ana L.", "+14155550101", "customer")


def test_attribute_values_are_checked_by_kind(agent_client, url, tenant_a):
    ContactAttributeFactory(tenant=tenant_a, key="visits", label="Visits", kind="number")
    ContactAttributeFactory(tenant=tenant_a, key="birthday", label="Birthday", kind="date")
    ContactAttributeFactory(
        tenant=tenant_a, key="plan", label="Plan", kind="choice", choices=["basic", "gold"]
    )
    bad = post_contact(
        agent_client, url, attr_visits="many", attr_birthday="2024-13-01", attr_plan="platinum"
    )
    html = bad.content.decode()
    assert bad.status_code == 400
    assert "“many” is not a number." in html
    assert "is not a date (YYYY-MM-DD)." in html
    assert "platinum" in html  # the choice field refuses a value not offered
    with tenant_context(tenant_a):
        assert not Contact.objects.exists()

    good = post_contact(
        agent_client, url, attr_visits="3,5", attr_birthday="1990-02-28", attr_plan="gold"
    )
    assert good.status_code == 302
    with tenant_context(tenant_a):
        contact = Contact.objects.get()
    assert contact.attributes == {"visits": "3.5", "birthday": "1990-02-28", "plan": "gold"}


def test_tags_are_picked_or_created(agent_client, url, tenant_a):
    vip = TagFactory(tenant=tenant_a, name="vip")
    response = post_contact(agent_client, url, tags=[str(vip.pk)], new_tags="Porto, VIP, new one")
    assert response.status_code == 302
    with tenant_context(tenant_a):
        contact = Contact.objects.get()
        assert sorted(contact.tags.values_list("name", flat=True)) == ["Porto", "new one", "vip"]
        assert Tag.objects.count() == 3


def test_the_owner_must_be_a_member_of_the_business(agent_client, url, tenant_a, tenant_b):
    outsider = member(tenant_b)
    colleague = member(tenant_a, role=Role.AGENT)
    refused = post_contact(agent_client, url, owner=str(outsider.pk))
    assert refused.status_code == 400
    accepted = post_contact(agent_client, url, owner=str(colleague.pk))
    assert accepted.status_code == 302
    with tenant_context(tenant_a):
        assert Contact.objects.get().owner == colleague


# --- attribute definitions ----------------------------------------------------------------------


def test_agents_cannot_manage_attribute_definitions(agent_client, url):
    assert agent_client.get(url("crm:attributes")).status_code == 403
    assert (
        agent_client.post(url("crm:attributes"), {"label": "X", "kind": "text"}).status_code == 403
    )


def test_admins_create_edit_reorder_and_delete_attributes(owner_client, url, tenant_a):
    owner_client.post(url("crm:attributes"), {"label": "Home city", "kind": "text"})
    owner_client.post(
        url("crm:attributes"), {"label": "Plan", "kind": "choice", "choices": "basic\ngold\n"}
    )
    with tenant_context(tenant_a):
        city, plan = ContactAttribute.objects.order_by("position")
    assert (city.key, plan.key, plan.choices) == ("home_city", "plan", ["basic", "gold"])

    no_choice = owner_client.post(url("crm:attributes"), {"label": "Tier", "kind": "choice"})
    assert no_choice.status_code == 400
    assert "needs at least one choice" in no_choice.content.decode()
    duplicate = owner_client.post(url("crm:attributes"), {"label": "Plan", "kind": "text"})
    assert duplicate.status_code == 400

    owner_client.post(
        url("crm:attribute", contact_attribute_id=plan.pk),
        {"label": "Subscription", "kind": "text", "choices": "basic\ngold\nplatinum"},
    )
    owner_client.post(url("crm:attribute_move", contact_attribute_id=plan.pk), {"direction": "up"})
    with tenant_context(tenant_a):
        order = list(ContactAttribute.objects.order_by("position").values_list("label", "kind"))
        plan.refresh_from_db()
    assert order == [("Subscription", "choice"), ("Home city", "text")]
    assert plan.choices == ["basic", "gold", "platinum"]

    owner_client.post(url("crm:attribute_delete", contact_attribute_id=city.pk))
    with tenant_context(tenant_a):
        assert list(ContactAttribute.objects.values_list("key", flat=True)) == ["plan"]
