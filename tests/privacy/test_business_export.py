"""P10: before deleting the business (or during its grace period) an owner exports everything.

The zip is prepared by Celery, not inside the request, then offered on the deletion page until
its link expires; every download is logged, an expired link answers 410 and its file goes."""

from __future__ import annotations

import html
import io
import json
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from privacy import dsr, tasks, tenant_deletion
from privacy.models import AccessLogEntry, BusinessExport, DataRequest, SecurityEvent
from tenants.context import tenant_context
from tenants.models import Membership, Role
from tests.factories import ChannelFactory, MessageFactory, member
from tests.privacy import dsr_world
from tests.privacy.dsr_world import DIGITS, EMAIL, OTHER_EMAIL, PHONE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


class DiskFullStorage(FileSystemStorage):
    """A disk that fills up part-way through writing a file."""

    def _save(self, name, content):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(content.read(64))
        raise OSError(28, "No space left on device")


class EraseWhileStoring(FileSystemStorage):
    """A disk on which a customer's erasure (another worker, in production) is carried out
    while an export's archive, already written, is being stored."""

    erasures: list[tuple[int, int]] = []

    def _save(self, name, content):
        while self.erasures:
            tasks.run_data_request(*self.erasures.pop())
        return super()._save(name, content)


class NotingStorage(FileSystemStorage):
    """The disk, noting when the export being stored last moved, before and after storing."""

    progress: list = []

    def _save(self, name, content):
        def moved():
            return BusinessExport.objects.values_list("progress_at", flat=True).get()

        self.progress[:] = [moved()]
        stored = super()._save(name, content)
        self.progress.append(moved())
        return stored


def url(name, tenant, **kwargs):
    return reverse(f"privacy:{name}", kwargs={"tenant_slug": tenant.slug, **kwargs})


def prepare(client, tenant, capture, *, execute=True):
    with capture(execute=execute) as callbacks:
        response = client.post(url("business_export_prepare", tenant))
    return response, callbacks


def exports_of(tenant) -> list[BusinessExport]:
    with tenant_context(tenant):
        return list(BusinessExport.objects.order_by("pk"))


def download(client, tenant, export):
    return client.get(url("business_export_download", tenant, business_export_id=export.pk))


def stored_files(media: Path) -> list[str]:
    return sorted(p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file())


def export_files(media: Path) -> list[str]:
    return [name for name in stored_files(media) if name.startswith("exports/")]


def export_part(page: str) -> str:
    """The export's part of the deletion page."""
    return page.split('id="business-export"', 1)[1].split("</div>", 1)[0]


def archive_text(media: Path, export) -> str:
    with zipfile.ZipFile(media / export.file.name) as archive:
        return "".join(archive.read(name).decode() for name in archive.namelist())


def erase_customer(tenant, capture, *, execute=True):
    """A customer's erasure request, confirmed in the privacy centre (its task runs unless
    `execute` is False)."""
    with tenant_context(tenant):
        data_request = dsr.create_request(kind=DataRequest.Kind.ERASURE, phone=PHONE, email=EMAIL)
        with capture(execute=execute):
            dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
    return data_request


def schedule_deletion(tenant, owner, *, now=None):
    return tenant_deletion.request_deletion(
        tenant=tenant,
        by=Membership.objects.get(tenant=tenant, user=owner),
        confirm_slug=tenant.slug,
        now=now,
    )


