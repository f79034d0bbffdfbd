"""Retrieval: the right chunk ranks first, in the business's own knowledge base only."""

from __future__ import annotations

import pytest

from channels_app.bot import knowledge, retrieval
from channels_app.bot.models import KnowledgeChunk
from tenants.context import tenant_context
from tests.bot import knowledge_base

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(tenant_a):
    with tenant_context(tenant_a):
        ids = knowledge_base.load(tenant_a)
    return ids


@pytest.mark.parametrize(("question", "title"), knowledge_base.QUESTIONS)
def test_the_chunk_that_answers_ranks_first(tenant_a, shop, question, title):
    with tenant_context(tenant_a):
        found = retrieval.retrieve(question=question, limit=5)

    assert found, question
    assert found[0].document_title == title, [chunk.document_title for chunk in found]
    assert found[0].document_id == shop[title]


@pytest.mark.parametrize(("question", "title"), knowledge_base.QUESTIONS)
def test_the_python_ranking_used_on_sqlite_also_puts_it_first(tenant_a, shop, question, title):
    with tenant_context(tenant_a):
        found = retrieval.rank_in_python(question, limit=5)

    assert found[0].document_title == title, [chunk.document_title for chunk in found]


@pytest.mark.postgres_only
def test_postgres_search_uses_the_stored_vectors_in_the_business_language(tenant_a, shop):
    with tenant_context(tenant_a):
        chunk = KnowledgeChunk.objects.get(document_id=shop["Electric bikes"])
        vector = str(
            KnowledgeChunk.objects.filter(pk=chunk.pk).values_list("search_vector", flat=True)[0]
        )
        found = retrieval.retrieve(question="charging the batteries", limit=1)

    # English stemming: "batteries" and "charging" find "battery" and "charge".
    assert "'electr':1A" in vector and "'batteri':" in vector
    assert found[0].chunk_id == chunk.pk


def test_nothing_is_found_for_a_question_of_stopwords_or_unknown_words(tenant_a, shop):
    with tenant_context(tenant_a):
        assert retrieval.retrieve(question="what is it?") == []
        assert retrieval.retrieve(question="quantum chromodynamics") == []


def test_another_business_never_sees_these_chunks(tenant_a, tenant_b, shop):
    with tenant_context(tenant_b):
        knowledge.add_document(title="Our motors", content="We repair car engines and gearboxes.")
        found = retrieval.retrieve(question="How much does a full service cost?")
        fallback = retrieval.rank_in_python("How much does a full service cost?")

    assert {chunk.document_title for chunk in found + fallback} <= {"Our motors"}


def test_coverage_says_how_much_of_the_question_the_chunk_holds(tenant_a, shop):
    with tenant_context(tenant_a):
        best = retrieval.retrieve(question="How much does a full service cost?")[0]
        weak = retrieval.retrieve(question="Do you repair washing machines?")

    assert best.coverage == 1.0
    assert all(chunk.coverage < 0.5 for chunk in weak)
