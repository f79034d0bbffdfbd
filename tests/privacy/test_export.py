"""P6: a person's data as a downloadable archive — JSON, one CSV per table, a readable summary
— whose link expires, whose file is deleted, and whose every download is logged."""

from __future__ import annotations

import csv
import datetime
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from privacy import dsr
from privacy.models import AccessLogEntry, DataRequest
from privacy.tasks import expire_exports
from tenants.context import tenant_context
from tests.factories import member
from tests.privacy import dsr_world
from tests.privacy.dsr_world import EMAIL, OTHER_EMAIL, PHONE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def world(tenant_a):
    return dsr_world.build(tenant_a)


def exported(tenant, capture, kind=DataRequest.Kind.EXPORT, **identifiers):
    identifiers = identifiers or {"phone": PHONE}
    with tenant_context(tenant):
        data_request = dsr.create_request(kind=kind, **identifiers)
        with capture(execute=True):
            dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
    return data_request


def download(client, tenant, data_request):
    return client.get(
        reverse(
            "privacy:request_download",
            kwargs={"tenant_slug": tenant.slug, "data_request_id": data_request.pk},
        )
    )


def archive_of(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_archive_holds_json_csv_and_a_summary(
    client, world, owner_a, django_capture_on_commit_callbacks
):
    data_request = exported(world.tenant, django_capture_on_commit_callbacks)
    assert data_request.status == DataRequest.Status.DONE
    client.force_login(owner_a)

    response = download(client, world.tenant, data_request)

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    archive = archive_of(response)
    names = set(archive.namelist())
    assert {"data.json", "summary.html", "crm.Contact.csv", "channels_app.Message.csv"} <= names

    data = json.loads(archive.read("data.json"))
    assert data["subject"] == {"phone": PHONE, "email": ""}
    contact = data["tables"]["crm.Contact"][0]
    assert (contact["phone"], contact["email"], contact["name"]) == (PHONE, EMAIL, "Ana Subject")
    bodies = [m["body"] for m in data["tables"]["channels_app.Message"]]
    assert f"Please delete me, I am {EMAIL}" in bodies and len(bodies) == 4
    assert len(data["tables"]["channels_app.InboundWebhook"]) == 2  # raw payloads naming her
    assert {e["evidence"] for e in data["tables"]["privacy.ConsentEvent"]} == {
        f"Ana agreed on the phone ({PHONE})"
    }
    assert "tenant_id" not in contact
    # Nobody else's data.
    assert OTHER_EMAIL not in archive.read("data.json").decode()
    assert "Bruno" not in archive.read("channels_app.Message.csv").decode()

    rows = list(csv.DictReader(io.StringIO(archive.read("crm.Note.csv").decode())))
    assert [row["body"] for row in rows] == [f"Call her on {PHONE}"]
    # A value starting like a formula is neutralised for spreadsheets.
    contact_rows = list(csv.DictReader(io.StringIO(archive.read("crm.Contact.csv").decode())))
    assert contact_rows[0]["phone"] == "'" + PHONE

    summary = archive.read("summary.html").decode()
    assert "Ana Subject" in summary and "channels_app.Message" in summary
    assert data_request.result["models"]["channels_app.Message"] == 4


def test_access_requests_make_the_same_archive(world, django_capture_on_commit_callbacks):
    data_request = exported(
        world.tenant, django_capture_on_commit_callbacks, kind=DataRequest.Kind.ACCESS
    )
    assert data_request.export_file and data_request.result["models"]["crm.Contact"] == 1


def test_downloads_are_written_to_the_access_log(
    client, world, owner_a, django_capture_on_commit_callbacks
):
    data_request = exported(world.tenant, django_capture_on_commit_callbacks)
    client.force_login(owner_a)
    download(client, world.tenant, data_request)
    with tenant_context(world.tenant):
        made = AccessLogEntry.objects.get(action=AccessLogEntry.Action.EXPORTED_SUBJECT)
        got = AccessLogEntry.objects.get(action=AccessLogEntry.Action.DOWNLOADED_EXPORT)
    assert made.subject_id == world.subject.pk
    assert got.subject_id == world.subject.pk and got.actor_id == owner_a.pk
    assert got.object_id == str(data_request.pk) and got.ip_address == "127.0.0.1"


def test_an_expired_link_is_gone_and_the_file_deleted(
    client, world, owner_a, media, django_capture_on_commit_callbacks
):
    data_request = exported(world.tenant, django_capture_on_commit_callbacks)
    path = media / data_request.export_file.name
    assert path.exists()
    assert data_request.export_file.name.startswith(f"exports/{world.tenant.pk}/")
    client.force_login(owner_a)
    with tenant_context(world.tenant):
        DataRequest.objects.filter(pk=data_request.pk).update(
            export_expires_at=timezone.now() - datetime.timedelta(minutes=1)
        )

    response = download(client, world.tenant, data_request)
    assert response.status_code == 410
    assert "expired" in response.content.decode()

    assert expire_exports() == 1
    assert not path.exists()
    assert expire_exports() == 0  # a second run has nothing left to do
    with tenant_context(world.tenant):
        data_request.refresh_from_db()
    assert data_request.export_file.name == ""
    assert download(client, world.tenant, data_request).status_code == 410


def test_the_link_lasts_as_long_as_the_business_keeps_export_files(
    world, django_capture_on_commit_callbacks
):
    world.tenant.export_file_retention_days = 3
    world.tenant.save()
    before = timezone.now()
    data_request = exported(world.tenant, django_capture_on_commit_callbacks)
    lasts = data_request.export_expires_at - before
    assert datetime.timedelta(days=3) <= lasts < datetime.timedelta(days=3, minutes=5)


def test_another_business_gets_404(client, world, tenant_b, django_capture_on_commit_callbacks):
    data_request = exported(world.tenant, django_capture_on_commit_callbacks)
    client.force_login(member(tenant_b))
    for slug in (tenant_b.slug, world.tenant.slug):
        url = reverse(
            "privacy:request_download",
            kwargs={"tenant_slug": slug, "data_request_id": data_request.pk},
        )
        assert client.get(url).status_code == 404


def test_an_unknown_person_gets_an_archive_that_says_nothing_was_found(
    world, django_capture_on_commit_callbacks
):
    data_request = exported(
        world.tenant, django_capture_on_commit_callbacks, email="nobody@example.net"
    )
    assert data_request.findings["nothing_found"] is True
    assert data_request.status == DataRequest.Status.DONE
    assert data_request.result["nothing_found"] is True
    with data_request.export_file.open("rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    data = json.loads(archive.read("data.json"))
    # Only the request itself is found (it names the e-mail).
    assert set(data["tables"]) == {"privacy.DataRequest"}


def test_erasure_deletes_old_export_files(world, media, django_capture_on_commit_callbacks):
    data_request = exported(world.tenant, django_capture_on_commit_callbacks)
    path = media / data_request.export_file.name
    assert path.exists()
    with tenant_context(world.tenant):
        erasure = dsr.create_request(kind=DataRequest.Kind.ERASURE, phone=PHONE)
        with django_capture_on_commit_callbacks(execute=True):
            dsr.confirm_request(data_request=erasure)
        data_request.refresh_from_db()
    assert not path.exists()
    assert data_request.export_file.name == "" and data_request.subject_phone == ""
