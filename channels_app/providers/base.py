"""The one interface every messaging provider implements.

Nothing outside `channels_app.providers` knows a provider's wire format: webhooks come in as
normalised `InboundMessage` / `StatusUpdate` events, sends go out through `Provider.send`,
and provider failures come back as `ProviderError` with a code and a reason in words.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.http import QueryDict

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

    from channels_app.models import Channel, Message


@dataclass(frozen=True)
class WebhookRequest:
    """A webhook as received: what adapters verify and parse.

    Built from the Django request by the webhook view, or directly by the sandbox simulator,
    so both take exactly the same path through verification and parsing.
    """

    method: str
    full_path: str  # path and query string as requested, e.g. "/hooks/twilio/<token>/status"
    headers: Mapping[str, str]  # case-insensitive
    body: bytes
    content_type: str = ""
    # The sender's address (behind TRUSTED_PROXY_COUNT proxies), for the security log.
    remote_ip: str | None = None

    @classmethod
    def from_django(cls, request: HttpRequest) -> WebhookRequest:
        from privacy.access_log import client_ip

        return cls(
            method=request.method,
            full_path=request.get_full_path(),
            headers=request.headers,
            body=request.body,
            content_type=request.content_type or "",
            remote_ip=client_ip(request),
        )

    @property
    def path(self) -> str:
        return urlsplit(self.full_path).path

    @cached_property
    def query(self) -> QueryDict:
        return QueryDict(urlsplit(self.full_path).query)

    @cached_property
    def form(self) -> QueryDict:
        """The body as form fields (application/x-www-form-urlencoded); raises on bad bytes."""
        return QueryDict(self.body.decode("utf-8"))


# --- Normalised webhook events -------------------------------------------------------------


class _StorableText:
    """Normalised events hold text the database can store: a NUL character (which PostgreSQL
    text cannot hold, and no provider means) is dropped from every string field."""

    def __post_init__(self):
        for name, value in vars(self).items():
            if isinstance(value, str) and "\x00" in value:
                object.__setattr__(self, name, value.replace("\x00", ""))


@dataclass(frozen=True)
class InboundMedia(_StorableText):
    content_type: str = ""
    # Either a provider media id (Meta) or a provider URL (Twilio); fetched with credentials.
    provider_media_id: str = ""
    url: str = ""
    filename: str = ""
    size: int | None = None

    def as_json(self) -> dict:
        return {
            "content_type": self.content_type,
            "provider_media_id": self.provider_media_id,
            "url": self.url,
            "filename": self.filename,
            "size": self.size,
        }


@dataclass(frozen=True)
class InboundMessage(_StorableText):
    provider_message_id: str
    from_phone: str  # as the provider sent it; the pipeline normalises it to E.164
    body: str = ""
    profile_name: str = ""
    media: tuple[InboundMedia, ...] = ()
    timestamp: datetime | None = None


@dataclass(frozen=True)
class StatusUpdate(_StorableText):
    provider_message_id: str
    status: str  # a `Message.Status` value
    provider_status: str  # the provider's own word, kept in the event
    error_code: str = ""
    error_reason: str = ""
    timestamp: datetime | None = None


WebhookEvent = InboundMessage | StatusUpdate


class WebhookRejected(Exception):
    """The webhook is refused: 403 for a bad or missing signature, 400 for a malformed body."""

    SIGNATURE = "signature"
    MALFORMED = "malformed"

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    @property
    def status_code(self) -> int:
        return 403 if self.kind == self.SIGNATURE else 400


# --- Sending -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str  # a `Message.Status` value, usually accepted/queued at the provider → ACCEPTED


class ProviderError(Exception):
    """A provider call failed.

    - `permanent`: retrying cannot help (unsubscribed recipient, invalid number, bad template);
      the message is marked failed with `code` and `reason`.
    - otherwise transient (5xx, throttling, connection refused): retried with backoff.
    - `ambiguous`: the request may have reached the provider (timeout after sending); the
      message must not be sent again blindly.
    """

    def __init__(
        self,
        reason: str,
        *,
        code: str = "",
        permanent: bool = False,
        ambiguous: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.code = str(code or "")
        self.permanent = permanent
        self.ambiguous = ambiguous
        self.retry_after = retry_after


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    detail: str  # in words, shown on the channel page


@dataclass(frozen=True)
class TemplateData:
    name: str
    language: str
    status: str  # a `MessageTemplate.Status` value
    category: str = ""  # a `MessageTemplate.Category` value or ""
    body: str = ""
    variables: tuple[str, ...] = ()
    provider_template_id: str = ""
    components: list = field(default_factory=list)
    rejection_reason: str = ""


@dataclass(frozen=True)
class MediaContent:
    content: bytes
    content_type: str
    filename: str = ""


class Provider(abc.ABC):
    """An adapter bound to one channel."""

    def __init__(self, channel: Channel):
        self.channel = channel

    # Webhooks
    def handshake(self, request: WebhookRequest) -> HttpResponse | None:
        """Answer a provider's verification GET (Meta's hub.challenge); None when not one."""
        return None

    @abc.abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Raise WebhookRejected(SIGNATURE) unless the request is signed by the provider."""

    @abc.abstractmethod
    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        """Normalised events of a verified webhook; WebhookRejected(MALFORMED) when unreadable."""

    # Sending
    @abc.abstractmethod
    def send(self, message: Message, *, to_phone: str) -> SendResult:
        """Send one message; raise ProviderError on failure."""

    def find_sent(self, message: Message, *, to_phone: str) -> str | None:
        """After an interrupted send, the provider id of the message if the provider has it.

        None means "cannot tell"; the caller then refuses to send again (never twice).
        """
        return None

    # Console
    @abc.abstractmethod
    def test_connection(self) -> ConnectionCheck: ...

    def fetch_templates(self) -> list[TemplateData]:
        return []

    def fetch_media(self, media: dict) -> MediaContent:
        raise ProviderError("This channel keeps no media.", permanent=True)


def provider_for(channel: Channel) -> Provider:
    from channels_app.models import Channel

    kind = channel.kind
    if kind in (Channel.Kind.TWILIO_WHATSAPP, Channel.Kind.TWILIO_SMS):
        from channels_app.providers.twilio import TwilioProvider

        return TwilioProvider(channel)
    if kind == Channel.Kind.META_WHATSAPP:
        from channels_app.providers.meta import MetaProvider

        return MetaProvider(channel)
    if kind == Channel.Kind.SANDBOX:
        from channels_app.providers.sandbox import SandboxProvider

        return SandboxProvider(channel)
    raise ValueError(f"unknown channel kind {kind!r}")
