"""Who writes the bot's answers: an OpenAI-compatible model through the official `openai` SDK,
or, when no key is configured, the local responder that quotes the best knowledge-base chunk.

Both take a `BotRequest` (built by the pipeline from the conversation's recent messages and
the retrieved chunks only) and return a `BotAnswer`. The model says it cannot answer through
structured output (`hand_off` in a strict JSON schema), never by prose we would have to parse.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache

import openai
from django.conf import settings
from django.utils.translation import gettext as _

from channels_app.bot.retrieval import RetrievedChunk, terms

LOCAL = "local"
OPENAI = "openai"
LOCAL_MODEL = "local-extractive"

# The local responder answers only when the best chunk holds at least this share of the
# question's meaningful words; otherwise it hands off.
LOCAL_MIN_COVERAGE = 0.5

REPLY_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "bot_reply",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "answer": {"type": "string"},
                "hand_off": {"type": "boolean"},
                "reason": {"type": "string"},
            },
            "required": ["answer", "hand_off", "reason"],
            "additionalProperties": False,
        },
    },
}


@dataclass(frozen=True)
class BotRequest:
    system: str
    messages: list[dict]  # [{"role": "user"|"assistant", "content": str}], oldest first
    chunks: list[RetrievedChunk]
    question: str
    model: str
    temperature: float
    max_tokens: int
    max_chars: int


@dataclass(frozen=True)
class BotAnswer:
    text: str
    hand_off: bool
    reason: str
    provider: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass
class ProviderFailed(Exception):
    """The provider could not be reached or refused the call (after the client's retries).
    `tokens_*` are what was metered anyway (an unusable answer still cost tokens)."""

    reason: str
    usable_retry: bool = False  # True: the model answered, but unusably; asking again may help
    provider: str = OPENAI
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class ProviderConfig:
    api_key: str
    base_url: str
    model: str

    @property
    def is_local(self) -> bool:
        return not self.api_key


def config_for(profile) -> ProviderConfig:
    """The business's own key and address when its profile has them, else the platform's."""
    key = (getattr(profile, "api_key", "") or "").strip() or settings.OPENAI_API_KEY
    base_url = (getattr(profile, "api_base_url", "") or "").strip() or settings.OPENAI_BASE_URL
    model = (getattr(profile, "model", "") or "").strip() or settings.OPENAI_MODEL
    if not key:
        model = LOCAL_MODEL
    return ProviderConfig(api_key=key, base_url=base_url.rstrip("/"), model=model)


def answer(request: BotRequest, *, config: ProviderConfig) -> BotAnswer:
    if config.is_local:
        return local_answer(request)
    return openai_answer(request, config=config)


# --- OpenAI-compatible ------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _client(api_key: str, base_url: str, timeout: float, max_retries: int) -> openai.OpenAI:
    # One client (and its connection pool) per key and address, reused across calls.
    return openai.OpenAI(
        api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
    )


def request_body(request: BotRequest) -> dict:
    """Everything sent to the provider, in one place (tests compare it with what arrived)."""
    return {
        "model": request.model,
        "messages": [{"role": "system", "content": request.system}, *request.messages],
        "temperature": request.temperature,
        "max_completion_tokens": request.max_tokens,
        "response_format": REPLY_SCHEMA,
        # Ask the provider not to keep the conversation (P4/P5).
        "store": False,
    }


def openai_answer(request: BotRequest, *, config: ProviderConfig) -> BotAnswer:
    client = _client(
        config.api_key,
        config.base_url,
        settings.OPENAI_TIMEOUT_SECONDS,
        settings.OPENAI_MAX_RETRIES,
    )
    try:
        response = client.chat.completions.create(**request_body(request))
    except openai.APITimeoutError as exc:
        reason = _("The AI provider did not answer in time.")
        raise ProviderFailed(reason, model=request.model) from exc
    except openai.APIConnectionError as exc:
        reason = _("The AI provider could not be reached.")
        raise ProviderFailed(reason, model=request.model) from exc
    except openai.APIStatusError as exc:
        raise ProviderFailed(
            _("The AI provider refused the request (HTTP %(status)s).")
            % {"status": exc.status_code},
            model=request.model,
        ) from exc
    except openai.OpenAIError as exc:
        raise ProviderFailed(
            _("The AI provider failed (%(problem)s).") % {"problem": type(exc).__name__},
            model=request.model,
        ) from exc

    usage = response.usage
    tokens_in = getattr(usage, "prompt_tokens", 0) or 0
    tokens_out = getattr(usage, "completion_tokens", 0) or 0
    model = response.model or request.model
    metered = {"model": model, "tokens_in": tokens_in, "tokens_out": tokens_out}
    choice = response.choices[0] if response.choices else None
    if choice is None or choice.message is None:
        raise ProviderFailed(_("The AI provider sent no answer."), usable_retry=True, **metered)
    if getattr(choice.message, "refusal", None):
        return BotAnswer(
            text="",
            hand_off=True,
            reason=_("The AI model declined to answer."),
            provider=OPENAI,
            **metered,
        )
    try:
        data = json.loads(choice.message.content or "")
        text = str(data["answer"]).strip()
        hand_off = data["hand_off"]
        reason = str(data.get("reason") or "").strip()
        if not isinstance(hand_off, bool):
            raise TypeError("hand_off is not a boolean")
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderFailed(
            _("The AI model's answer was not in the agreed form."), usable_retry=True, **metered
        ) from exc
    if not hand_off and not text:
        raise ProviderFailed(_("The AI model's answer was empty."), usable_retry=True, **metered)
    return BotAnswer(
        text=shorten(text, request.max_chars),
        hand_off=hand_off,
        reason=reason[:150],
        provider=OPENAI,
        **metered,
    )


# --- Local responder ------------------------------------------------------------------------

SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def local_answer(request: BotRequest) -> BotAnswer:
    """Quote the sentences of the best chunk that match the question, or hand off."""
    best = request.chunks[0] if request.chunks else None
    if best is None or best.coverage < LOCAL_MIN_COVERAGE:
        return BotAnswer(text="", hand_off=True, reason="", provider=LOCAL, model=LOCAL_MODEL)
    wanted = set(terms(request.question))
    sentences = [
        sentence.strip()
        for sentence in SENTENCE.split(best.text)
        if sentence.strip() and not _is_heading(sentence.strip(), best.document_title)
    ]
    scored = [(len(wanted & set(terms(s))), index) for index, s in enumerate(sentences)]
    top = max(score for score, _index in scored) if scored else 0
    if top == 0:
        chosen = sentences[:2]
    else:
        keep = sorted(index for score, index in scored if score >= max(1, top - 1))[:3]
        chosen = [sentences[index] for index in keep]
    return BotAnswer(
        text=shorten(" ".join(chosen), request.max_chars),
        hand_off=False,
        reason="",
        provider=LOCAL,
        model=LOCAL_MODEL,
    )


def _is_heading(line: str, title: str) -> bool:
    """A chunk's heading line (Markdown sections start their chunks with one): not an answer."""
    return line == title or (len(line.split()) <= 6 and not line.endswith((".", "!", "?", ":")))


def shorten(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip(" ,;:") + "…"
