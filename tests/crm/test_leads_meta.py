"""Meta Lead Ads: the subscription handshake, signed webhooks, and reading the lead from the
Graph API (the real httpx code, against the provider stub)."""

from __future__ import annotations

import pytest

from crm.models import Contact, Lead, LeadSource
from crm.services import leads
from privacy.models import ConsentEvent, ConsentSource
from tenants.context import tenant_context
from tests.crm.lead_support import hook_url, meta_leadgen_body, post_meta
from tests.factories import LeadSourceFactory

pytestmark = pytest.mark.django_db

SECRET = "meta-app-secret-for-leads"
PAGE_TOKEN = "EAAG-page-access-token"


@pytest.fixture
def source(tenant_a, owner_a):
    return LeadSourceFactory(
        tenant=tenant_a,
        kind=LeadSource.Kind.META_LEAD_ADS,
        google_key="",
        meta_page_id="1122334455",
        meta_access_token=PAGE_TOKEN,
        meta_app_secret=SECRET,
        meta_verify_token="verify-me",
        consent_purpose="transactional",
        consent_wording="You may contact me about my request.",
        assign_owner=owner_a,
    )


def refreshed(obj):
    with tenant_context(obj.tenant):
        obj.refresh_from_db()
    return obj


def test_the_handshake_echoes_the_challenge(client, source):
    response = client.get(
        hook_url(source),
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
    )
    assert response.status_code == 200 and response.content == b"1158201444"


def test_a_wrong_verify_token_is_403_and_counted(client, source):
    response = client.get(
        hook_url(source),
        {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
    )
    assert response.status_code == 403
    assert refreshed(source).rejected_count == 1


@pytest.mark.parametrize(
    "signature",
    [None, "sha1=abc", "sha256=" + "0" * 64],
    ids=["missing", "not-sha256", "wrong"],
)
def test_a_bad_signature_is_403_and_counted(client, source, signature):
    body = meta_leadgen_body("111")
    response = post_meta(client, source, body, signature=signature or None)
    assert response.status_code == 403
    assert "X-Hub-Signature-256" in response.json()["error"]
    source = refreshed(source)
    assert source.rejected_count == 1
    with tenant_context(source.tenant):
        assert not Lead.objects.exists()


def test_a_body_signed_with_another_secret_is_refused(client, source):
    assert post_meta(client, source, meta_leadgen_body("111"), secret="other").status_code == 403


def test_a_signed_but_malformed_body_is_400(client, source):
    response = post_meta(client, source, b'{"object": "page"}', secret=SECRET)
    assert response.status_code == 400 and "entry" in response.json()["error"]


def test_a_lead_is_fetched_from_the_graph_api_and_processed(
    client, source, provider_stub, eager_celery, django_capture_on_commit_callbacks
):
    leadgen_id = provider_stub.meta_lead(
        PAGE_TOKEN,
        field_data={"full_name": "Olga Petrova", "phone_number": "+79161234567",
                    "email": "olga@example.ru", "city": "Moscow"},
        form_id="998877",
    )  # fmt: skip
    body = meta_leadgen_body(leadgen_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_meta(client, source, body, secret=SECRET)
    assert response.status_code == 200 and response.json()["accepted"] == 1

    fetches = [r for r in provider_stub.requests if leadgen_id in r["path"]]
    assert len(fetches) == 1
    assert fetches[0]["headers"]["Authorization"] == f"Bearer {PAGE_TOKEN}"
    assert fetches[0]["path"].startswith(f"/graph/v21.0/{leadgen_id}?")
    with tenant_context(source.tenant):
        lead = Lead.objects.get()
        assert lead.status == Lead.Status.PROCESSED
        contact = lead.contact
        assert (contact.name, contact.phone, contact.email, contact.source) == (
            "Olga Petrova", "+79161234567", "olga@example.ru", Contact.Source.LEAD_FORM
        )  # fmt: skip
        assert lead.fields["city"] == "Moscow"
        event = ConsentEvent.objects.filter(contact=contact).first()
        assert event.source == ConsentSource.LEAD_FORM
        assert "You may contact me about my request." in event.evidence

    # Meta retries the same notification: nothing new is stored or fetched.
    with django_capture_on_commit_callbacks(execute=True):
        again = post_meta(client, source, body, secret=SECRET)
    assert again.json() == {"accepted": 0, "duplicates": 1, "ignored": 0}
    assert len([r for r in provider_stub.requests if leadgen_id in r["path"]]) == 1


def test_a_transient_graph_failure_is_retried(
    client, source, provider_stub, eager_celery, django_capture_on_commit_callbacks
):
    leadgen_id = provider_stub.meta_lead(PAGE_TOKEN, field_data={"phone_number": "+79161234567"})
    provider_stub.fail_next(1, status=500, sends_only=False)
    with django_capture_on_commit_callbacks(execute=True):
        post_meta(client, source, meta_leadgen_body(leadgen_id), secret=SECRET)
    assert len([r for r in provider_stub.requests if leadgen_id in r["path"]]) == 2
    with tenant_context(source.tenant):
        assert Lead.objects.get().status == Lead.Status.PROCESSED


def test_a_permanent_graph_error_fails_the_lead_with_the_reason(
    client, source, provider_stub, eager_celery, django_capture_on_commit_callbacks
):
    # The lead exists, but the page token does not give access to it.
    leadgen_id = provider_stub.meta_lead("another-page-token", field_data={"email": "a@b.co"})
    provider_stub.meta_access_token(PAGE_TOKEN)
    with django_capture_on_commit_callbacks(execute=True):
        post_meta(client, source, meta_leadgen_body(leadgen_id), secret=SECRET)
    assert len([r for r in provider_stub.requests if leadgen_id in r["path"]]) == 1
    with tenant_context(source.tenant):
        lead = Lead.objects.get()
    assert lead.status == Lead.Status.FAILED
    assert "does not exist" in lead.error
    assert refreshed(source).last_error == lead.error


def test_a_transient_error_raises_for_the_task_to_retry(tenant_a, source, provider_stub):
    from crm.lead_providers import LeadFetchError

    leadgen_id = provider_stub.meta_lead(PAGE_TOKEN, field_data={"email": "a@b.co"})
    provider_stub.fail_next(1, status=503, sends_only=False)
    with tenant_context(tenant_a):
        lead = Lead.objects.create(source=source, external_id=leadgen_id)
        with pytest.raises(LeadFetchError) as caught:
            leads.fetch_and_process_meta_lead(lead_id=lead.pk)
        assert caught.value.transient
        lead.refresh_from_db()
        assert lead.status == Lead.Status.RECEIVED  # kept for the retry


def test_changes_for_another_page_are_ignored(client, source, django_capture_on_commit_callbacks):
    body = meta_leadgen_body("123", page_id="999")
    with django_capture_on_commit_callbacks(execute=False):
        response = post_meta(client, source, body, secret=SECRET)
    assert response.json()["ignored"] == 1
    with tenant_context(source.tenant):
        assert not Lead.objects.exists()
