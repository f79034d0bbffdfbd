"""P8: erasure is complete — nothing of the person remains, derived copies included — the
business keeps an anonymised proof, other customers are untouched, and the result is verified."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection

from channels_app.models import AIUsage, Conversation, InboundWebhook, KnowledgeChunk, Message
from crm.models import Contact, ContactImport, Deal, Note
from privacy import dsr, erasure, subjects, tasks, tenant_deletion
from privacy.models import AccessLogEntry, BusinessExport, ConsentEvent, DataRequest
from tenants.context import tenant_context
from tenants.models import Membership
from tests.factories import ContactFactory, InboundWebhookFactory
from tests.privacy import dsr_world
from tests.privacy.dsr_world import DIGITS, EMAIL, OTHER_EMAIL, OTHER_PHONE, PHONE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def world(tenant_a):
    return dsr_world.build(tenant_a)


class OpenRecordingStorage(FileSystemStorage):
    """The disk, noting every file that is opened."""

    opened: list[str] = []

    def _open(self, name, mode="rb"):
        self.opened.append(name)
        return super()._open(name, mode)


def export_everything(tenant, owner) -> BusinessExport:
    """The owner's export of the whole business, prepared and ready."""
    with tenant_context(tenant):
        export, _ = tenant_deletion.request_export(
            tenant=tenant, by=Membership.objects.get(tenant=tenant, user=owner)
        )
    assert tasks.prepare_business_export(tenant.pk, export.pk) == "ready"
    with tenant_context(tenant):
        return BusinessExport.objects.get(pk=export.pk)


def carry_out(data_request, capture):
    with tenant_context(data_request.tenant):
        with capture(execute=True):
            dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
    return data_request


def erase(world, capture, **identifiers):
    identifiers = identifiers or {"phone": PHONE, "email": EMAIL}
    with tenant_context(world.tenant):
        data_request = dsr.create_request(kind=DataRequest.Kind.ERASURE, **identifiers)
        return carry_out(data_request, capture)


def tables_mentioning(needle: str) -> dict[str, int]:
    """Every text, JSON and search-vector column of every table, searched with SQL (what the
    registry says does not matter here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = current_schema()
              AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'tsvector')
            """
        )
        columns = cursor.fetchall()
        found = {}
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',
                [f"%{needle}%"],
            )
            count = cursor.fetchone()[0]
            if count:
                found[f"{table}.{column}"] = count
        return found


@pytest.mark.postgres_only
def test_after_erasure_no_table_holds_the_phone_or_the_email(
    world, django_capture_on_commit_callbacks
):
    with tenant_context(world.tenant):
        # The world really has the identifiers in many places, or the test proves nothing.
        assert len(tables_mentioning(DIGITS)) >= 7
        assert len(tables_mentioning(EMAIL)) >= 8

    data_request = erase(world, django_capture_on_commit_callbacks)

    assert data_request.status == DataRequest.Status.DONE
    with tenant_context(world.tenant):
        assert tables_mentioning(DIGITS) == {}
        assert tables_mentioning(EMAIL) == {}
        assert tables_mentioning(EMAIL.replace("@", "%40")) == {}
        # The other customer is all there.
        assert tables_mentioning(OTHER_PHONE.lstrip("+"))
        assert tables_mentioning(OTHER_EMAIL)


def test_erasure_deletes_the_person_and_derived_copies(world, django_capture_on_commit_callbacks):
    data_request = erase(world, django_capture_on_commit_callbacks)

    with tenant_context(world.tenant):
        assert not Contact.objects.filter(pk=world.subject.pk).exists()
        assert not Conversation.objects.filter(pk=world.conversation.pk).exists()
        assert not Message.objects.filter(conversation_id=world.conversation.pk).exists()
        assert not Note.objects.filter(body__contains=PHONE).exists()
        # Raw payloads in the providers' forms, the knowledge chunk and its search vector.
        assert InboundWebhook.objects.count() == 1
        assert not KnowledgeChunk.objects.filter(text__contains=EMAIL).exists()
        assert KnowledgeChunk.objects.filter(pk=world.kept_chunk.pk).exists()
        # The uploaded file that listed the person is gone, file and all.
        assert list(ContactImport.objects.values_list("original_name", flat=True)) == ["other.csv"]
        assert data_request.result["models"]["crm.ContactImport"]["files"] == 1
        # Billing keeps token counts, without the conversation.
        usage = AIUsage.objects.get(pk=world.usage.pk)
        assert usage.conversation_id is None and usage.tokens_in == 120
        # The deal stays for the sales figures, without the person or its title.
        deal = Deal.objects.get(pk=world.deal.pk)
        assert deal.contact_id is None and deal.title == "" and deal.value == 1500


