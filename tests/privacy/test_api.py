"""P18: businesses create and read data requests and download exports through the API, with
per-business keys stored hashed."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zipfile

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from privacy.models import AccessLogEntry, DataRequest
from tenants import api_auth
from tenants.context import tenant_context
from tenants.models import ApiKey
from tests.factories import ContactFactory, member

pytestmark = pytest.mark.django_db

PHONE = "+447700900654"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def key_for(tenant, user=None):
    with tenant_context(tenant):
        return api_auth.create_api_key(name="CRM sync", created_by=user)


@pytest.fixture
def key_a(tenant_a, owner_a):
    return key_for(tenant_a, owner_a)[1]


def api(client, key, method, path, data=None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    headers.update(extra)
    if method == "post":
        return client.post(
            path, data=json.dumps(data or {}), content_type="application/json", **headers
        )
    return client.get(path, **headers)


LIST = "/api/v1/data-requests/"


def test_keys_are_stored_hashed_and_shown_once(client, tenant_a, owner_a):
    client.force_login(owner_a)
    page_url = reverse("tenant:api_keys", kwargs={"tenant_slug": tenant_a.slug})
    response = client.post(page_url, {"name": "Zapier"})
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    with tenant_context(tenant_a):
        record = ApiKey.objects.get()
    key = page.split('class="api-key">')[1].split("<")[0]
    assert key.startswith("sos_") and len(key) > 40
    assert record.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(record.prefix) and len(record.prefix) < 12
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tenants_apikey WHERE key_hash = %s OR prefix = %s", [key, key]
        )
        assert cursor.fetchone()[0] == 0
    # Shown once: the list afterwards has only the prefix.
    assert key not in client.get(page_url).content.decode()
    assert client.post(page_url, {"name": ""}).status_code == 400


def test_only_owners_manage_keys(client, tenant_a):
    from tenants.models import Role

    client.force_login(member(tenant_a, Role.ADMIN))
    assert (
        client.get(reverse("tenant:api_keys", kwargs={"tenant_slug": tenant_a.slug})).status_code
        == 403
    )


def test_missing_bad_and_revoked_keys_get_401_with_a_json_reason(client, tenant_a, owner_a):
    record, key = key_for(tenant_a, owner_a)
    for header in ({}, {"HTTP_AUTHORIZATION": "Bearer nope"}, {"HTTP_AUTHORIZATION": key}):
        response = client.get(LIST, **header)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/json"
        assert response.json()["detail"]
    assert api(client, key, "get", LIST).status_code == 200

    client.force_login(owner_a)
    client.post(
        reverse(
            "tenant:api_key_revoke",
            kwargs={"tenant_slug": tenant_a.slug, "api_key_id": record.pk},
        )
    )
    response = api(client, key, "get", LIST)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_create_read_and_list_a_request(client, tenant_a, key_a):
    contact = ContactFactory(tenant=tenant_a, phone=PHONE)
    response = api(client, key_a, "post", LIST, {"kind": "erasure", "phone": "+44 7700 900654"})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "awaiting_confirmation"
    assert body["subject_phone"] == PHONE and body["contact"] == contact.pk
    assert body["findings"]["models"]["crm.Contact"] == 1
    assert datetime.date.fromisoformat(body["due_date"]) > timezone.localdate()
    with tenant_context(tenant_a):
        assert DataRequest.objects.get(pk=body["id"]).source == DataRequest.Source.API

    detail = api(client, key_a, "get", f"{LIST}{body['id']}/")
    assert detail.status_code == 200 and detail.json()["id"] == body["id"]
    listing = api(client, key_a, "get", LIST).json()
    assert [item["id"] for item in listing] == [body["id"]]


def test_reading_requests_through_the_api_is_in_the_access_log(client, tenant_a, owner_a, key_a):
    """A request holds the person's phone, e-mail and what was found of them (P12)."""
    contact = ContactFactory(tenant=tenant_a, phone=PHONE)
    body = api(client, key_a, "post", LIST, {"kind": "export", "phone": PHONE}).json()
    viewed = AccessLogEntry.Action.VIEWED_DATA_REQUEST
    with tenant_context(tenant_a):
        assert not AccessLogEntry.objects.filter(action=viewed).exists()

    api(client, key_a, "get", f"{LIST}{body['id']}/", REMOTE_ADDR="203.0.113.9")
    api(client, key_a, "get", LIST)

    with tenant_context(tenant_a):
        read, listed = AccessLogEntry.objects.filter(action=viewed).order_by("id")
    assert read.actor_id == owner_a.pk and read.subject_id == contact.pk
    assert read.object_type == "privacy.DataRequest" and read.object_id == str(body["id"])
    assert read.detail.startswith(f"data request #{body['id']} via API key sos_")
    assert read.ip_address == "203.0.113.9"
    assert listed.actor_id == owner_a.pk and listed.subject_id is None
    assert listed.detail.startswith("listed 1 data requests via API key sos_")
    # A request for another business's id answers 404 and logs nothing.
    assert api(client, key_a, "get", f"{LIST}999999/").status_code == 404
    with tenant_context(tenant_a):
        assert AccessLogEntry.objects.filter(action=viewed).count() == 2


