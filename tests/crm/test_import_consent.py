"""The consent an import attests: ledger events with the import as evidence, the same derived
state as `record_consent`, and a customer's own opt-out left alone."""

from __future__ import annotations

import pytest

from channels_app.models import Medium
from crm.models import Contact
from privacy.models import ConsentAction, ConsentEvent, ConsentSource, ConsentState, Purpose
from privacy.services import record_consent, record_consent_bulk
from tenants.context import tenant_context
from tests.crm.import_support import csv_bytes, run_file
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

ROWS = [["name", "phone"], ["Ana", "+14155550100"], ["Bo", "+14155550101"]]


def state_of(contact):
    return {
        (s.medium, s.purpose): (s.action, s.source, s.last_event_id is not None)
        for s in ConsentState.objects.filter(contact=contact)
    }


def test_marketing_attestation_records_both_purposes_on_both_media_with_evidence(tenant_a, owner_a):
    result = run_file(tenant_a, owner_a, csv_bytes(ROWS), consent="marketing",
                      evidence="Signed up at the front desk")  # fmt: skip
    with tenant_context(tenant_a):
        ana = Contact.objects.get(phone="+14155550100")
        events = list(ConsentEvent.objects.filter(contact=ana))
        assert {(e.medium, e.purpose) for e in events} == {
            (Medium.WHATSAPP, Purpose.TRANSACTIONAL), (Medium.WHATSAPP, Purpose.MARKETING),
            (Medium.SMS, Purpose.TRANSACTIONAL), (Medium.SMS, Purpose.MARKETING),
        }  # fmt: skip
        event = events[0]
        assert event.source == ConsentSource.IMPORT and event.action == ConsentAction.GRANTED
        assert event.recorded_by == owner_a
        assert event.evidence == (
            f"import #{result.pk}: contacts.csv, attested by owner@alpha.example: "
            "Signed up at the front desk"
        )
        assert ConsentEvent.objects.count() == 8


def test_transactional_attestation_records_only_transactional(tenant_a, owner_a):
    run_file(tenant_a, owner_a, csv_bytes(ROWS), consent="transactional", evidence="Patients")
    with tenant_context(tenant_a):
        assert set(ConsentEvent.objects.values_list("purpose", flat=True)) == {
            Purpose.TRANSACTIONAL
        }
        assert ConsentEvent.objects.count() == 4


def test_no_consent_records_nothing(tenant_a, owner_a):
    run_file(tenant_a, owner_a, csv_bytes(ROWS), consent="none")
    with tenant_context(tenant_a):
        assert not ConsentEvent.objects.exists()


def test_evidence_is_required_unless_none(tenant_a, owner_a):
    from crm.services import imports

    with pytest.raises(imports.MappingError) as caught:
        run_file(tenant_a, owner_a, csv_bytes(ROWS), consent="marketing", evidence="  ")
    assert "consent_evidence" in caught.value.message_dict
    with pytest.raises(imports.MappingError) as caught:
        run_file(tenant_a, owner_a, csv_bytes(ROWS), consent="")
    assert "consent" in caught.value.message_dict


def test_an_import_never_overrides_a_customers_opt_out(tenant_a, owner_a):
    with tenant_context(tenant_a):
        stopped = ContactFactory(tenant=tenant_a, phone="+14155550100")
        record_consent(
            contact=stopped, media=[Medium.WHATSAPP], purposes=[Purpose.TRANSACTIONAL,
            Purpose.MARKETING], action=ConsentAction.WITHDRAWN, source=ConsentSource.KEYWORD,
        )  # fmt: skip
    run_file(tenant_a, owner_a, csv_bytes(ROWS), consent="marketing", evidence="Old list")
    with tenant_context(tenant_a):
        states = state_of(stopped)
    assert states[(Medium.WHATSAPP, Purpose.TRANSACTIONAL)][0] == ConsentAction.WITHDRAWN
    assert states[(Medium.WHATSAPP, Purpose.MARKETING)][0] == ConsentAction.WITHDRAWN
    assert states[(Medium.SMS, Purpose.MARKETING)][:2] == (
        ConsentAction.GRANTED, ConsentSource.IMPORT
    )  # fmt: skip


def test_the_bulk_variant_derives_the_same_state_as_record_consent(tenant_a):
    """Two twin histories, one written event by event, one in bulk, end in the same state."""
    with tenant_context(tenant_a):
        one = ContactFactory(tenant=tenant_a)
        twin = ContactFactory(tenant=tenant_a)
        history = [
            ([Medium.WHATSAPP], [Purpose.TRANSACTIONAL], ConsentAction.GRANTED,
             ConsentSource.AGENT),
            ([Medium.WHATSAPP, Medium.SMS], [Purpose.TRANSACTIONAL, Purpose.MARKETING],
             ConsentAction.GRANTED, ConsentSource.IMPORT),
            ([Medium.SMS], [Purpose.MARKETING], ConsentAction.WITHDRAWN, ConsentSource.KEYWORD),
        ]  # fmt: skip
        for media, purposes, action, source in history:
            record_consent(contact=one, media=media, purposes=purposes, action=action,
                           source=source, evidence="e")  # fmt: skip
            written = record_consent_bulk(contact_ids=[twin.pk], media=media, purposes=purposes,
                                          action=action, source=source, evidence="e")  # fmt: skip
            assert written == len(media) * len(purposes)
        assert state_of(one) == state_of(twin)
        assert (
            ConsentEvent.objects.filter(contact=one).count()
            == ConsentEvent.objects.filter(contact=twin).count()
        )
        for state in ConsentState.objects.filter(contact=twin):
            event = state.last_event
            assert (event.contact_id, event.medium, event.purpose, event.action) == (
                twin.pk, state.medium, state.purpose, state.action
            )  # fmt: skip