def test_other_customers_are_untouched(world, django_capture_on_commit_callbacks):
    with tenant_context(world.tenant):
        before = {
            "messages": Message.objects.filter(conversation=world.other_conversation).count(),
            "notes": Note.objects.filter(contact=world.other).count(),
            "consent": ConsentEvent.objects.filter(contact=world.other).count(),
        }
    erase(world, django_capture_on_commit_callbacks)
    with tenant_context(world.tenant):
        other = Contact.objects.get(pk=world.other.pk)
        assert (other.phone, other.email) == (OTHER_PHONE, OTHER_EMAIL)
        assert before == {
            "messages": Message.objects.filter(conversation=world.other_conversation).count(),
            "notes": Note.objects.filter(contact=world.other).count(),
            "consent": ConsentEvent.objects.filter(
                contact=world.other, evidence="Bruno agreed"
            ).count(),
        }
        assert InboundWebhook.objects.filter(body__contains="447700900456").exists()
        assert ContactImport.objects.filter(original_name="other.csv").exists()
        assert AIUsage.objects.filter(conversation=world.other_conversation).exists()


def test_another_business_with_the_same_phone_keeps_its_contact(
    world, tenant_b, django_capture_on_commit_callbacks
):
    theirs = ContactFactory(tenant=tenant_b, phone=PHONE, email=EMAIL)
    erase(world, django_capture_on_commit_callbacks)
    with tenant_context(tenant_b):
        assert Contact.objects.filter(pk=theirs.pk, phone=PHONE).exists()


def test_the_consent_ledger_and_access_log_are_kept_as_anonymised_proof(
    world, django_capture_on_commit_callbacks
):
    with tenant_context(world.tenant):
        events = list(
            ConsentEvent.objects.filter(contact=world.subject).values_list("pk", flat=True)
        )
        entries = list(
            AccessLogEntry.objects.filter(subject=world.subject).values_list("pk", flat=True)
        )
    assert len(events) == 2 and entries

    erase(world, django_capture_on_commit_callbacks)

    with tenant_context(world.tenant):
        for event in ConsentEvent.objects.filter(pk__in=events):
            assert event.contact_id is None and event.evidence == ""
            assert event.message_id is None  # the message it pointed at is gone
            assert event.action == "granted" and event.medium == "whatsapp"
        for entry in AccessLogEntry.objects.filter(pk__in=entries):
            assert entry.subject_id is None and entry.action == "viewed_contact"
        # The erasure itself is in the access log, naming nobody.
        erased = AccessLogEntry.objects.get(action=AccessLogEntry.Action.ERASED_SUBJECT)
        assert erased.subject_id is None and PHONE not in erased.detail


def test_the_request_is_kept_as_proof_with_hashed_identifiers_and_verification(
    world, django_capture_on_commit_callbacks
):
    data_request = erase(world, django_capture_on_commit_callbacks)

    assert (data_request.subject_phone, data_request.subject_email) == ("", "")
    assert data_request.contact_id is None
    assert data_request.subject_phone_hash == dsr.identifier_hash(PHONE, tenant_id=world.tenant.pk)
    assert data_request.subject_email_hash and EMAIL not in data_request.subject_email_hash
    assert data_request.verification["clean"] is True
    assert data_request.verification["hits"] == {}
    assert data_request.result["models"]["crm.Contact"] == {
        "action": "delete",
        "rows": 1,
        "files": 0,
    }
    assert data_request.result["models"]["channels_app.Message"]["rows"] == 4
    assert data_request.completed_at is not None
    # Nothing in the record names the person.
    record = str(data_request.result) + str(data_request.verification) + str(data_request.findings)
    assert DIGITS not in record and EMAIL not in record


def test_what_was_found_is_shown_before_anything_is_erased(world):
    with tenant_context(world.tenant):
        data_request = dsr.create_request(kind=DataRequest.Kind.ERASURE, phone=PHONE)
        assert data_request.status == DataRequest.Status.AWAITING_CONFIRMATION
        found = data_request.findings["models"]
        assert found["crm.Contact"] == 1
        assert found["channels_app.Message"] == 4
        assert found["channels_app.InboundWebhook"] == 2
        assert found["crm.ContactImport"] == 1
        assert not data_request.findings["nothing_found"]
        # Nothing happened yet.
        assert Contact.objects.filter(pk=world.subject.pk).exists()


def test_verification_reports_copies_it_cannot_erase(world, django_capture_on_commit_callbacks):
    # Another customer quoted the subject's number in a message of their own.
    from tests.factories import MessageFactory

    MessageFactory(
        tenant=world.tenant, conversation=world.other_conversation, body=f"my friend is {PHONE}"
    )
    data_request = erase(world, django_capture_on_commit_callbacks)
    assert data_request.verification["clean"] is False
    assert data_request.verification["hits"] == {"channels_app.Message": 1}


def test_a_second_erasure_finds_nothing_and_says_so(world, django_capture_on_commit_callbacks):
    first = erase(world, django_capture_on_commit_callbacks)
    with tenant_context(world.tenant):
        second = dsr.create_request(kind=DataRequest.Kind.ERASURE, phone=PHONE, email=EMAIL)
    assert second.findings["nothing_found"] is True
    assert second.findings["previous_request"] == first.pk
    assert second.findings["previously_erased_on"] == first.completed_at.date().isoformat()
    second = carry_out(second, django_capture_on_commit_callbacks)
    assert second.status == DataRequest.Status.DONE
    assert second.result["nothing_found"] is True
    assert second.verification["clean"] is True


