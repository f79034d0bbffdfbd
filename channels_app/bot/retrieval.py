"""Knowledge-base retrieval: the chunks of the active business's knowledge base that best
answer a question, best first.

PostgreSQL: a ranked full-text query (`ts_rank` over the chunks' `tsvector`, title weighted
above text, in the business's language, through the GIN index). The question's telling words
(see `search_query`) are searched: any may match, the rank rewards chunks that match more.
SQLite (development): the same question ranked in Python with BM25 over the chunks' words.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter

from django.db import connection

from channels_app.bot.knowledge import search_config
from channels_app.bot.models import KnowledgeChunk, KnowledgeDocument, KnowledgeTerm
from tenants.context import require_current_tenant

WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 32

# Words that say nothing about what is asked (English, plus the commonest of the product's
# other languages); PostgreSQL's own configurations drop theirs.
_STOPWORD_TEXT = """a about above after again all am an and any are as at be because been
    before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its just
    me more most my no nor not now of off on once only or other our ours out over own same
    she should so some such than that the their them then there these they this those
    through to too under until up very was we were what when where which while who whom
    why will with would you your yours hi hello please thanks thank tell know want like
    get much many also us de la el en que y los las un una por con para es o el del se
    no lo le su al como mas pero sus ya o и в не на что я с он как а то это по но из у"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclasses.dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: int
    document_id: int
    document_title: str
    text: str
    score: float
    # Share of the question's meaningful words found in the chunk (0..1): how sure a purely
    # extractive answer can be.
    coverage: float = 0.0


def stem(word: str) -> str:
    """A deliberately small suffix stripper (the fallback's stand-in for a real stemmer)."""
    word = word.lower()
    for suffix in ("ings", "ing", "ies", "ied", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def terms(text: str) -> list[str]:
    """The meaningful words of `text`, stemmed, in order (repeats kept)."""
    found = []
    for word in WORD.findall(text.lower()):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        found.append(stem(word))
    return found


def coverage(question_terms: set[str], text: str) -> float:
    if not question_terms:
        return 0.0
    return len(question_terms & set(terms(text))) / len(question_terms)


def retrieve(*, question: str, limit: int = 5) -> list[RetrievedChunk]:
    """The `limit` best chunks for `question` in the active tenant (empty when none match)."""
    question_terms = set(terms(question))
    if not question_terms:
        return []
    if connection.vendor == "postgresql":
        found = _rank_in_postgres(question, limit=limit)
    else:
        found = rank_in_python(question, limit=limit)
    return [
        dataclasses.replace(
            chunk, coverage=coverage(question_terms, f"{chunk.document_title}\n{chunk.text}")
        )
        for chunk in found
    ]


# A question is searched by its rarest words whose chunks add up to at most this many: words
# found in most chunks ("price", "open" in a shop's knowledge base) say little about which
# chunk answers, and ranking every chunk that holds them would cost a large knowledge base
# its speed. When even the rarest word is over the budget, the chunks must hold the rarest
# words together (three, then two, then the rarest alone), and at most CANDIDATES of them
# are ranked: such a question has no telling word.
TERM_BUDGET = 500
AND_TERMS = 3
CANDIDATES = 1000


@dataclasses.dataclass(frozen=True)
class Search:
    query: str  # a tsquery, as text
    # Ids of the chunks that can match (from the word postings), or None: unknown, the
    # chunks are filtered by the query itself (at most CANDIDATES of them).
    candidates: list[int] | None


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _question_terms(question: str) -> list[tuple[str, int, list[int] | None]]:
    """The question's lexemes found in the active business's knowledge base, with how many
    chunks hold each and which (when known), rarest first."""
    tenant = require_current_tenant()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT t.lexeme, t.chunks, t.chunk_ids
            FROM (
                SELECT DISTINCT unnest(tsvector_to_array(to_tsvector(%s::regconfig, %s)))
                    AS lexeme
            ) AS q
            JOIN {KnowledgeTerm._meta.db_table} AS t
              ON t.tenant_id = %s AND t.lexeme = q.lexeme AND t.chunks > 0
            ORDER BY t.chunks, t.lexeme
            LIMIT %s
            """,  # noqa: S608 - our own table name; values are parameters
            [search_config(tenant.language), question, tenant.pk, MAX_QUERY_TERMS],
        )
        return cursor.fetchall()


def searches(question: str) -> list[Search]:
    """What retrieval tries for `question`, in order, until one finds chunks; empty when none
    of its words is in the knowledge base."""
    found = _question_terms(question)
    if not found:
        return []
    chosen, total = [], 0
    for term in found:
        if chosen and total + term[1] > TERM_BUDGET:
            break
        chosen.append(term)
        total += term[1]
    if total <= TERM_BUDGET or len(found) == 1:
        known = all(ids is not None for _lexeme, _chunks, ids in chosen)
        candidates = sorted({i for _l, _c, ids in chosen for i in ids}) if known else None
        return [Search(" | ".join(_quote(t[0]) for t in chosen), candidates)]
    rarest = found[:AND_TERMS]
    first_ids = rarest[0][2]
    candidates = first_ids[:CANDIDATES] if first_ids is not None else None
    return [
        Search(" & ".join(_quote(t[0]) for t in rarest[:count]), candidates)
        for count in range(len(rarest), 0, -1)
    ]


def search_queries(question: str) -> list[str]:
    return [search.query for search in searches(question)]


def search_query(question: str) -> str | None:
    queries = search_queries(question)
    return queries[0] if queries else None


def _rank_in_postgres(question: str, *, limit: int) -> list[RetrievedChunk]:
    chunks, documents = KnowledgeChunk._meta.db_table, KnowledgeDocument._meta.db_table
    tenant_id = require_current_tenant().pk
    rows = []
    for search in searches(question):
        # By primary key when the candidates are known (an index the row-level security
        # check allows), else filtered by the query itself.
        where = "id = ANY(%(ids)s)" if search.candidates is not None else "TRUE"
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT m.id, m.document_id, d.title, m.text, m.rank
                FROM (
                    SELECT c.id, c.document_id, c.text,
                           ts_rank(c.search_vector, query.q, 1) AS rank
                    FROM (
                        SELECT id, document_id, text, search_vector
                        FROM {chunks}
                        WHERE tenant_id = %(tenant)s AND {where}
                          AND search_vector @@ %(query)s::tsquery
                        LIMIT %(candidates)s
                    ) AS c, (SELECT %(query)s::tsquery AS q) AS query
                    ORDER BY rank DESC, c.id
                    LIMIT %(limit)s
                ) AS m
                JOIN {documents} AS d ON d.id = m.document_id AND d.tenant_id = %(tenant)s
                ORDER BY m.rank DESC, m.id
                """,  # noqa: S608 - our own table names and a fixed condition; values are parameters
                {
                    "tenant": tenant_id,
                    "ids": search.candidates,
                    "query": search.query,
                    "candidates": CANDIDATES,
                    "limit": limit,
                },
            )
            rows = cursor.fetchall()
        if rows:
            break
    return [
        RetrievedChunk(
            chunk_id=pk, document_id=document_id, document_title=title, text=body, score=rank
        )
        for pk, document_id, title, body, rank in rows
    ]


