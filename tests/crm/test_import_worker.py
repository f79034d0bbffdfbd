"""A real Celery worker runs a contact import and fetches a Meta lead.

`start_import` commits and enqueues `run_contact_import` on a real Redis broker; a
`celery -A salesos worker` subprocess on the same PostgreSQL test database streams the file
from the shared media directory and imports it, while this process reads the progress the way
the progress bar does. A signed Meta webhook enqueues `fetch_meta_lead`, which the worker runs
against the provider stub in this process.
"""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from crm.models import Contact, ContactImport, Lead, LeadSource
from crm.services import imports
from tenants.context import tenant_context
from tests.celery_worker import running_worker
from tests.crm.import_support import csv_bytes, upload
from tests.crm.lead_support import meta_leadgen_body, post_meta
from tests.factories import LeadSourceFactory, TenantFactory, member

pytestmark = [
    pytest.mark.postgres_only,  # the worker shares the test database: not in-memory SQLite
    pytest.mark.needs_redis,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def worker(tmp_path, provider_stub, media_root):
    env = {
        "MEDIA_ROOT": str(media_root),
        "META_GRAPH_BASE_URL": provider_stub.meta_base_url,
        "FIELD_ENCRYPTION_KEYS": settings.FIELD_ENCRYPTION_KEYS,
    }
    with running_worker(tmp_path, env=env) as running:
        yield running


def test_the_worker_imports_a_file_and_fetches_a_meta_lead(client, worker, provider_stub):
    tenant = TenantFactory(slug=f"worker-import-{uuid.uuid4().hex[:6]}")
    owner = member(tenant)
    rows = [["name", "phone"]] + [[f"P{i}", f"+1415555{i:04d}"] for i in range(2500)]
    with tenant_context(tenant):
        contact_import = imports.create_import(uploaded_file=upload(csv_bytes(rows)), user=owner)
        imports.configure_import(
            contact_import=contact_import, mapping=contact_import.mapping, consent="none"
        )
        imports.start_import(contact_import=contact_import)

    def finished():
        with tenant_context(tenant):
            contact_import.refresh_from_db()
        return contact_import.status in ("done", "failed") and contact_import

    worker.wait_for(finished, "a finished import")
    assert contact_import.status == ContactImport.Status.DONE, contact_import.failure_reason
    assert (contact_import.processed_rows, contact_import.created_count) == (2500, 2500)
    with tenant_context(tenant):
        assert Contact.objects.count() == 2500

    source = LeadSourceFactory(
        tenant=tenant, kind=LeadSource.Kind.META_LEAD_ADS, google_key="",
        meta_page_id="1122334455", meta_access_token="EAAG-worker-token",
        meta_app_secret="worker-secret", meta_verify_token="v",
    )  # fmt: skip
    leadgen_id = provider_stub.meta_lead(
        "EAAG-worker-token", field_data={"full_name": "Lia", "phone_number": "+14155559999"}
    )
    response = post_meta(client, source, meta_leadgen_body(leadgen_id), secret="worker-secret")
    assert response.status_code == 200

    def processed():
        with tenant_context(tenant):
            lead = Lead.objects.filter(source=source).first()
        return lead is not None and lead.status != Lead.Status.RECEIVED and lead

    lead = worker.wait_for(processed, "a processed lead")
    assert lead.status == Lead.Status.PROCESSED, lead.error
    with tenant_context(tenant):
        assert Contact.objects.get(phone="+14155559999").name == "Lia"