def test_an_owner_prepares_the_export_then_downloads_every_table_without_secrets(
    client, tenant_a, owner_a, media, settings, django_capture_on_commit_callbacks
):
    settings.MASS_EXPORT_ROWS = 2
    ChannelFactory(tenant=tenant_a, twilio=True)
    MessageFactory(tenant=tenant_a, body="Hello from Ana")
    client.force_login(owner_a)
    page = client.get(url("deletion", tenant_a)).content.decode()
    assert "Prepare the export" in page

    response, callbacks = prepare(client, tenant_a, django_capture_on_commit_callbacks)

    assert response.status_code == 302 and len(callbacks) == 1
    [export] = exports_of(tenant_a)
    assert export.status == BusinessExport.Status.READY
    assert export.requested_by == owner_a and export.requested_by_label == owner_a.email
    assert stored_files(media) == [export.file.name]
    assert export.file.name.startswith(f"exports/{tenant_a.pk}/")
    assert export.size == (media / export.file.name).stat().st_size
    lasts = export.expires_at - export.finished_at
    assert timedelta(days=7) <= lasts < timedelta(days=7, minutes=5)
    # Nothing is logged for preparing it: only a download hands the data out.
    with tenant_context(tenant_a):
        assert not AccessLogEntry.objects.filter(action=AccessLogEntry.Action.EXPORTED_BUSINESS)

    page = client.get(url("deletion", tenant_a)).content.decode()
    download_url = url("business_export_download", tenant_a, business_export_id=export.pk)
    assert download_url in page
    assert f"{export.rows} records" in page
    assert timezone.localtime(export.expires_at, tenant_a.zone).strftime("%Y-%m-%d %H:%M") in page
    assert "hx-trigger" not in export_part(page)  # nothing left to wait for

    response = download(client, tenant_a, export)

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="alpha-dental-export.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"README.txt", "channels_app.Message.jsonl", "crm.Contact.jsonl"} <= names
    messages = [
        json.loads(line) for line in archive.read("channels_app.Message.jsonl").splitlines()
    ]
    assert [m["body"] for m in messages] == ["Hello from Ana"]
    channels = archive.read("channels_app.Channel.jsonl").decode()
    assert "twilio-auth-token" not in channels and "twilio_auth_token" not in channels
    assert export.rows == sum(len(archive.read(n).splitlines()) for n in names if "jsonl" in n)
    with tenant_context(tenant_a):
        entry = AccessLogEntry.objects.get(action=AccessLogEntry.Action.EXPORTED_BUSINESS)
        event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.MASS_EXPORT)
    assert entry.actor == owner_a and entry.object_id == str(export.pk)
    assert f"{export.rows} rows" in entry.detail and f"{export.rows} rows" in event.detail


def test_a_second_click_while_the_export_is_prepared_starts_nothing(
    client, tenant_a, owner_a, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)

    _, first = prepare(client, tenant_a, django_capture_on_commit_callbacks, execute=False)
    response, second = prepare(client, tenant_a, django_capture_on_commit_callbacks, execute=False)

    assert len(first) == 1 and second == []
    [export] = exports_of(tenant_a)
    assert export.status == BusinessExport.Status.QUEUED
    page = client.get(response.url).content.decode()
    assert "An export is already being prepared." in page
    assert "Prepare" not in export_part(page)
    # The page asks again every few seconds while it waits, and its part shows the result.
    assert 'hx-trigger="every 3s"' in export_part(page)
    assert tasks.prepare_business_export(tenant_a.pk, export.pk) == "ready"
    part = client.get(url("business_export", tenant_a)).content.decode()
    assert "hx-trigger" not in part
    assert url("business_export_download", tenant_a, business_export_id=export.pk) in part
    # The database refuses a second export in progress, whatever the caller.
    with tenant_context(tenant_a):
        BusinessExport.objects.create()
        with pytest.raises(IntegrityError), transaction.atomic():
            BusinessExport.objects.create(status=BusinessExport.Status.RUNNING)