# BM25 parameters (the usual ones) and the weight of a word in the document's title.
K1 = 1.2
B = 0.75
TITLE_WEIGHT = 2


def rank_in_python(question: str, *, limit: int = 5) -> list[RetrievedChunk]:
    """BM25 over every chunk of the active tenant; titles count double. Works on any database
    (it is what SQLite uses), reading the chunks once."""
    wanted = set(terms(question))
    if not wanted:
        return []
    columns = ("id", "document_id", "document__title", "text")
    rows = list(KnowledgeChunk.objects.order_by().values_list(*columns))
    if not rows:
        return []
    bags = []
    frequency: Counter[str] = Counter()
    for _pk, _document_id, title, body in rows:
        bag = Counter(terms(body))
        for word in terms(title):
            bag[word] += TITLE_WEIGHT
        bags.append(bag)
        frequency.update(word for word in bag if word in wanted)
    count = len(rows)
    average = sum(sum(bag.values()) for bag in bags) / count or 1.0
    scored = []
    for row, bag in zip(rows, bags, strict=True):
        length = sum(bag.values())
        score = 0.0
        for word in wanted:
            tf = bag.get(word, 0)
            if not tf:
                continue
            idf = math.log(1 + (count - frequency[word] + 0.5) / (frequency[word] + 0.5))
            score += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
        if score > 0:
            scored.append((score, row))
    scored.sort(key=lambda pair: (-pair[0], pair[1][0]))
    return [
        RetrievedChunk(
            chunk_id=pk, document_id=document_id, document_title=title, text=body, score=score
        )
        for score, (pk, document_id, title, body) in scored[:limit]
    ]
