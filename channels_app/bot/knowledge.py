"""The knowledge base: documents (text, Markdown, uploaded files, pasted web pages) and the
overlapping chunks retrieval searches. Adding, editing or deleting a document goes through
these functions, which keep its chunks (and, on PostgreSQL, their search vectors) in step."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchVector
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Value
from django.utils.translation import gettext as _

from channels_app.bot.models import KnowledgeChunk, KnowledgeDocument, KnowledgeTerm
from tenants.context import require_current_tenant

# Chunk sizes in characters: about a paragraph or two each, overlapping so an answer that
# straddles a boundary is whole in at least one chunk.
CHUNK_SIZE = 900
CHUNK_OVERLAP = 150
MAX_CONTENT_CHARS = 500_000
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
UPLOAD_KINDS = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".pdf": "pdf",
    ".docx": "docx",
}

# PostgreSQL text search configuration for each language the product speaks.
SEARCH_CONFIGS = {"en": "english", "es": "spanish", "pt": "portuguese", "ru": "russian"}


def search_config(language_code: str) -> str:
    return SEARCH_CONFIGS.get((language_code or "").split("-")[0].lower(), "simple")


def tenant_search_config() -> str:
    return search_config(require_current_tenant().language)


# --- Text extraction ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractedText:
    text: str
    kind: str  # KnowledgeDocument.Kind


def extract_upload(*, name: str, data: bytes) -> ExtractedText:
    """The text of an uploaded txt, md, PDF or DOCX file; ValidationError when there is none."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    kind = UPLOAD_KINDS.get(suffix)
    if kind is None:
        raise ValidationError(_("Upload a .txt, .md, .pdf or .docx file."), code="unsupported_file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(_("The file is larger than 10 MB."), code="file_too_large")
    try:
        if kind == "pdf":
            text = _pdf_text(data)
        elif kind == "docx":
            text = _docx_text(data)
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(_("The file is not UTF-8 text."), code="not_text") from exc
    except Exception as exc:  # a broken PDF or DOCX: the libraries raise many kinds
        raise ValidationError(
            _("The file could not be read (%(problem)s).") % {"problem": type(exc).__name__},
            code="unreadable_file",
        ) from exc
    text = text.strip()
    if not text:
        raise ValidationError(
            _("No text was found in the file (a scanned PDF holds only pictures)."),
            code="no_text",
        )
    document_kind = (
        KnowledgeDocument.Kind.MARKDOWN if kind == "markdown" else KnowledgeDocument.Kind.FILE
    )
    return ExtractedText(text=text, kind=document_kind)


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)


def _docx_text(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(data))
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(part for part in parts if part.strip())


# --- Chunking -------------------------------------------------------------------------------

HEADING = re.compile(r"^#{1,6}\s+(.*)$")


