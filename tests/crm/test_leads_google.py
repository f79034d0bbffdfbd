"""Google Ads lead form webhook: key checks, idempotency, contact, consent, owner, welcome."""

from __future__ import annotations

import pytest

from channels_app.models import Medium, Message
from crm.models import Contact, Lead, LeadSource
from privacy.models import ConsentEvent, ConsentSource, ConsentState, Purpose
from tenants.context import tenant_context
from tests.crm.lead_support import google_payload, post_google
from tests.factories import ChannelFactory, ContactFactory, LeadSourceFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(tenant_a, owner_a):
    return LeadSourceFactory(
        tenant=tenant_a,
        name="Spring campaign",
        consent_purpose="marketing",
        consent_wording="I agree to receive offers by WhatsApp and SMS.",
        assign_owner=owner_a,
    )


def refreshed(source):
    with tenant_context(source.tenant):
        source.refresh_from_db()
    return source


def test_a_valid_lead_creates_the_contact_with_consent_and_owner(client, source, owner_a):
    response = post_google(client, source, google_payload())
    assert response.status_code == 200
    assert response.json()["status"] == "processed"
    with tenant_context(source.tenant):
        contact = Contact.objects.get(phone="+14155550123")
        assert (contact.name, contact.email, contact.source) == (
            "Ana Lima", "ana@example.com", Contact.Source.LEAD_FORM
        )  # fmt: skip
        assert contact.owner == owner_a
        lead = Lead.objects.get()
        assert lead.contact == contact and lead.status == Lead.Status.PROCESSED
        assert lead.fields["EMAIL"] == "ana@example.com"
        assert lead.form_id == "40000000000" and lead.campaign == "12345678901"
        events = ConsentEvent.objects.filter(contact=contact)
        assert {(e.medium, e.purpose) for e in events} == {
            (m, p) for m in (Medium.WHATSAPP, Medium.SMS)
            for p in (Purpose.TRANSACTIONAL, Purpose.MARKETING)
        }  # fmt: skip
        event = events.first()
        assert event.source == ConsentSource.LEAD_FORM
        assert "I agree to receive offers by WhatsApp and SMS." in event.evidence
        assert "TeSter-123" in event.evidence
    assert refreshed(source).received_count == 1


def test_a_repeated_lead_id_is_a_no_op(client, source):
    assert post_google(client, source, google_payload()).status_code == 200
    again = post_google(client, source, google_payload(name="Someone Else"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    with tenant_context(source.tenant):
        assert Lead.objects.count() == 1 and Contact.objects.get().name == "Ana Lima"
        assert ConsentEvent.objects.count() == 4
    assert refreshed(source).received_count == 1


@pytest.mark.parametrize("key", ["wrong-key", "", None])
def test_a_wrong_or_missing_key_is_refused_and_counted(client, source, key):
    payload = google_payload(key=key or "")
    if key is None:
        del payload["google_key"]
    response = post_google(client, source, payload)
    assert response.status_code == 403
    assert "google_key" in response.json()["error"]
    source = refreshed(source)
    assert source.rejected_count == 1 and "google_key" in source.last_error
    with tenant_context(source.tenant):
        assert not Lead.objects.exists() and not Contact.objects.exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        ({"google_key": "google-lead-form-key", "user_column_data": []}, "lead_id"),
        ({"google_key": "google-lead-form-key", "lead_id": "x", "user_column_data": "a"},
         "user_column_data"),
    ],
    ids=["not-json", "not-object", "no-lead-id", "bad-columns"],
)  # fmt: skip
def test_a_malformed_body_is_a_400_with_the_reason(client, source, body, reason):
    response = post_google(client, source, body)
    assert response.status_code in (400, 403)
    assert reason in response.json()["error"]
    assert refreshed(source).rejected_count == 1


def test_an_unknown_address_is_404(client, db):
    response = client.post("/hooks/leads/no-such-token/", b"{}", content_type="application/json")
    assert response.status_code == 404


def test_a_switched_off_source_refuses(client, source):
    with tenant_context(source.tenant):
        LeadSource.objects.filter(pk=source.pk).update(enabled=False)
    assert post_google(client, source, google_payload()).status_code == 403


def test_an_existing_contact_is_updated_not_duplicated(client, source, tenant_a):
    other_owner = member(tenant_a)
    with tenant_context(tenant_a):
        existing = ContactFactory(tenant=tenant_a, name="", phone="", email="ana@example.com",
                                  owner=other_owner)  # fmt: skip
    post_google(client, source, google_payload())
    with tenant_context(tenant_a):
        existing.refresh_from_db()
        assert Contact.objects.count() == 1
        assert (existing.name, existing.phone) == ("Ana Lima", "+14155550123")
        assert existing.owner == other_owner  # an owner already there is kept


def test_a_lead_without_usable_phone_or_email_is_failed_with_the_reason(client, source):
    response = post_google(client, source, google_payload(phone="12", email=""))
    assert response.status_code == 200
    with tenant_context(source.tenant):
        lead = Lead.objects.get()
    assert lead.status == Lead.Status.FAILED and "phone" in lead.error


def test_the_welcome_message_goes_through_the_consent_gate(
    client, source, tenant_a, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    with tenant_context(tenant_a):
        LeadSource.objects.filter(pk=source.pk).update(
            welcome_channel=channel, welcome_text="Hi {name}, thanks for your interest!"
        )
    with django_capture_on_commit_callbacks(execute=False):
        post_google(client, source, google_payload())
    with tenant_context(tenant_a):
        message = Message.objects.get()
        assert message.body == "Hi Ana, thanks for your interest!"
        assert message.status == Message.Status.QUEUED
        lead = Lead.objects.get()
        assert "queued" in lead.welcome_note


def test_a_refused_welcome_is_noted_on_the_lead_not_an_error(client, source, tenant_a):
    """No consent captured: the gate refuses the welcome; the lead is still processed."""
    channel = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    with tenant_context(tenant_a):
        LeadSource.objects.filter(pk=source.pk).update(
            welcome_channel=channel, welcome_text="Hi!", consent_purpose="none"
        )
    response = post_google(client, source, google_payload())
    assert response.status_code == 200
    with tenant_context(tenant_a):
        assert not Message.objects.exists()
        assert not ConsentState.objects.exists()
        lead = Lead.objects.get()
    assert lead.status == Lead.Status.PROCESSED
    assert lead.welcome_note.startswith("Welcome message not sent")


def test_test_leads_are_recorded_but_get_no_welcome(client, source, tenant_a):
    channel = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    with tenant_context(tenant_a):
        LeadSource.objects.filter(pk=source.pk).update(welcome_channel=channel, welcome_text="Hi")
    post_google(client, source, google_payload(is_test=True))
    with tenant_context(tenant_a):
        lead = Lead.objects.get()
        assert lead.is_test and not Message.objects.exists()


def test_a_get_or_an_oversize_body_is_refused(client, source, settings):
    from tests.crm.lead_support import hook_url

    assert client.get(hook_url(source)).status_code == 405
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    response = post_google(client, source, google_payload())
    assert response.status_code == 413
    assert refreshed(source).rejected_count == 1