def test_running_the_task_twice_is_harmless(world, django_capture_on_commit_callbacks):
    from privacy.tasks import run_data_request

    data_request = erase(world, django_capture_on_commit_callbacks)
    assert run_data_request(world.tenant.pk, data_request.pk) == DataRequest.Status.DONE
    with tenant_context(world.tenant):
        data_request.refresh_from_db()
    assert data_request.verification["clean"] is True


def test_an_erasure_interrupted_halfway_is_finished_by_the_next_run(
    world, django_capture_on_commit_callbacks
):
    from privacy import erasure, subjects
    from privacy.tasks import run_data_request

    with tenant_context(world.tenant):
        data_request = dsr.create_request(kind=DataRequest.Kind.ERASURE, phone=PHONE, email=EMAIL)
        # The worker died after the messages went: part of the data is already gone.
        subject = subjects.find_subject(phone=PHONE, email=EMAIL)
        entry = subjects.REGISTRY["channels_app.Message"]
        erasure._delete_in_batches(Message, subjects.rows(entry, subject))
        DataRequest.objects.filter(pk=data_request.pk).update(status=DataRequest.Status.IN_PROGRESS)

    run_data_request(world.tenant.pk, data_request.pk)

    with tenant_context(world.tenant):
        data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.DONE
    assert data_request.verification["clean"] is True
    with tenant_context(world.tenant):
        assert not Contact.objects.filter(pk=world.subject.pk).exists()


def test_erasure_by_email_only_finds_the_contact_and_its_phone_copies(
    world, django_capture_on_commit_callbacks
):
    data_request = erase(world, django_capture_on_commit_callbacks, email=EMAIL.upper())
    assert data_request.status == DataRequest.Status.DONE
    with tenant_context(world.tenant):
        assert not Contact.objects.filter(pk=world.subject.pk).exists()


def test_erasure_by_phone_also_erases_what_names_only_the_contacts_email(
    world, django_capture_on_commit_callbacks
):
    """The request gave the phone; the contact it matched also has an e-mail address, and the
    knowledge base and a raw payload name only that address."""
    InboundWebhookFactory(tenant=world.tenant, channel=world.channel, body=f'{{"from": "{EMAIL}"}}')
    data_request = erase(world, django_capture_on_commit_callbacks, phone=PHONE)

    assert data_request.status == DataRequest.Status.DONE
    assert data_request.verification["clean"] is True
    with tenant_context(world.tenant):
        assert not KnowledgeChunk.objects.filter(text__icontains=EMAIL).exists()
        assert not InboundWebhook.objects.filter(body__icontains=EMAIL).exists()
        assert KnowledgeChunk.objects.filter(pk=world.kept_chunk.pk).exists()


def test_the_operator_command_verifies_an_erasure(world, django_capture_on_commit_callbacks):
    from django.core.management import call_command

    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("verify_erasure", business=world.tenant.slug, phone=PHONE, stdout=out)
    assert "crm.Contact: 1 row(s)" in out.getvalue()
    assert "channels_app.Message: 4 row(s)" in out.getvalue()

    erase(world, django_capture_on_commit_callbacks)

    out = io.StringIO()
    call_command("verify_erasure", business=world.tenant.slug, phone=PHONE, stdout=out)
    assert out.getvalue().startswith("Clean:")


def test_the_verification_looks_inside_an_export_of_the_whole_business(world, owner_a):
    export_everything(world.tenant, owner_a)

    with tenant_context(world.tenant):
        result = erasure.verify(subjects.find_subject(email=EMAIL))

    # The zip is compressed: only read uncompressed does it show the person.
    assert result["hits"]["privacy.BusinessExport"] == 1


def test_erasure_deletes_the_export_of_the_whole_business_before_verifying(
    world, owner_a, settings, django_capture_on_commit_callbacks
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.OpenRecordingStorage"},
    }
    export = export_everything(world.tenant, owner_a)
    OpenRecordingStorage.opened.clear()

    data_request = erase(world, django_capture_on_commit_callbacks)

    assert data_request.result["business_exports_removed"] == 1
    assert "The export of the whole business was deleted too" in data_request.result["summary"]
    assert data_request.verification["clean"] is True
    # Its file is gone, so the verification had no archive of everything to read through.
    assert export.file.name not in OpenRecordingStorage.opened
    with tenant_context(world.tenant):
        export.refresh_from_db()
    assert export.file.name == "" and export.removed_because == "erasure"
    # A second erasure finds no export left to delete, and says nothing of one.
    with tenant_context(world.tenant):
        again = dsr.create_request(kind=DataRequest.Kind.ERASURE, phone=OTHER_PHONE)
    again = carry_out(again, django_capture_on_commit_callbacks)
    assert again.result["business_exports_removed"] == 0
    assert "export" not in again.result["summary"]