def split_into_chunks(text: str, *, size: int = CHUNK_SIZE, overlap: int = CHUNK_OVERLAP):
    """Overlapping chunks of about `size` characters, cut at paragraph, then sentence, then
    word boundaries. A Markdown heading starts a new chunk and is repeated at the top of each
    chunk of its section, so the chunk says what it is about."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block = block.strip()
        if not block:
            continue
        first_line, _newline, rest = block.partition("\n")
        heading = HEADING.match(first_line)
        if heading:
            sections.append((heading.group(1).strip(), []))
            block = rest.strip()
            if not block:
                continue
        sections[-1][1].append(block)

    chunks: list[str] = []
    for heading, paragraphs in sections:
        if not paragraphs:
            if heading:
                chunks.append(heading)
            continue
        prefix = f"{heading}\n" if heading else ""
        for piece in _pack(paragraphs, size=size - len(prefix), overlap=overlap):
            chunks.append(prefix + piece)
    return chunks


def _pack(paragraphs: list[str], *, size: int, overlap: int) -> list[str]:
    units: list[str] = []
    for paragraph in paragraphs:
        if len(paragraph) <= size:
            units.append(paragraph)
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            while len(sentence) > size:
                cut = sentence.rfind(" ", 0, size)
                cut = cut if cut > size // 2 else size
                units.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                units.append(sentence)
    chunks: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}\n\n{unit}" if current else unit
        if len(candidate) <= size or not current:
            current = candidate
            continue
        chunks.append(current)
        tail = current[-overlap:] if overlap else ""
        if tail and " " in tail:
            tail = tail[tail.index(" ") + 1 :]
        current = f"{tail} {unit}".strip() if tail else unit
    if current:
        chunks.append(current)
    return chunks


# --- Documents ------------------------------------------------------------------------------


def _clean(*, title: str, content: str, kind: str) -> tuple[str, str]:
    errors = {}
    title = (title or "").strip()
    content = (content or "").strip()
    if not title:
        errors["title"] = _("Give the document a title.")
    elif len(title) > 200:
        errors["title"] = _("The title can be at most 200 characters.")
    if not content:
        errors["content"] = _("The document has no text.")
    elif len(content) > MAX_CONTENT_CHARS:
        errors["content"] = _("The text is longer than %(limit)d characters.") % {
            "limit": MAX_CONTENT_CHARS
        }
    if kind not in KnowledgeDocument.Kind.values:
        errors["kind"] = _("Choose what kind of text this is.")
    if errors:
        raise ValidationError(errors)
    return title, content


@transaction.atomic
def add_document(
    *, title: str, content: str, kind: str = KnowledgeDocument.Kind.TEXT, source: str = "", by=None
) -> KnowledgeDocument:
    title, content = _clean(title=title, content=content, kind=kind)
    document = KnowledgeDocument.objects.create(
        title=title,
        kind=kind,
        source=(source or "")[:500],
        content=content,
        language=tenant_search_config(),
        created_by=by,
    )
    rebuild_chunks(document=document)
    return document


@transaction.atomic
def update_document(
    *, document: KnowledgeDocument, title: str, content: str, source: str | None = None
) -> KnowledgeDocument:
    title, content = _clean(title=title, content=content, kind=document.kind)
    changed = title != document.title or content != document.content
    document.title = title
    document.content = content
    if source is not None:
        document.source = source[:500]
    document.save()
    if changed:
        rebuild_chunks(document=document)
    return document


@transaction.atomic
def delete_document(*, document: KnowledgeDocument) -> None:
    _count_terms(document=document, sign=-1)
    document.delete()  # its chunks go with it (CASCADE)


def rebuild_chunks(*, document: KnowledgeDocument) -> int:
    """Replace the document's chunks with fresh ones from its text (and title)."""
    _count_terms(document=document, sign=-1)
    KnowledgeChunk.objects.filter(document=document).delete()
    chunks = [
        KnowledgeChunk(
            tenant_id=document.tenant_id, document=document, position=position, text=text
        )
        for position, text in enumerate(split_into_chunks(document.content))
    ]
    KnowledgeChunk.objects.bulk_create(chunks, batch_size=500)
    update_search_vectors(document=document)
    _count_terms(document=document, sign=1)
    return len(chunks)


def update_search_vectors(*, document: KnowledgeDocument) -> None:
    """PostgreSQL: each chunk's tsvector, the document title weighted A and the text B, in the
    document's language. Nothing to do on SQLite (retrieval ranks in Python there)."""
    if connection.vendor != "postgresql":
        return
    config = document.language or "simple"
    KnowledgeChunk.objects.filter(document=document).update(
        search_vector=SearchVector(Value(document.title), weight="A", config=config)
        + SearchVector("text", weight="B", config=config)
    )