def test_bad_input_gets_400_with_field_errors(client, tenant_a, key_a):
    cases = [
        ({"phone": PHONE}, "kind"),
        ({"kind": "teleport", "phone": PHONE}, "kind"),
        ({"kind": "export"}, "phone"),
        ({"kind": "export", "phone": "12"}, "phone"),
        ({"kind": "export", "email": "nope"}, "email"),
        ({"kind": "rectification", "phone": PHONE, "changes": {"owner": "x"}}, "changes"),
    ]
    for data, field in cases:
        response = api(client, key_a, "post", LIST, data)
        assert response.status_code == 400, data
        assert field in response.json(), (data, response.json())
    response = client.post(
        LIST,
        data="{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key_a}",
    )
    assert response.status_code == 400 and response.json()["detail"]
    with tenant_context(tenant_a):
        assert not DataRequest.objects.exists()


def test_an_unknown_subject_is_recorded_with_nothing_found(client, key_a):
    response = api(client, key_a, "post", LIST, {"kind": "export", "email": "no@one.example"})
    assert response.status_code == 201
    assert response.json()["findings"]["nothing_found"] is True


def test_export_through_the_api_and_download_the_archive(
    client, tenant_a, owner_a, key_a, django_capture_on_commit_callbacks
):
    contact = ContactFactory(tenant=tenant_a, phone=PHONE, name="Dora")
    with django_capture_on_commit_callbacks(execute=True):
        response = api(
            client, key_a, "post", LIST, {"kind": "export", "phone": PHONE, "confirm": True}
        )
    body = response.json()
    detail = api(client, key_a, "get", f"{LIST}{body['id']}/").json()
    assert detail["status"] == "done"
    assert detail["export_url"] == f"{LIST}{body['id']}/export/"

    download = api(client, key_a, "get", detail["export_url"])
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    data = json.loads(archive.read("data.json"))
    assert data["tables"]["crm.Contact"][0]["name"] == "Dora"
    with tenant_context(tenant_a):
        logged = AccessLogEntry.objects.get(action=AccessLogEntry.Action.DOWNLOADED_EXPORT)
    assert logged.subject_id == contact.pk and logged.actor_id == owner_a.pk
    assert "via API key sos_" in logged.detail

    with tenant_context(tenant_a):
        DataRequest.objects.filter(pk=body["id"]).update(
            export_expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
    expired = api(client, key_a, "get", detail["export_url"])
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]


def test_an_export_not_ready_yet_says_so(client, key_a):
    body = api(client, key_a, "post", LIST, {"kind": "export", "phone": PHONE}).json()
    response = api(client, key_a, "get", f"{LIST}{body['id']}/export/")
    assert response.status_code == 409 and response.json()["status"] == "awaiting_confirmation"
    erasure = api(client, key_a, "post", LIST, {"kind": "erasure", "phone": PHONE}).json()
    assert api(client, key_a, "get", f"{LIST}{erasure['id']}/export/").status_code == 404


def test_another_business_gets_404(
    client, tenant_a, tenant_b, key_a, django_capture_on_commit_callbacks
):
    ContactFactory(tenant=tenant_a, phone=PHONE)
    with django_capture_on_commit_callbacks(execute=True):
        body = api(
            client, key_a, "post", LIST, {"kind": "export", "phone": PHONE, "confirm": True}
        ).json()
    key_b = key_for(tenant_b)[1]
    for path in (f"{LIST}{body['id']}/", f"{LIST}{body['id']}/export/"):
        response = api(client, key_b, "get", path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
    assert api(client, key_b, "get", LIST).json() == []


def test_the_openapi_schema_describes_the_endpoints(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = (
        json.loads(response.content)
        if response["Content-Type"].startswith("application/json")
        else None
    )
    if schema is None:
        import yaml

        schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    assert {
        "/api/v1/data-requests/",
        "/api/v1/data-requests/{data_request_id}/",
        "/api/v1/data-requests/{data_request_id}/export/",
    } <= set(paths)
    assert "post" in paths["/api/v1/data-requests/"]
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_a_retried_create_gets_409_with_the_open_request(client, key_a):
    first = api(client, key_a, "post", LIST, {"kind": "erasure", "phone": PHONE})
    again = api(client, key_a, "post", LIST, {"kind": "erasure", "phone": "+44 7700 900654"})
    assert again.status_code == 409
    assert again.json()["existing"]["id"] == first.json()["id"]
    assert len(api(client, key_a, "get", LIST).json()) == 1


def test_a_business_scheduled_for_deletion_answers_nothing_through_the_api(client, tenant_a, key_a):
    from tenants.models import Tenant

    Tenant.objects.filter(pk=tenant_a.pk).update(status=Tenant.Status.DELETION_REQUESTED)
    response = api(client, key_a, "get", LIST)
    assert response.status_code == 401
    assert "scheduled for deletion" in response.json()["detail"]
    response = api(client, key_a, "post", LIST, {"kind": "export", "phone": PHONE})
    assert response.status_code == 401
    with tenant_context(tenant_a):
        assert not DataRequest.objects.exists()
