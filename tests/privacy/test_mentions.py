"""A subject's identifiers are found as whole numbers and whole addresses, in every form a
provider writes them, and never inside someone else's longer number or address: erasing Ana
must not delete another customer's payloads, nor fail its verification on them."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from channels_app.models import InboundWebhook
from crm.models import Contact, ContactImport, Note
from privacy import dsr, subjects
from privacy.models import DataRequest
from privacy.registry import REGISTRY
from privacy.subjects import Subject
from tenants.context import tenant_context
from tests.factories import ContactFactory, InboundWebhookFactory, NoteFactory
from tests.privacy import dsr_world
from tests.privacy.dsr_world import EMAIL, PHONE

# How the subject's own identifiers reach our tables.
THE_SUBJECT = [
    "From=whatsapp%3A%2B447700900123&Body=hi",  # Twilio, form-encoded
    '{"contacts":[{"wa_id":"447700900123"}]}',  # Meta's wa_id
    "call me on +447700900123.",
    "call me on 00447700900123",  # the international prefix typed instead of "+"
    "my%20number%20447700900123",  # percent-encoded spaces end in a digit
    "447700900123",
    "write to Ana.Subject@Example.org, please",
    "Body=write+to+ana.subject%40example.org&To=x",  # "+" is a form-encoded space
    "mailto%3Aana.subject%40example.org",
    "<ana.subject@example.org>",
    "it is ana.subject@example.org.",  # the end of a sentence
]
# Someone else, whose number or address merely contains the subject's.
SOMEONE_ELSE = [
    "From=whatsapp%3A%2B4477009001234&Body=hi",
    '{"contacts":[{"wa_id":"1447700900123"}]}',
    "call me on +4477009001239",
    "order 94477009001230 shipped",
    "write to hana.subject@example.org",
    "write to ana.subject@example.org.uk",
    "write to ana.subject@example.organic",
    "x.ana.subject@example.org",
]


def subject() -> Subject:
    return Subject(phone=PHONE, email=EMAIL)


class InMemory:
    """A stored file that `file_mentions` can open."""

    def __init__(self, data: bytes):
        self.name = "f.csv"
        self.storage = self
        self.data = data

    def __bool__(self):
        return True

    def open(self, name, mode="rb"):
        return io.BytesIO(self.data)


@pytest.mark.parametrize("text", THE_SUBJECT)
def test_every_form_of_the_subject_is_found_in_a_file(text):
    assert subjects.file_mentions(InMemory(text.encode()), subject().mentions)


@pytest.mark.parametrize("text", SOMEONE_ELSE)
def test_a_longer_number_or_address_is_someone_else_in_a_file(text):
    assert not subjects.file_mentions(InMemory(text.encode()), subject().mentions)


@pytest.mark.parametrize("offset", range(-16, 17))
def test_a_mention_cut_by_the_edge_of_a_read_is_still_found(monkeypatch, offset):
    monkeypatch.setattr(subjects, "FILE_SCAN_CHUNK", 64)
    start = 64 + offset
    data = b"x" * start + b",+447700900123," + b"y" * 200
    assert subjects.file_mentions(InMemory(data), subject().mentions)


@pytest.mark.parametrize("offset", range(-16, 17))
def test_a_longer_number_cut_by_the_edge_of_a_read_is_not_the_subject(monkeypatch, offset):
    """A read that ends right after "447700900123" of "4477009001234", or starts right
    before it, must not take the edge for the end of the number."""
    monkeypatch.setattr(subjects, "FILE_SCAN_CHUNK", 64)
    start = 64 + offset
    data = b"x" * start + b"94477009001234" + b"y" * 200
    assert not subjects.file_mentions(InMemory(data), subject().mentions)


def test_a_short_phone_is_looked_for_as_written():
    short = Subject(phone="+12345")
    assert subjects.file_mentions(InMemory(b"sms from +12345 today"), short.mentions)
    assert not subjects.file_mentions(InMemory(b"sms from 12345 today"), short.mentions)


@pytest.mark.django_db
class TestInTheDatabase:
    @pytest.fixture
    def payloads(self, tenant_a):
        ids = {}
        for text in THE_SUBJECT + SOMEONE_ELSE:
            ids[text] = InboundWebhookFactory(tenant=tenant_a, body=text).pk
        return ids

    def test_the_scan_finds_every_form_of_the_subject_and_nobody_else(self, tenant_a, payloads):
        with tenant_context(tenant_a):
            entry = REGISTRY["channels_app.InboundWebhook"]
            found = set(subjects.rows(entry, subject()).values_list("pk", flat=True))
        assert found == {payloads[text] for text in THE_SUBJECT}

    def test_erasure_keeps_other_customers_whose_identifiers_contain_the_subjects(
        self, tenant_a, django_capture_on_commit_callbacks
    ):
        world = dsr_world.build(tenant_a)
        lookalike = ContactFactory(
            tenant=tenant_a, phone="+4477009001234", email="hana.subject@example.org"
        )
        NoteFactory(tenant=tenant_a, contact=lookalike, body="Hana's own: +4477009001234")
        with tenant_context(tenant_a):
            kept = InboundWebhookFactory(tenant=tenant_a, body=SOMEONE_ELSE[0])
            upload = ContactImport(original_name="hana.csv", headers=["name", "phone"])
            upload.file.save(
                "hana.csv", ContentFile(b"name,phone\nHana,+4477009001234\n"), save=True
            )
            data_request = dsr.create_request(
                kind=DataRequest.Kind.ERASURE, phone=PHONE, email=EMAIL
            )
            with django_capture_on_commit_callbacks(execute=True):
                dsr.confirm_request(data_request=data_request)
            data_request.refresh_from_db()

            assert data_request.status == DataRequest.Status.DONE
            # Hana's number and address hold Ana's: the verification does not count them.
            assert data_request.verification["clean"] is True, data_request.verification
            assert not Contact.objects.filter(pk=world.subject.pk).exists()
            assert Contact.objects.filter(pk=lookalike.pk).exists()
            assert Note.objects.filter(contact=lookalike).count() == 1
            assert InboundWebhook.objects.filter(pk=kept.pk).exists()
            assert ContactImport.objects.filter(pk=upload.pk).exists()


def test_erasure_blanks_what_names_the_subject_in_rows_it_keeps_for_someone_else(
    client, tenant_a, owner_a, django_capture_on_commit_callbacks
):
    """An access-log line naming the address an owner searched for, and another customer's
    consent evidence quoting the number, stay as the business's record, without the subject."""
    from channels_app.models import Medium
    from privacy.access_log import Action
    from privacy.models import AccessLogEntry, ConsentAction, ConsentEvent, ConsentSource, Purpose
    from privacy.services import record_consent

    world = dsr_world.build(tenant_a)
    client.force_login(owner_a)
    export_url = reverse("crm:contacts_export", kwargs={"tenant_slug": tenant_a.slug})
    assert client.get(export_url, {"q": EMAIL}).status_code == 200
    with tenant_context(tenant_a):
        searched = AccessLogEntry.objects.get(action=Action.EXPORTED_CONTACTS)
        assert EMAIL.replace("@", "%40") in searched.detail  # the filter, URL-encoded
        record_consent(
            contact=world.other,
            media=[Medium.WHATSAPP],
            purposes=[Purpose.MARKETING],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
            evidence=f"Bruno agreed; his sister is on {PHONE}",
        )
        data_request = dsr.create_request(kind=DataRequest.Kind.ERASURE, phone=PHONE, email=EMAIL)
        # What will be blanked is shown before anything is done.
        assert data_request.findings["models"]["privacy.AccessLogEntry"] >= 2
        with django_capture_on_commit_callbacks(execute=True):
            dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
        searched.refresh_from_db()
        quoted = ConsentEvent.objects.get(contact=world.other, purpose=Purpose.MARKETING)

    assert data_request.verification["clean"] is True, data_request.verification
    assert searched.detail == "" and searched.actor_id == owner_a.pk
    # Bruno's consent stays his, without the sentence that named Ana.
    assert quoted.evidence == "" and quoted.action == ConsentAction.GRANTED