def rebuild_search_vectors() -> int:
    """PostgreSQL: recompute the vector of every chunk of the active business in one statement
    (after a bulk import, or when documents changed language). Returns the rows updated."""
    if connection.vendor != "postgresql":
        return 0
    chunks = KnowledgeChunk._meta.db_table
    documents = KnowledgeDocument._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {chunks} AS c SET search_vector =
                setweight(to_tsvector(d.language::regconfig, COALESCE(d.title, '')), 'A')
                || setweight(to_tsvector(d.language::regconfig, COALESCE(c.text, '')), 'B')
            FROM {documents} AS d
            WHERE d.id = c.document_id AND c.tenant_id = %s AND d.tenant_id = %s
            """,  # noqa: S608 - our own table names; values are parameters
            [require_current_tenant().pk] * 2,
        )
        updated = cursor.rowcount
    rebuild_terms()
    return updated


# --- Word counts (PostgreSQL) ---------------------------------------------------------------

_TERMS = KnowledgeTerm._meta.db_table


def _count_terms(*, document: KnowledgeDocument, sign: int) -> None:
    """Add (sign 1) or take away (-1) the document's chunks from the business's word counts
    and postings."""
    if connection.vendor != "postgresql" or document.pk is None:
        return
    chunks = KnowledgeChunk._meta.db_table
    params = {
        "tenant": document.tenant_id,
        "document": document.pk,
        "cap": KnowledgeTerm.POSTINGS_CAP,
    }
    words = f"""
        SELECT lexeme, count(*) AS n, array_agg(id ORDER BY id) AS ids
        FROM (
            SELECT c.id, unnest(tsvector_to_array(c.search_vector)) AS lexeme
            FROM {chunks} AS c
            WHERE c.document_id = %(document)s AND c.tenant_id = %(tenant)s
        ) AS w
        GROUP BY lexeme
    """  # noqa: S608 - our own table name
    with connection.cursor() as cursor:
        if sign > 0:
            cursor.execute(
                f"""
                INSERT INTO {_TERMS} AS t (tenant_id, lexeme, chunks, chunk_ids)
                SELECT %(tenant)s, lexeme, n, CASE WHEN n <= %(cap)s THEN ids END
                FROM ({words}) AS s ORDER BY lexeme
                ON CONFLICT (tenant_id, lexeme) DO UPDATE SET
                    chunks = t.chunks + EXCLUDED.chunks,
                    chunk_ids = CASE
                        WHEN t.chunk_ids IS NULL OR EXCLUDED.chunk_ids IS NULL
                             OR t.chunks + EXCLUDED.chunks > %(cap)s THEN NULL
                        ELSE t.chunk_ids || EXCLUDED.chunk_ids END
                """,  # noqa: S608 - our own table names; values are parameters
                params,
            )
            return
        cursor.execute(
            f"""
            UPDATE {_TERMS} AS t SET
                chunks = t.chunks - s.n,
                chunk_ids = CASE WHEN t.chunk_ids IS NULL THEN NULL ELSE
                    ARRAY(SELECT x FROM unnest(t.chunk_ids) AS x WHERE x <> ALL (s.ids)) END
            FROM ({words}) AS s
            WHERE t.tenant_id = %(tenant)s AND t.lexeme = s.lexeme
            """,  # noqa: S608 - our own table names; values are parameters
            params,
        )
        cursor.execute(
            f"DELETE FROM {_TERMS} WHERE tenant_id = %s AND chunks <= 0",  # noqa: S608
            [document.tenant_id],
        )


def rebuild_terms() -> None:
    """Count every word of the active business's chunks afresh (after a bulk import)."""
    if connection.vendor != "postgresql":
        return
    tenant_id = int(require_current_tenant().pk)
    chunks = KnowledgeChunk._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_TERMS} WHERE tenant_id = %s", [tenant_id])  # noqa: S608
        cursor.execute(
            f"""
            INSERT INTO {_TERMS} (tenant_id, lexeme, chunks, chunk_ids)
            SELECT %(tenant)s, lexeme, count(*),
                   CASE WHEN count(*) <= %(cap)s THEN array_agg(id ORDER BY id) END
            FROM (
                SELECT id, unnest(tsvector_to_array(search_vector)) AS lexeme
                FROM {chunks} WHERE tenant_id = %(tenant)s
            ) AS w
            GROUP BY lexeme
            """,  # noqa: S608 - our own table names; values are parameters
            {"tenant": tenant_id, "cap": KnowledgeTerm.POSTINGS_CAP},
        )
