"""CSV export of the current filter: streamed, UTF-8 with BOM, formulas defused, logged."""

from __future__ import annotations

import csv
import io

import pytest

from privacy.models import AccessLogEntry
from salesos.csv_safety import safe_cell
from tenants.context import tenant_context
from tests.factories import ContactAttributeFactory, ContactFactory, ContactTagFactory, TagFactory

pytestmark = pytest.mark.django_db


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


@pytest.mark.parametrize(
    "value,expected",
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1 415", "'+1 415"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rCR", "'\rCR"),
        ("Ana", "Ana"),
        ("", ""),
        (None, ""),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_the_export_follows_the_filter_and_defuses_formulas(owner_client, owner_a, url, tenant_a):
    ContactAttributeFactory(tenant=tenant_a, key="note", label="Note")
    vip = TagFactory(tenant=tenant_a, name="vip")
    evil = ContactFactory(
        tenant=tenant_a,
        name='=HYPERLINK("http://evil.example","click")',
        email="a@x.example",
        attributes={"note": "@SUM(1+1)"},
    )
    ContactTagFactory(tenant=tenant_a, contact=evil, tag=vip)
    ContactFactory(tenant=tenant_a, name="Not a VIP")

    response = owner_client.get(url("crm:contacts_export"), {"tag": vip.pk})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    rows = read_csv(response)

    assert rows[0][:4] == ["id", "name", "phone", "email"] and rows[0][-1] == "attr:note"
    assert len(rows) == 2  # header + the one VIP
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["phone"] == "'" + evil.phone  # "+1…" would be a formula too
    assert row["attr:note"] == "'@SUM(1+1)"
    assert row["tags"] == "vip"

    with tenant_context(tenant_a):
        entry = AccessLogEntry.objects.get(action=AccessLogEntry.Action.EXPORTED_CONTACTS)
    assert entry.actor == owner_a
    assert entry.detail.startswith("1 contacts")
    assert f"tag={vip.pk}" in entry.detail


def test_the_export_streams_every_batch(owner_client, url, tenant_a, monkeypatch):
    from crm.views import contacts as views

    monkeypatch.setattr(views, "EXPORT_BATCH", 7)
    for i in range(30):
        ContactFactory(tenant=tenant_a, name=f"Person {i:02d}")
    rows = read_csv(owner_client.get(url("crm:contacts_export"), {"sort": "-name"}))
    assert [r[1] for r in rows[1:]] == [f"Person {i:02d}" for i in reversed(range(30))]


def test_agents_cannot_export(agent_client, url, tenant_a):
    assert agent_client.get(url("crm:contacts_export")).status_code == 403
    with tenant_context(tenant_a):
        assert not AccessLogEntry.objects.filter(
            action=AccessLogEntry.Action.EXPORTED_CONTACTS
        ).exists()


def test_the_access_log_export_uses_the_same_escaping(owner_client, url, tenant_a):
    from tests.factories import AccessLogEntryFactory

    AccessLogEntryFactory(tenant=tenant_a, actor_label="=cmd|'/c calc'!A1")
    body = b"".join(owner_client.get(url("privacy:access_log_export")).streaming_content).decode()
    assert "'=cmd|" in body


def test_a_large_export_is_a_security_event_on_the_privacy_centre(
    owner_client, url, tenant_a, settings
):
    from privacy.models import SecurityEvent

    settings.MASS_EXPORT_ROWS = 3
    ContactFactory.create_batch(2, tenant=tenant_a)
    read_csv(owner_client.get(url("crm:contacts_export")))
    with tenant_context(tenant_a):
        assert not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.MASS_EXPORT).exists()

    ContactFactory(tenant=tenant_a)
    read_csv(owner_client.get(url("crm:contacts_export")))
    with tenant_context(tenant_a):
        event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.MASS_EXPORT)
    assert "3" in event.detail
