"""Opt-out, opt-in and help keywords (P2).

A message is a keyword when, once spaces, punctuation, symbols and case are set aside, it is
exactly one: "stop", " STOP! ", "Stop." and "opt-out" are; "please stop the spam" is not
(carriers and providers match whole messages too, so a customer's sentence that contains
"stop" is not an opt-out). English keywords always apply; the business's language adds its
own, and the business can add more.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


BUILT_IN: dict[str, dict[Keyword, tuple[str, ...]]] = {
    "en": {
        Keyword.OPT_OUT: (
            "STOP",
            "STOPALL",
            "STOP ALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "OPTOUT",
            "OPT OUT",
            "REVOKE",
        ),
        Keyword.OPT_IN: ("START", "UNSTOP", "YES", "OPT IN", "OPTIN"),
        Keyword.HELP: ("HELP", "INFO"),
    },
    "es": {
        Keyword.OPT_OUT: ("BAJA", "PARAR", "DETENER", "CANCELAR", "DARSE DE BAJA"),
        Keyword.OPT_IN: ("ALTA", "COMENZAR", "SI", "SÍ"),
        Keyword.HELP: ("AYUDA",),
    },
    "pt": {
        Keyword.OPT_OUT: ("PARAR", "SAIR", "CANCELAR", "DESCADASTRAR"),
        Keyword.OPT_IN: ("INICIAR", "VOLTAR", "SIM"),
        Keyword.HELP: ("AJUDA",),
    },
    "ru": {
        Keyword.OPT_OUT: ("СТОП", "ОТПИСАТЬСЯ", "ОТПИСКА", "ХВАТИТ"),
        Keyword.OPT_IN: ("СТАРТ", "ПОДПИСАТЬСЯ", "ДА"),
        Keyword.HELP: ("ПОМОЩЬ", "СПРАВКА"),
    },
}

# Affirmative words restore consent only from someone who opted out; for everyone else "yes"
# is an ordinary answer ("yes, Tuesday works").
ONLY_WHEN_OPTED_OUT = frozenset({"YES", "SI", "SÍ", "SIM", "ДА"})

_SEPARATORS = re.compile(r"[\s\-_]+")


def normalise(text: str) -> str:
    """Case-folded, without punctuation, symbols (emoji), spaces or hyphens."""
    text = unicodedata.normalize("NFKC", text or "")
    kept = "".join(ch for ch in text if not unicodedata.category(ch).startswith(("P", "S", "C")))
    return _SEPARATORS.sub("", kept).casefold()


def split_extra(text: str) -> list[str]:
    """A business's extra keywords: one per line or comma-separated."""
    return [part.strip() for part in re.split(r"[,\n]", text or "") if part.strip()]


def keyword_table(
    *, languages: list[str], extra: dict[Keyword, list[str]] | None = None
) -> dict[str, tuple[Keyword, bool]]:
    """normalised word → (meaning, only when opted out)."""
    table: dict[str, tuple[Keyword, bool]] = {}
    for language in ["en", *[lang for lang in languages if lang != "en"]]:
        for meaning, words in BUILT_IN.get(language, {}).items():
            for word in words:
                table.setdefault(normalise(word), (meaning, word in ONLY_WHEN_OPTED_OUT))
    for meaning, words in (extra or {}).items():
        for word in words:
            if normalise(word):
                table[normalise(word)] = (meaning, False)
    return table


def classify(
    text: str,
    *,
    languages: list[str],
    extra: dict[Keyword, list[str]] | None = None,
    opted_out: bool = False,
) -> Keyword | None:
    word = normalise(text)
    if not word or len(word) > 40:
        return None
    found = keyword_table(languages=languages, extra=extra).get(word)
    if found is None:
        return None
    meaning, only_when_opted_out = found
    if only_when_opted_out and not opted_out:
        return None
    return meaning
