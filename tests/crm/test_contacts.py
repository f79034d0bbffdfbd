"""The contact list: search, filters that combine, sorts both ways, keyset pages, segments."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Segment
from crm.selectors.contacts import ContactFilter, contact_page, contacts_matching
from privacy.models import ConsentAction, ConsentSource, Purpose
from privacy.services import record_consent
from tenants.context import tenant_context
from tests.factories import (
    ContactFactory,
    ContactTagFactory,
    SegmentFactory,
    TagFactory,
    member,
)

pytestmark = pytest.mark.django_db


def names(tenant, **params) -> list[str]:
    with tenant_context(tenant):
        filters = ContactFilter.from_params(params)
        return [c.name for c in contact_page(filters, size=1000).contacts]


def listed(response) -> list[str]:
    html = response.content.decode()
    body = html.split('id="contact-rows"', 1)[1].split("</tbody>", 1)[0]
    return [unescape(n) for n in re.findall(r'/contacts/\d+/">([^<]+)</a>', body)]


def test_search_by_name_email_and_phone_in_any_format(tenant_a):
    ContactFactory(tenant=tenant_a, name="Ana Lima", phone="+14155550101", email="ana@x.example")
    ContactFactory(tenant=tenant_a, name="Bo Chen", phone="+442079460958", email="bo@y.example")
    ContactFactory(tenant=tenant_a, name="Cy de Souza", phone="+14155550199")

    assert names(tenant_a, q="ana") == ["Ana Lima"]  # the name's start ...
    assert names(tenant_a, q="LIMA") == ["Ana Lima"]  # ... or its last word, any case
    assert names(tenant_a, q="ana  lima") == ["Ana Lima"]
    assert names(tenant_a, q="souza") == ["Cy de Souza"]
    assert names(tenant_a, q="BO@Y") == ["Bo Chen"]
    assert names(tenant_a, q="+1 415-555-0101") == ["Ana Lima"]
    assert names(tenant_a, q="+1 (415) 555") == ["Ana Lima", "Cy de Souza"]
    assert names(tenant_a, q="44 20 7946 0958") == ["Bo Chen"]
    assert names(tenant_a, q="nobody") == []
    assert names(tenant_a, q="im") == []  # not the middle of a word


def test_filters_combine(tenant_a):
    owner = member(tenant_a)
    vip = TagFactory(tenant=tenant_a, name="vip")
    late = TagFactory(tenant=tenant_a, name="late payer")
    ana = ContactFactory(tenant=tenant_a, name="Ana", owner=owner, lifecycle_stage="customer")
    bo = ContactFactory(tenant=tenant_a, name="Bo", owner=owner, lifecycle_stage="lead")
    cy = ContactFactory(tenant=tenant_a, name="Cy", lifecycle_stage="customer")
    ContactFactory(tenant=tenant_a, name="Di", attributes={"city": "Porto"})
    for contact in (ana, bo, cy):
        ContactTagFactory(tenant=tenant_a, contact=contact, tag=vip)
    ContactTagFactory(tenant=tenant_a, contact=ana, tag=late)

    assert names(tenant_a, tag=[str(vip.pk)]) == ["Ana", "Bo", "Cy"]
    assert names(tenant_a, tag=[str(vip.pk), str(late.pk)]) == ["Ana"]
    assert names(tenant_a, tag=[str(vip.pk)], stage="customer") == ["Ana", "Cy"]
    assert names(tenant_a, tag=[str(vip.pk)], stage="customer", owner=str(owner.pk)) == ["Ana"]
    assert names(tenant_a, owner="none") == ["Cy", "Di"]
    assert names(tenant_a, attr="city", attr_value="Porto") == ["Di"]
    assert names(tenant_a, attr="city") == ["Di"]
    assert names(tenant_a, attr="city", attr_value="Lisbon") == []


def test_consent_filter_per_medium_and_purpose(tenant_a):
    agreed = ContactFactory(tenant=tenant_a, name="Agreed")
    stopped = ContactFactory(tenant=tenant_a, name="Stopped")
    ContactFactory(tenant=tenant_a, name="Unknown")
    with tenant_context(tenant_a):
        for contact in (agreed, stopped):
            record_consent(
                contact=contact,
                media=["whatsapp"],
                purposes=[Purpose.MARKETING],
                action=ConsentAction.GRANTED,
                source=ConsentSource.AGENT,
            )
        record_consent(
            contact=stopped,
            media=["whatsapp"],
            purposes=[Purpose.MARKETING],
            action=ConsentAction.WITHDRAWN,
            source=ConsentSource.KEYWORD,
        )

    def consent(state, medium="whatsapp", purpose="marketing"):
        return names(tenant_a, consent_medium=medium, consent_purpose=purpose, consent_state=state)

    assert consent("granted") == ["Agreed"]
    assert consent("withdrawn") == ["Stopped"]
    assert consent("none") == ["Unknown"]
    assert consent("granted", medium="sms") == []
    assert consent("none", purpose="transactional") == ["Agreed", "Stopped", "Unknown"]


def test_sorts_both_ways(tenant_a):
    now = timezone.now()
    for i, name in enumerate(["Cy", "Ana", "Bo"]):
        ContactFactory(
            tenant=tenant_a,
            name=name,
            created_at=now - timedelta(days=i),
            last_activity_at=now - timedelta(hours=10 - i),
        )
    assert names(tenant_a, sort="name") == ["Ana", "Bo", "Cy"]
    assert names(tenant_a, sort="-name") == ["Cy", "Bo", "Ana"]
    assert names(tenant_a, sort="-created") == ["Cy", "Ana", "Bo"]
    assert names(tenant_a, sort="created") == ["Bo", "Ana", "Cy"]
    assert names(tenant_a, sort="-activity") == ["Bo", "Ana", "Cy"]
    assert names(tenant_a, sort="activity") == ["Cy", "Ana", "Bo"]


@pytest.mark.parametrize("sort", ["name", "-name", "created", "-created", "-activity"])
def test_keyset_pages_cover_every_contact_once_in_order(tenant_a, sort):
    now = timezone.now()
    # Ties on the sort value (same names, same times) must not lose or repeat anyone.
    for i in range(23):
        ContactFactory(
            tenant=tenant_a,
            name=f"Name {i % 5}",
            created_at=now - timedelta(minutes=i % 4),
            last_activity_at=now - timedelta(minutes=i % 3),
        )
    with tenant_context(tenant_a):
        filters = ContactFilter.from_params({"sort": sort})
        expected = [c.pk for c in contact_page(filters, size=1000).contacts]
        seen, cursor, pages = [], "", 0
        while True:
            page = contact_page(filters, cursor=cursor, size=5)
            seen += [c.pk for c in page.contacts]
            pages += 1
            if not page.next_cursor:
                break
            cursor = page.next_cursor
    assert seen == expected
    assert len(seen) == 23 and pages == 5


def test_the_list_page_keeps_the_filter_in_the_next_link(owner_client, url, tenant_a):
    vip = TagFactory(tenant=tenant_a, name="vip")
    for i in range(120):
        contact = ContactFactory(tenant=tenant_a, name=f"Person {i:03d}")
        if i % 2 == 0:
            ContactTagFactory(tenant=tenant_a, contact=contact, tag=vip)

    first = owner_client.get(url("crm:contacts"), {"tag": vip.pk, "sort": "-name"})
    assert first.status_code == 200
    assert listed(first)[:2] == ["Person 118", "Person 116"]
    assert len(listed(first)) == 50
    next_link = unescape(re.search(r'href="([^"]*after=[^"]*)"', first.content.decode())[1])
    assert f"tag={vip.pk}" in next_link and "sort=-name" in next_link

    second = owner_client.get(next_link)
    assert listed(second)[0] == "Person 018"
    assert len(listed(second)) == 10
    assert "after=" not in second.content.decode()  # the last page has no "next"


def test_a_bad_cursor_or_parameter_shows_the_first_page(owner_client, url, tenant_a):
    ContactFactory(tenant=tenant_a, name="Ana")
    response = owner_client.get(
        url("crm:contacts"), {"after": "not-a-cursor", "sort": "shoe", "owner": "x", "stage": "?"}
    )
    assert response.status_code == 200
    assert listed(response) == ["Ana"]


def test_list_queries_do_not_grow_with_the_rows(owner_client, url, tenant_a):
    owner = member(tenant_a)
    tags = [TagFactory(tenant=tenant_a) for _ in range(3)]

    def add(n):
        for _ in range(n):
            contact = ContactFactory(tenant=tenant_a, owner=owner)
            for tag in tags:
                ContactTagFactory(tenant=tenant_a, contact=contact, tag=tag)

    add(3)
    with CaptureQueriesContext(connection) as few:
        assert owner_client.get(url("crm:contacts")).status_code == 200
    add(30)
    with CaptureQueriesContext(connection) as many:
        assert owner_client.get(url("crm:contacts")).status_code == 200
    assert len(many) == len(few)


def test_contacts_of_another_business_never_match(tenant_a, tenant_b):
    ContactFactory(tenant=tenant_b, name="Elsewhere")
    ContactFactory(tenant=tenant_a, name="Here")
    with tenant_context(tenant_a):
        assert list(contacts_matching(ContactFilter()).values_list("name", flat=True)) == ["Here"]


# --- segments ---------------------------------------------------------------------------------


def test_filter_survives_a_round_trip_through_a_segment():
    filters = ContactFilter(q="ana", tags=(3, 1), stage="customer", owner="none", sort="-created")
    again = ContactFilter.from_params(filters.to_params())
    assert again == ContactFilter(
        q="ana", tags=(1, 3), stage="customer", owner="none", sort="-created"
    )


def test_save_open_rename_and_delete_a_segment(agent_client, url, tenant_a):
    ContactFactory(tenant=tenant_a, name="Ana", lifecycle_stage="customer")
    ContactFactory(tenant=tenant_a, name="Bo", lifecycle_stage="lead")

    response = agent_client.post(
        url("crm:segment_save"), {"name": "Customers", "stage": "customer"}
    )
    assert response.status_code == 302
    with tenant_context(tenant_a):
        segment = Segment.objects.get()
    assert segment.filters == {"stage": "customer"}

    opened = agent_client.get(url("crm:segment", segment_id=segment.pk), follow=True)
    assert listed(opened) == ["Ana"]
    assert "Customers" in opened.content.decode()

    overview = agent_client.get(url("crm:segments")).content.decode()
    assert "Customers" in overview and "<td>1</td>" in overview

    agent_client.post(url("crm:segment", segment_id=segment.pk), {"name": "Paying customers"})
    with tenant_context(tenant_a):
        assert Segment.objects.get().name == "Paying customers"

    agent_client.post(url("crm:segment_delete", segment_id=segment.pk))
    with tenant_context(tenant_a):
        assert not Segment.objects.exists()


def test_a_segment_name_is_unique_in_the_business(agent_client, url, tenant_a):
    SegmentFactory(tenant=tenant_a, name="VIP")
    response = agent_client.post(
        url("crm:segment_save"), {"name": "VIP", "stage": "lead"}, follow=True
    )
    assert "A segment named “VIP” exists." in response.content.decode()
    with tenant_context(tenant_a):
        assert Segment.objects.count() == 1


def test_a_cursor_with_an_impossible_date_shows_the_first_page(owner_client, url, tenant_a):
    import base64

    ContactFactory(tenant=tenant_a, name="Ana")
    impossible = base64.urlsafe_b64encode(b'["2024-13-01T00:00:00",1]').decode().rstrip("=")
    response = owner_client.get(url("crm:contacts"), {"after": impossible, "sort": "created"})
    assert response.status_code == 200
    assert listed(response) == ["Ana"]
