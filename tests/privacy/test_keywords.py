"""P2: opt-out, opt-in and help keywords are recognised however they are typed."""

from __future__ import annotations

import pytest

from privacy.keywords import Keyword, classify, normalise, split_extra

OPT_OUTS = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"]


@pytest.mark.parametrize("word", OPT_OUTS)
@pytest.mark.parametrize("shape", ["{}", "{lower}", "  {} ", "{}!", "{title}.", "¡{}!", "🛑 {} 🛑"])
def test_every_opt_out_word_in_any_case_spacing_or_punctuation_opts_out(word, shape):
    text = shape.format(word, lower=word.lower(), title=word.title())
    assert classify(text, languages=["en"]) == Keyword.OPT_OUT


@pytest.mark.parametrize("word", ["START", "UNSTOP", "start", " Unstop! "])
def test_start_and_unstop_opt_in(word):
    assert classify(word, languages=["en"]) == Keyword.OPT_IN


def test_yes_restores_only_someone_who_opted_out():
    # "Yes" is an everyday answer; it only means "subscribe me again" after an opt-out.
    assert classify("Yes", languages=["en"], opted_out=False) is None
    assert classify("Yes", languages=["en"], opted_out=True) == Keyword.OPT_IN


def test_help_is_recognised():
    assert classify("help?", languages=["en"]) == Keyword.HELP


@pytest.mark.parametrize(
    "text", ["please stop calling me", "stop by tomorrow?", "I want to cancel my order", "", "  "]
)
def test_sentences_that_contain_a_keyword_are_ordinary_messages(text):
    assert classify(text, languages=["en"]) is None


def test_the_business_language_adds_its_own_keywords():
    assert classify("СТОП", languages=["ru"]) == Keyword.OPT_OUT
    assert classify("стоп!", languages=["ru"]) == Keyword.OPT_OUT
    assert classify("Baja", languages=["es"]) == Keyword.OPT_OUT
    # Not a keyword for a business that does not speak the language...
    assert classify("Baja", languages=["en"]) is None
    # ...while English keywords always work.
    assert classify("stop", languages=["ru"]) == Keyword.OPT_OUT


def test_a_business_can_add_keywords():
    extra = {Keyword.OPT_OUT: split_extra("basta, Ya no\nNO MAS")}
    assert classify("BASTA!", languages=["en"], extra=extra) == Keyword.OPT_OUT
    assert classify("ya no", languages=["en"], extra=extra) == Keyword.OPT_OUT
    assert classify("No más", languages=["en"], extra=extra) is None  # accents matter
    assert classify("no mas", languages=["en"], extra=extra) == Keyword.OPT_OUT


def test_normalise_folds_case_width_and_separators():
    assert normalise(" Opt-Out ") == normalise("OPTOUT") == "optout"
    assert normalise("ＳＴＯＰ") == "stop"  # full-width letters from some keyboards
