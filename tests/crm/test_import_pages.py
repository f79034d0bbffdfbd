"""The import pages as a user goes through them: upload, mapping, progress, error report."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm.models import Contact, ContactImport
from tenants.context import tenant_context
from tenants.models import Role
from tests.crm.import_support import csv_bytes, upload
from tests.factories import member

pytestmark = pytest.mark.django_db


def url(name, tenant, **kwargs):
    return reverse(f"crm:{name}", kwargs={"tenant_slug": tenant.slug, **kwargs})


def test_upload_mapping_and_import_end_to_end(
    client, tenant_a, owner_a, eager_celery, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    data = csv_bytes([["Имя", "Телефон", "E-mail"], ["Иван", "+79123456789", "ivan@example.ru"],
                      ["Плохой", "123", ""]], delimiter=";", encoding="cp1251")  # fmt: skip
    response = client.post(url("imports", tenant_a), {"file": upload(data, "клиенты.csv")})
    assert response.status_code == 302
    with tenant_context(tenant_a):
        contact_import = ContactImport.objects.get()
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Иван" in html and "ivan@example.ru" in html  # the preview, decoded
    assert 'value="phone" selected' in html  # the guess

    form = {"column_0": "name", "column_1": "phone", "column_2": "email", "consent": "none"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(response["Location"], form)
    assert response.status_code == 302
    with tenant_context(tenant_a):
        contact_import.refresh_from_db()
        assert Contact.objects.get(phone="+79123456789").name == "Иван"
    assert contact_import.status == ContactImport.Status.DONE
    assert contact_import.created_count == 1 and contact_import.skipped_count == 1

    detail = client.get(url("import_detail", tenant_a, contact_import_id=contact_import.pk))
    assert "no consent: do not message them until they agree" in detail.content.decode()
    listing = client.get(url("imports", tenant_a)).content.decode()
    assert "клиенты.csv" in listing
    progress = client.get(url("import_progress", tenant_a, contact_import_id=contact_import.pk))
    text = progress.content.decode()
    assert "2 of 2 rows" in text and "hx-trigger" not in text  # done: no more polling
    report = client.get(url("import_errors", tenant_a, contact_import_id=contact_import.pk))
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert report["Content-Type"].startswith("text/csv")
    assert body.splitlines()[0] == "row,column,value,error,outcome"
    assert body.splitlines()[1].startswith("3,Телефон,123,")


def test_a_running_import_polls_its_progress(client, tenant_a, owner_a):
    client.force_login(owner_a)
    with tenant_context(tenant_a):
        contact_import = ContactImport.objects.create(
            file=upload(b"phone\n+14155550100\n"), original_name="a.csv", headers=["phone"],
            status=ContactImport.Status.RUNNING, total_rows=4000, processed_rows=1000,
        )  # fmt: skip
    text = client.get(
        url("import_progress", tenant_a, contact_import_id=contact_import.pk)
    ).content.decode()
    assert "1000 of 4000 rows" in text
    assert 'value="25"' in text and 'hx-trigger="every 2s"' in text


def test_a_bad_upload_is_a_form_error(client, tenant_a, owner_a):
    client.force_login(owner_a)
    response = client.post(
        url("imports", tenant_a), {"file": upload(b"PK\x03\x04" + b"\x00" * 50, "c.xlsx")}
    )
    assert response.status_code == 400
    assert "not CSV" in response.content.decode()
    with tenant_context(tenant_a):
        assert not ContactImport.objects.exists()


def test_mapping_errors_are_shown_and_nothing_starts(client, tenant_a, owner_a):
    client.force_login(owner_a)
    response = client.post(
        url("imports", tenant_a), {"file": upload(csv_bytes([["a", "b"], ["1", "2"]]))}
    )
    detail = response["Location"]
    response = client.post(detail, {"column_0": "name", "column_1": "phone",
                                    "consent": "marketing"})  # fmt: skip
    assert response.status_code == 400
    text = response.content.decode()
    assert "Say how they agreed" in text
    response = client.post(detail, {"column_0": "name", "column_1": "name", "consent": "none"})
    assert "both fill the same field" in response.content.decode()
    assert "phone number or the e-mail" in response.content.decode()
    with tenant_context(tenant_a):
        assert ContactImport.objects.get().status == ContactImport.Status.UPLOADED


def test_agents_cannot_import(client, tenant_a):
    client.force_login(member(tenant_a, role=Role.AGENT))
    assert client.get(url("imports", tenant_a)).status_code == 403


def test_an_upload_over_the_limit_is_refused_with_a_form_error(client, tenant_a, owner_a, settings):
    settings.CONTACT_IMPORT_MAX_BYTES = 10
    client.force_login(owner_a)
    data = csv_bytes([["name", "phone"]] + [["Ana", "+14155550100"]] * 20)
    response = client.post(url("imports", tenant_a), {"file": upload(data)})
    assert response.status_code == 400
    assert "files up to" in response.content.decode()
