"""The knowledge base: documents become overlapping chunks; files become text; editing and
deleting keep the chunks (and their search vectors) in step."""

from __future__ import annotations

import io
import itertools

import docx
import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from channels_app.bot import knowledge, retrieval
from channels_app.bot.models import KnowledgeChunk, KnowledgeDocument
from tenants.context import tenant_context

pytestmark = pytest.mark.django_db


def pdf_with_text(*lines: str) -> bytes:
    """A one-page PDF with `lines` of Helvetica text, cross-reference table included."""
    content = (
        "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) Tj T*" for line in lines) + " ET"
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def docx_with(*paragraphs: str) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Whitening"
    table.rows[0].cells[1].text = "250 euros"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- Chunking -------------------------------------------------------------------------------


def test_a_short_text_is_one_chunk():
    assert knowledge.split_into_chunks("We open at nine.\n\nWe close at six.") == [
        "We open at nine.\n\nWe close at six."
    ]


def test_long_text_is_split_with_overlap_and_nothing_is_lost():
    sentences = [f"Sentence number {n} says something about topic {n}." for n in range(120)]
    text = " ".join(sentences)

    chunks = knowledge.split_into_chunks(text, size=400, overlap=80)

    assert len(chunks) > 5
    assert all(len(chunk) <= 400 for chunk in chunks)
    for sentence in sentences:
        assert any(sentence in chunk for chunk in chunks), sentence
    # Each chunk starts with the end of the one before it.
    for before, after in itertools.pairwise(chunks):
        assert not after.startswith("Sentence") and after[:20] in before


def test_markdown_headings_start_chunks_and_label_them():
    text = "# Prices\n\nA cleaning is 60 euros.\n\n## Opening hours\n\nMonday to Friday, 9 to 18."

    chunks = knowledge.split_into_chunks(text)

    assert chunks == [
        "Prices\nA cleaning is 60 euros.",
        "Opening hours\nMonday to Friday, 9 to 18.",
    ]


# --- Files ----------------------------------------------------------------------------------


def test_text_is_read_from_a_pdf():
    extracted = knowledge.extract_upload(
        name="Hours.PDF", data=pdf_with_text("We open at nine on Mondays.", "Parking is free.")
    )

    assert "We open at nine on Mondays." in extracted.text
    assert "Parking is free." in extracted.text
    assert extracted.kind == KnowledgeDocument.Kind.FILE


def test_text_and_tables_are_read_from_a_docx():
    extracted = knowledge.extract_upload(
        name="prices.docx", data=docx_with("Our prices", "A cleaning is 60 euros.")
    )

    assert "A cleaning is 60 euros." in extracted.text
    assert "Whitening | 250 euros" in extracted.text


def test_markdown_and_text_files_are_read_as_utf8():
    assert knowledge.extract_upload(name="faq.md", data=b"# FAQ\n\nCaf\xc3\xa9").kind == "markdown"
    assert knowledge.extract_upload(name="faq.txt", data="Café".encode()).text == "Café"


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("photo.png", b"\x89PNG", "unsupported_file"),
        ("broken.pdf", b"%PDF-1.4 not really", "unreadable_file"),
        ("broken.docx", b"PK not a zip", "unreadable_file"),
        ("latin1.txt", "Caf\xe9".encode("latin-1"), "not_text"),
        ("empty.txt", b"   \n", "no_text"),
    ],
)
def test_files_without_readable_text_are_refused_with_a_reason(name, data, code):
    with pytest.raises(ValidationError) as caught:
        knowledge.extract_upload(name=name, data=data)

    assert caught.value.code == code


# --- Documents ------------------------------------------------------------------------------


def test_adding_a_document_makes_its_chunks(tenant_a):
    with tenant_context(tenant_a):
        document = knowledge.add_document(
            title="Hours", content="We open at nine.", kind=KnowledgeDocument.Kind.MARKDOWN
        )
        chunks = list(document.chunks.values_list("position", "text"))

    assert chunks == [(0, "We open at nine.")]
    assert document.language == "english"


def test_a_spanish_business_searches_in_spanish(tenant_a):
    tenant_a.language = "es"
    tenant_a.save()
    with tenant_context(tenant_a):
        document = knowledge.add_document(title="Horario", content="Abrimos a las nueve.")

    assert document.language == "spanish"


def test_editing_a_document_replaces_its_chunks(tenant_a):
    with tenant_context(tenant_a):
        document = knowledge.add_document(title="Hours", content="We open at nine.")
        knowledge.update_document(
            document=document, title="Hours", content="We open at ten on weekdays."
        )
        texts = list(KnowledgeChunk.objects.values_list("text", flat=True))
        found = retrieval.retrieve(question="When do you open on weekdays?")
        stale = retrieval.retrieve(question="nine")

    assert texts == ["We open at ten on weekdays."]
    assert found[0].text == "We open at ten on weekdays."
    assert stale == []


def test_deleting_a_document_removes_its_chunks(tenant_a):
    with tenant_context(tenant_a):
        document = knowledge.add_document(title="Hours", content="We open at nine.")
        knowledge.delete_document(document=document)

        assert KnowledgeChunk.objects.count() == 0
        assert retrieval.retrieve(question="When do you open?") == []


def test_a_document_needs_a_title_and_text(tenant_a):
    with tenant_context(tenant_a), pytest.raises(ValidationError) as caught:
        knowledge.add_document(title=" ", content="")

    assert set(caught.value.message_dict) == {"title", "content"}


@pytest.mark.postgres_only
def test_every_chunk_gets_a_search_vector(tenant_a):
    with tenant_context(tenant_a):
        knowledge.add_document(title="Hours", content="We open at nine.\n\n" + "x " * 600)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM channels_app_knowledgechunk WHERE search_vector IS NULL"
            )
            missing = cursor.fetchone()[0]
        total = KnowledgeChunk.objects.count()

    assert total >= 2 and missing == 0


@pytest.mark.postgres_only
def test_rebuilding_all_vectors_gives_what_each_edit_gives(tenant_a, tenant_b):
    with tenant_context(tenant_b):
        knowledge.add_document(title="Other", content="Someone else's text.")
    with tenant_context(tenant_a):
        knowledge.add_document(title="Hours", content="We open at nine.\n\n" + "word " * 300)
        before = dict(KnowledgeChunk.objects.values_list("id", "search_vector"))
        KnowledgeChunk.objects.update(search_vector=None)

        updated = knowledge.rebuild_search_vectors()

        after = dict(KnowledgeChunk.objects.values_list("id", "search_vector"))
    assert updated == len(before) and after == before