def test_running_the_task_again_keeps_one_file(
    client, tenant_a, owner_a, media, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    prepare(client, tenant_a, django_capture_on_commit_callbacks)
    [export] = exports_of(tenant_a)

    assert tasks.prepare_business_export(tenant_a.pk, export.pk) == "ready"

    assert exports_of(tenant_a)[0].file.name == export.file.name
    assert stored_files(media) == [export.file.name]


def test_a_run_interrupted_mid_way_is_started_over_without_leaving_its_file(
    tenant_a, owner_a, media
):
    with tenant_context(tenant_a):
        export, _ = tenant_deletion.request_export(
            tenant=tenant_a, by=Membership.objects.get(user=owner_a)
        )
    # A worker named and half wrote the file, then died; the message is delivered again.
    leftover = f"exports/{tenant_a.pk}/business-interrupted.zip"
    (media / leftover).parent.mkdir(parents=True)
    (media / leftover).write_bytes(b"PK half")
    with tenant_context(tenant_a):
        BusinessExport.objects.filter(pk=export.pk).update(status="running", file=leftover)

    assert tasks.prepare_business_export(tenant_a.pk, export.pk) == "ready"

    [export] = exports_of(tenant_a)
    assert stored_files(media) == [export.file.name] and export.file.name != leftover
    assert zipfile.is_zipfile(media / export.file.name)


def test_a_click_queues_again_an_export_whose_queue_message_was_lost(
    client, tenant_a, owner_a, media, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    client.force_login(owner_a)
    _, lost = prepare(client, tenant_a, capture, execute=False)
    assert len(lost) == 1  # ... and that message never reaches a worker
    [export] = exports_of(tenant_a)
    with tenant_context(tenant_a):
        BusinessExport.objects.filter(pk=export.pk).update(
            requested_at=timezone.now() - BusinessExport.STALLED_AFTER + timedelta(minutes=1)
        )
    # Still within the time a queue may take: a click waits for it.
    _, callbacks = prepare(client, tenant_a, capture)
    assert callbacks == []
    with tenant_context(tenant_a):
        BusinessExport.objects.filter(pk=export.pk).update(
            requested_at=timezone.now() - BusinessExport.STALLED_AFTER
        )
    part = export_part(client.get(url("deletion", tenant_a)).content.decode())
    assert "its preparation was probably lost" in part and "Prepare it again" in part

    response, callbacks = prepare(client, tenant_a, capture)

    assert response.status_code == 302 and len(callbacks) == 1
    [again] = exports_of(tenant_a)
    assert again.pk == export.pk and again.status == BusinessExport.Status.READY
    assert export_files(media) == [again.file.name]
    # The lost message turning up after all changes nothing.
    assert tasks.prepare_business_export(tenant_a.pk, export.pk) == "ready"
    assert export_files(media) == [again.file.name]


def test_a_click_starts_over_an_export_whose_worker_died_without_its_message_coming_back(
    client, tenant_a, owner_a, media, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    client.force_login(owner_a)
    prepare(client, tenant_a, capture, execute=False)
    [export] = exports_of(tenant_a)
    # A worker stored the archive, then died before marking it ready; nothing re-delivers it.
    leftover = f"exports/{tenant_a.pk}/business-orphan.zip"
    (media / leftover).parent.mkdir(parents=True)
    (media / leftover).write_bytes(b"PK orphan")
    long_ago = timezone.now() - BusinessExport.STALLED_AFTER - timedelta(minutes=1)
    with tenant_context(tenant_a):
        BusinessExport.objects.filter(pk=export.pk).update(
            status="running", file=leftover, started_at=long_ago, progress_at=long_ago
        )
    assert "Prepare it again" in export_part(client.get(url("deletion", tenant_a)).content.decode())

    _, callbacks = prepare(client, tenant_a, capture)

    assert len(callbacks) == 1
    [export] = exports_of(tenant_a)
    assert export.status == BusinessExport.Status.READY
    assert export_files(media) == [export.file.name] and export.file.name != leftover


def test_a_long_export_that_still_moves_is_not_queued_again(
    client, tenant_a, owner_a, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    client.force_login(owner_a)
    prepare(client, tenant_a, capture, execute=False)
    [export] = exports_of(tenant_a)
    hours_ago = timezone.now() - timedelta(hours=2)
    with tenant_context(tenant_a):
        BusinessExport.objects.filter(pk=export.pk).update(
            status="running", started_at=hours_ago, progress_at=timezone.now()
        )

    _, callbacks = prepare(client, tenant_a, capture)

    assert callbacks == []
    assert exports_of(tenant_a)[0].status == BusinessExport.Status.RUNNING
    assert "Prepare" not in export_part(client.get(url("deletion", tenant_a)).content.decode())


def test_a_run_notes_its_progress_while_it_writes_and_stores(
    tenant_a, owner_a, media, settings, monkeypatch
):
    monkeypatch.setattr(tenant_deletion, "PROGRESS_EVERY", timedelta(0))
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.NotingStorage"}}
    MessageFactory.create_batch(3, tenant=tenant_a)
    with tenant_context(tenant_a):
        export, _ = tenant_deletion.request_export(
            tenant=tenant_a, by=Membership.objects.get(user=owner_a)
        )

    assert tasks.prepare_business_export(tenant_a.pk, export.pk) == "ready"

    [export] = exports_of(tenant_a)
    before_storing, after_storing = NotingStorage.progress
    # Written a batch at a time, then stored a chunk at a time, each noted on the export.
    assert export.started_at < before_storing < after_storing <= export.finished_at


def test_a_new_export_replaces_the_previous_file(
    client, tenant_a, owner_a, media, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    prepare(client, tenant_a, django_capture_on_commit_callbacks)
    prepare(client, tenant_a, django_capture_on_commit_callbacks)

    old, new = exports_of(tenant_a)

    assert new.is_available() and not old.is_available()
    assert stored_files(media) == [new.file.name] and old.file.name == ""
    assert download(client, tenant_a, old).status_code == 410
    assert download(client, tenant_a, new).status_code == 200


def test_an_expired_link_answers_410_and_its_file_is_deleted(
    client, tenant_a, owner_a, media, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    prepare(client, tenant_a, django_capture_on_commit_callbacks)
    [export] = exports_of(tenant_a)
    with tenant_context(tenant_a):
        BusinessExport.objects.filter(pk=export.pk).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )

    response = download(client, tenant_a, export)

    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert stored_files(media) == []
    assert exports_of(tenant_a)[0].file.name == ""
    assert download(client, tenant_a, export).status_code == 410
    with tenant_context(tenant_a):
        assert not AccessLogEntry.objects.filter(action=AccessLogEntry.Action.EXPORTED_BUSINESS)
    assert "has expired" in client.get(url("deletion", tenant_a)).content.decode()


def test_the_beat_task_deletes_expired_export_files(
    client, tenant_a, owner_a, media, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    prepare(client, tenant_a, django_capture_on_commit_callbacks)
    [export] = exports_of(tenant_a)
    assert tasks.expire_exports() == 0  # still valid
    with tenant_context(tenant_a):
        BusinessExport.objects.filter(pk=export.pk).update(expires_at=timezone.now())

    assert tasks.expire_exports() == 1

    assert stored_files(media) == [] and exports_of(tenant_a)[0].file.name == ""
    assert tasks.expire_exports() == 0  # a second run has nothing left to do


def test_another_business_gets_404(
    client, tenant_a, tenant_b, owner_a, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    prepare(client, tenant_a, django_capture_on_commit_callbacks)
    [export] = exports_of(tenant_a)
    client.force_login(member(tenant_b))

    for tenant in (tenant_b, tenant_a):
        assert download(client, tenant, export).status_code == 404


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AGENT])
def test_only_an_owner_prepares_or_downloads_the_export(
    client, tenant_a, owner_a, role, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    prepare(client, tenant_a, django_capture_on_commit_callbacks)
    [export] = exports_of(tenant_a)
    client.force_login(member(tenant_a, role=role))

    response, callbacks = prepare(client, tenant_a, django_capture_on_commit_callbacks)

    assert response.status_code == 403 and callbacks == []
    assert len(exports_of(tenant_a)) == 1
    assert download(client, tenant_a, export).status_code == 403
    assert client.get(url("business_export", tenant_a)).status_code == 403


def test_an_owner_still_exports_while_the_business_is_locked(
    client, tenant_a, owner_a, django_capture_on_commit_callbacks
):
    MessageFactory(tenant=tenant_a, body="Last words")
    schedule_deletion(tenant_a, owner_a)
    admin = member(tenant_a, role=Role.ADMIN)
    client.force_login(admin)
    response, callbacks = prepare(client, tenant_a, django_capture_on_commit_callbacks)
    assert response.status_code == 423 and callbacks == []
    client.force_login(owner_a)

    prepare(client, tenant_a, django_capture_on_commit_callbacks)

    [export] = exports_of(tenant_a)
    assert export.status == BusinessExport.Status.READY
    page = client.get(url("deletion", tenant_a))
    assert page.status_code == 423
    download_url = url("business_export_download", tenant_a, business_export_id=export.pk)
    assert download_url in page.content.decode()
    response = download(client, tenant_a, export)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert b"Last words" in archive.read("channels_app.Message.jsonl")


def test_a_failed_export_says_why_and_leaves_no_file(
    client, tenant_a, owner_a, media, settings, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    working = settings.STORAGES
    settings.STORAGES = {**working, "default": {"BACKEND": f"{__name__}.DiskFullStorage"}}

    response, _ = prepare(client, tenant_a, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    [export] = exports_of(tenant_a)
    assert export.status == BusinessExport.Status.FAILED
    assert "No space left on device" in export.failure_reason
    assert export.file.name == "" and stored_files(media) == []
    page = client.get(url("deletion", tenant_a)).content.decode()
    assert "The last export failed" in page and "No space left on device" in page
    assert download(client, tenant_a, export).status_code == 404
    # A failed export does not block the next one.
    settings.STORAGES = working
    prepare(client, tenant_a, django_capture_on_commit_callbacks)
    assert [e.status for e in exports_of(tenant_a)] == ["failed", "ready"]


def test_purging_the_business_deletes_its_export_files(
    client, tenant_a, owner_a, media, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    prepare(client, tenant_a, django_capture_on_commit_callbacks)
    assert stored_files(media)
    schedule_deletion(tenant_a, owner_a, now=timezone.now() - timedelta(days=31))

    assert tasks.purge_deleted_tenants() == 1

    assert stored_files(media) == []


def test_a_customers_erasure_deletes_the_ready_export_and_the_page_says_why(
    client, tenant_a, tenant_b, owner_a, owner_b, media, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    dsr_world.build(tenant_a)
    client.force_login(owner_b)
    prepare(client, tenant_b, capture)
    [other_business] = exports_of(tenant_b)
    client.force_login(owner_a)
    prepare(client, tenant_a, capture)
    [export] = exports_of(tenant_a)
    assert EMAIL in archive_text(media, export)

    data_request = erase_customer(tenant_a, capture)

    assert data_request.status == DataRequest.Status.DONE
    [export] = exports_of(tenant_a)
    assert export.file.name == "" and not export.is_available()
    assert export.removed_because == BusinessExport.RemovedBecause.ERASURE
    # Only this business's file went: the other one does not hold the customer.
    assert export_files(media) == [other_business.file.name]
    reason = "removed after a customer's erasure request; prepare a new export"
    part = html.unescape(export_part(client.get(url("deletion", tenant_a)).content.decode()))
    assert reason in part and "Prepare a new export" in part
    response = download(client, tenant_a, export)
    assert response.status_code == 410 and reason in html.unescape(response.content.decode())
    # The next export is offered, without the erased customer.
    prepare(client, tenant_a, capture)
    new = exports_of(tenant_a)[-1]
    assert new.is_available()
    text = archive_text(media, new)
    assert EMAIL not in text and DIGITS not in text and OTHER_EMAIL in text


def test_an_export_written_while_a_customer_is_erased_is_written_again_without_them(
    tenant_a, owner_a, media, settings, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    dsr_world.build(tenant_a)
    with tenant_context(tenant_a):
        export, _ = tenant_deletion.request_export(
            tenant=tenant_a, by=Membership.objects.get(user=owner_a)
        )
    data_request = erase_customer(tenant_a, capture, execute=False)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.EraseWhileStoring"},
    }
    EraseWhileStoring.erasures[:] = [(tenant_a.pk, data_request.pk)]

    # The erasure finishes after the archive was written with the customer in it.
    with capture(execute=True) as callbacks:
        assert tasks.prepare_business_export(tenant_a.pk, export.pk) == "queued"
        [export] = exports_of(tenant_a)
        assert export.status == BusinessExport.Status.QUEUED and export_files(media) == []

    # That archive was thrown away, and the export queued again is written without them.
    assert len(callbacks) == 1
    [export] = exports_of(tenant_a)
    assert export.status == BusinessExport.Status.READY
    assert export_files(media) == [export.file.name]
    text = archive_text(media, export)
    assert EMAIL not in text and DIGITS not in text and OTHER_EMAIL in text
    with tenant_context(tenant_a):
        data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.DONE
    assert data_request.verification["clean"] is True
    # Delivered once more, the task leaves the export and its one file as they are.
    assert tasks.prepare_business_export(tenant_a.pk, export.pk) == "ready"
    assert export_files(media) == [export.file.name]
