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


# --- Word counts: the question's telling words are searched (PostgreSQL) --------------------


def counts(tenant) -> dict[str, int]:
    from channels_app.bot.models import KnowledgeTerm

    with tenant_context(tenant):
        return dict(KnowledgeTerm.objects.values_list("lexeme", "chunks"))


@pytest.mark.postgres_only
def test_word_counts_follow_adding_editing_and_deleting(tenant_a):
    with tenant_context(tenant_a):
        first = knowledge.add_document(title="Hours", content="We open at nine.")
        knowledge.add_document(title="Prices", content="A service costs 95 euros. We open late.")
    assert counts(tenant_a)["open"] == 2 and counts(tenant_a)["hour"] == 1

    with tenant_context(tenant_a):
        knowledge.update_document(document=first, title="Hours", content="Closed on Sundays.")
    assert counts(tenant_a)["open"] == 1 and counts(tenant_a)["sunday"] == 1

    with tenant_context(tenant_a):
        knowledge.delete_document(document=first)
    assert "sunday" not in counts(tenant_a) and "hour" not in counts(tenant_a)


@pytest.mark.postgres_only
def test_words_found_nearly_everywhere_are_left_out_of_the_search(tenant_a, monkeypatch):
    monkeypatch.setattr(retrieval, "TERM_BUDGET", 6)
    with tenant_context(tenant_a):
        for number in range(8):
            knowledge.add_document(title=f"Bike {number}", content=f"Our bike model {number}.")
        knowledge.add_document(title="Helmets", content="Every bike needs a helmet: 30 euros.")

        query = retrieval.search_query("How much is a helmet for my bike?")
        found = retrieval.retrieve(question="How much is a helmet for my bike?")
        everywhere = retrieval.search_query("bike")

    assert query == "'helmet'"  # "bike" is in 9 chunks: over the budget
    assert found[0].document_title == "Helmets"
    assert everywhere == "'bike'"  # the only word: searched anyway


@pytest.mark.postgres_only
def test_a_question_with_only_common_words_needs_them_together(tenant_a, monkeypatch):
    monkeypatch.setattr(retrieval, "TERM_BUDGET", 1)
    with tenant_context(tenant_a):
        for number in range(5):
            knowledge.add_document(title=f"Bike {number}", content=f"Red bike, model {number}.")
        knowledge.add_document(title="Blue", content="A blue bike costs more than a red one.")
        knowledge.add_document(title="Green", content="Green bikes cost less than red ones.")

        queries = retrieval.search_queries("red bike cost")
        found = retrieval.retrieve(question="red bike cost")

    # Even the rarest word is over the budget: the rarest together, then fewer of them.
    assert queries == ["'cost' & 'bike' & 'red'", "'cost' & 'bike'", "'cost'"]
    assert {chunk.document_title for chunk in found} == {"Blue", "Green"}


@pytest.mark.postgres_only
def test_postings_list_the_chunks_of_rare_words_and_are_dropped_for_common_ones(
    tenant_a, monkeypatch
):
    from channels_app.bot.models import KnowledgeTerm

    monkeypatch.setattr(KnowledgeTerm, "POSTINGS_CAP", 2)
    with tenant_context(tenant_a):
        first = knowledge.add_document(title="One", content="A helmet and a bike.")
        second = knowledge.add_document(title="Two", content="A bike lock.")
        knowledge.add_document(title="Three", content="A bike light.")
        postings = dict(KnowledgeTerm.objects.values_list("lexeme", "chunk_ids"))
        [first_chunk] = first.chunks.values_list("id", flat=True)
        [second_chunk] = second.chunks.values_list("id", flat=True)
        assert postings["helmet"] == [first_chunk]
        assert postings["bike"] is None  # in three chunks: over the cap

        knowledge.delete_document(document=second)
        assert KnowledgeTerm.objects.get(lexeme="bike").chunks == 2
        assert not KnowledgeTerm.objects.filter(lexeme="lock").exists()
        assert retrieval.retrieve(question="helmet")[0].chunk_id == first_chunk
        assert second_chunk not in {c.chunk_id for c in retrieval.retrieve(question="bike")}
