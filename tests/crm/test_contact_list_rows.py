"""What each line of the contact list shows, and what loading a page costs the database."""

from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import LifecycleStage
from tests.factories import (
    CompanyFactory,
    ContactFactory,
    ContactTagFactory,
    TagFactory,
    member,
)

pytestmark = pytest.mark.django_db


def rows_html(response) -> str:
    html = response.content.decode()
    return html.split('id="contact-rows"', 1)[1].split("</tbody>", 1)[0]


def test_a_row_shows_the_contact_its_company_owner_tags_and_local_activity_time(
    owner_client, url, tenant_a
):
    tenant_a.time_zone = "America/New_York"
    tenant_a.save()
    owner = member(tenant_a, full_name="Olga Owner")
    contact = ContactFactory(
        tenant=tenant_a,
        name="Ana <Lima> & Co",
        phone="+14155550100",
        email="ana@example.com",
        lifecycle_stage=LifecycleStage.CUSTOMER,
        owner=owner,
        company=CompanyFactory(tenant=tenant_a, name="Clinic & Sons"),
        last_activity_at=datetime.datetime(2030, 1, 15, 14, 30, tzinfo=datetime.UTC),
    )
    for name in ("zeta", "alpha"):
        tag = TagFactory(tenant=tenant_a, name=name)
        ContactTagFactory(tenant=tenant_a, contact=contact, tag=tag)

    body = rows_html(owner_client.get(url("crm:contacts")))

    link = url("crm:contact", contact_id=contact.pk)
    assert f'<a href="{link}">Ana &lt;Lima&gt; &amp; Co</a>' in body
    assert '<span class="muted small">Clinic &amp; Sons</span>' in body
    assert "<td>+14155550100</td>" in body and "<td>ana@example.com</td>" in body
    assert f"<td>{LifecycleStage.CUSTOMER.label}</td>" in body
    assert "<td>Olga Owner</td>" in body
    # Tags A to Z; 14:30 UTC in January is 09:30 in New York.
    assert re.findall(r'<span class="tag">([^<]+)</span>', body) == ["alpha", "zeta"]
    assert '<time datetime="2030-01-15T09:30:00-05:00">15 Jan 2030, 09:30</time>' in body


def test_a_row_without_name_owner_or_company_falls_back(owner_client, url, tenant_a):
    owner = member(tenant_a, full_name="")
    ContactFactory(tenant=tenant_a, name="", phone="+14155550111", email="", owner=owner)
    ContactFactory(tenant=tenant_a, name="", phone="", email="", owner=None)

    body = rows_html(owner_client.get(url("crm:contacts")))

    names = re.findall(r'/contacts/\d+/">([^<]+)</a>', body)
    assert sorted(names) == ["+14155550111", "Unknown contact"]
    assert f"<td>{owner.email}</td>" in body  # an owner without a name shows their e-mail
    assert '<td><span class="muted">—</span></td>' in body  # nobody owns the other one
    assert "<td>—</td>" in body  # no e-mail
    assert "muted small" not in body  # no company line


def test_loading_a_page_never_counts_the_contacts(owner_client, url, tenant_a):
    tag = TagFactory(tenant=tenant_a, name="vip")
    for i in range(60):
        contact = ContactFactory(tenant=tenant_a, name=f"Person {i:02d}")
        ContactTagFactory(tenant=tenant_a, contact=contact, tag=tag)

    for params in ({}, {"q": "person"}, {"tag": tag.pk, "stage": "lead"}, {"sort": "-activity"}):
        with CaptureQueriesContext(connection) as queries:
            assert owner_client.get(url("crm:contacts"), params).status_code == 200
        statements = [q["sql"].upper() for q in queries.captured_queries]
        assert not [sql for sql in statements if "COUNT(" in sql], params
        # The page's contacts come in one query and their tags in one more.
        contact_reads = [sql for sql in statements if sql.startswith('SELECT "CRM_CONTACT".')]
        tag_reads = [sql for sql in statements if sql.startswith('SELECT "CRM_CONTACTTAG".')]
        assert len(contact_reads) == 1 and len(tag_reads) <= 1, params
