"""Knowledge-base retrieval: the chunks of the active business's knowledge base that best
answer a question, best first."""

from __future__ import annotations

import dataclasses
import re

from channels_app.bot.models import KnowledgeChunk

WORD = re.compile(r"\w+", re.UNICODE)


@dataclasses.dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: int
    document_id: int
    document_title: str
    text: str
    score: float


def retrieve(*, question: str, limit: int = 5) -> list[RetrievedChunk]:
    """The `limit` best chunks for `question` in the active tenant (empty when none match).

    A plain term-overlap ranking over every chunk.
    """
    terms = {word.lower() for word in WORD.findall(question) if len(word) > 2}
    if not terms:
        return []
    scored = []
    for chunk in KnowledgeChunk.objects.select_related("document"):
        words = [word.lower() for word in WORD.findall(chunk.text)]
        score = sum(1 for word in words if word in terms) / (1 + len(words)) ** 0.5
        if score > 0:
            scored.append((score, chunk))
    scored.sort(key=lambda pair: (-pair[0], pair[1].pk))
    return [
        RetrievedChunk(
            chunk_id=chunk.pk,
            document_id=chunk.document_id,
            document_title=chunk.document.title,
            text=chunk.text,
            score=score,
        )
        for score, chunk in scored[:limit]
    ]
