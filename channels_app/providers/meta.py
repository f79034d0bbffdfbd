"""WhatsApp Cloud API (Meta Graph API) over HTTP.

- Webhooks: the `hub.challenge` handshake (GET, checked against the channel's verify token)
  and `X-Hub-Signature-256`, the HMAC-SHA256 of the raw body keyed with the app secret.
- Graph calls go to `settings.META_GRAPH_BASE_URL` / `settings.META_GRAPH_VERSION`, with the
  channel's access token as a bearer token and a timeout on every call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden

from channels_app.models import Message, MessageTemplate
from channels_app.providers.base import (
    ConnectionCheck,
    InboundMedia,
    InboundMessage,
    MediaContent,
    Provider,
    ProviderError,
    SendResult,
    StatusUpdate,
    TemplateData,
    WebhookEvent,
    WebhookRejected,
    WebhookRequest,
)

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(20.0, connect=5.0)
MEDIA_MAX_BYTES = 100 * 1024 * 1024
MAX_TEMPLATE_PAGES = 50

STATUS_MAP = {
    "sent": Message.Status.SENT,
    "delivered": Message.Status.DELIVERED,
    "read": Message.Status.READ,
    "failed": Message.Status.FAILED,
}

TEMPLATE_STATUS = {
    "APPROVED": MessageTemplate.Status.APPROVED,
    "PENDING": MessageTemplate.Status.PENDING,
    "IN_APPEAL": MessageTemplate.Status.PENDING,
    "PENDING_DELETION": MessageTemplate.Status.DISABLED,
    "REJECTED": MessageTemplate.Status.REJECTED,
    "PAUSED": MessageTemplate.Status.PAUSED,
    "DISABLED": MessageTemplate.Status.DISABLED,
    "DELETED": MessageTemplate.Status.DISABLED,
    "ARCHIVED": MessageTemplate.Status.DISABLED,
    "LIMIT_EXCEEDED": MessageTemplate.Status.DISABLED,
}

# Graph / WhatsApp error codes in words.
ERROR_REASONS: dict[int, str] = {
    0: "Meta could not authenticate the request.",
    2: "Meta's service is temporarily unavailable; the message will be retried.",
    4: "Meta's API rate limit for the app was reached; the message will be retried.",
    10: "The access token lacks the permission for this (whatsapp_business_messaging).",
    100: "Meta refused a parameter of the request.",
    190: "Meta refused the access token (expired or revoked); create a new one.",
    200: "The access token lacks a required permission.",
    368: "Meta temporarily blocked the account for policy violations.",
    80007: "The WhatsApp business account's rate limit was reached; will be retried.",
    130429: "The phone number's message throughput was reached; the message will be retried.",
    130472: "WhatsApp did not deliver: the recipient's number is part of an experiment.",
    131000: "Meta had an internal error; the message will be retried.",
    131005: "The access token has no permission to send from this number.",
    131008: "A required parameter is missing.",
    131009: "A parameter value is not valid.",
    131016: "WhatsApp is temporarily unavailable; the message will be retried.",
    131021: "The recipient is the sender's own number.",
    131026: "The message could not be delivered (no WhatsApp on that number, or an old app).",
    131031: "The WhatsApp business account is locked.",
    131042: "The WhatsApp business account has a payment problem.",
    131045: "The phone number is not registered with the Cloud API.",
    131047: "More than 24 hours since the customer's last message: only a template can be sent.",
    131048: "Meta limited sending because of spam reports; the message will be retried.",
    131049: "Meta chose not to deliver this marketing message to this user for now.",
    131050: "The recipient has stopped marketing messages from this business.",
    131051: "This kind of message is not supported.",
    131052: "The media could not be downloaded from the sender.",
    131053: "The media could not be uploaded (unsupported type or too large).",
    131056: "Too many messages to this recipient in a short time; the message will be retried.",
    132000: "The number of template variables does not match the template.",
    132001: "The template does not exist in this language (or is not approved yet).",
    132005: "The template text is too long once the variables are filled in.",
    132007: "The template's content breaks WhatsApp's policy.",
    132012: "A template variable has the wrong format.",
    132015: "The template is paused for low quality.",
    132016: "The template is disabled for low quality.",
    133004: "WhatsApp is temporarily unavailable; the message will be retried.",
    133010: "The phone number is not registered with the Cloud API.",
}
TRANSIENT_CODES = frozenset(
    {1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131048, 131056, 133004}
)


def error_reason(code: int | str | None, fallback: str = "") -> str:
    try:
        number = int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    if number is not None and number in ERROR_REASONS:
        return ERROR_REASONS[number]
    if fallback:
        return fallback
    return f"Meta reported error {code}." if code else "Meta reported an error."


def _header(request: WebhookRequest, name: str) -> str:
    value = request.headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in request.headers.items():
            if key.lower() == lowered:
                return candidate
        return ""
    return value


def _timestamp(value) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _placeholders(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(re.findall(r"\{\{\s*([\w.]+)\s*\}\}", text or "")))


class MetaProvider(Provider):
    # --- HTTP -----------------------------------------------------------------------------

    @property
    def graph_url(self) -> str:
        return f"{settings.META_GRAPH_BASE_URL.rstrip('/')}/{settings.META_GRAPH_VERSION}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.channel.meta_access_token}"}

    def _request(self, method: str, url: str, *, sending: bool = False, **kwargs) -> httpx.Response:
        try:
            with httpx.Client(timeout=TIMEOUT, headers=self._headers()) as client:
                response = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise connection_error(exc, sent=sending) from exc
        if response.status_code >= 400:
            raise graph_error(response)
        return response

    def _json(self, response: httpx.Response) -> dict:
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError("Meta's answer is not JSON.", ambiguous=True) from exc
        if not isinstance(data, dict):
            raise ProviderError("Meta's answer is not a JSON object.", ambiguous=True)
        return data

    # --- webhooks -------------------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> HttpResponse | None:
        if request.method != "GET":
            return None
        query = request.query
        if "hub.mode" not in query and "hub.challenge" not in query:
            return None
        expected = self.channel.meta_verify_token or ""
        given = query.get("hub.verify_token", "")
        if (
            query.get("hub.mode") == "subscribe"
            and expected
            and hmac.compare_digest(given.encode(), expected.encode())
        ):
            return HttpResponse(query.get("hub.challenge", ""), content_type="text/plain")
        return HttpResponseForbidden("verify token mismatch", content_type="text/plain")

    def verify(self, request: WebhookRequest) -> None:
        reject = WebhookRejected.SIGNATURE
        header = _header(request, "X-Hub-Signature-256")
        if not header:
            raise WebhookRejected(reject, "missing X-Hub-Signature-256")
        if not header.startswith("sha256="):
            raise WebhookRejected(reject, "X-Hub-Signature-256 is not sha256=<hex>")
        secret = self.channel.meta_app_secret or ""
        if not secret:
            raise WebhookRejected(reject, "the channel has no Meta app secret")
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(header[7:].strip().lower().encode(), expected.encode()):
            raise WebhookRejected(reject, "X-Hub-Signature-256 does not match")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        malformed = WebhookRejected.MALFORMED
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WebhookRejected(malformed, f"body is not JSON: {exc}") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
            raise WebhookRejected(malformed, "expected an object with an 'entry' list")
        if payload.get("object") not in (None, "whatsapp_business_account"):
            raise WebhookRejected(malformed, f"unexpected object {payload.get('object')!r}")
        own_number = self.channel.meta_phone_number_id
        events: list[WebhookEvent] = []
        for entry in payload["entry"]:
            changes = entry.get("changes") if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                raise WebhookRejected(malformed, "an entry has no 'changes' list")
            for change in changes:
                if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                    raise WebhookRejected(malformed, "a change has no 'value' object")
                if change.get("field", "messages") != "messages":
                    continue  # account/template updates: not messages
                value = change["value"]
                number = (value.get("metadata") or {}).get("phone_number_id")
                if own_number and number and str(number) != own_number:
                    logger.info("Meta webhook for another phone number id skipped")
                    continue
                names = {
                    str(c.get("wa_id")): ((c.get("profile") or {}).get("name") or "")
                    for c in value.get("contacts") or []
                    if isinstance(c, dict)
                }
                for item in value.get("messages") or []:
                    events.append(self._message(item, names))
                for item in value.get("statuses") or []:
                    event = self._status(item)
                    if event is not None:
                        events.append(event)
        return events

    def _message(self, item, names: dict[str, str]) -> InboundMessage:
        malformed = WebhookRejected.MALFORMED
        if not isinstance(item, dict) or not item.get("id") or not item.get("from"):
            raise WebhookRejected(malformed, "a message has no 'id' or 'from'")
        kind = item.get("type", "")
        part = item.get(kind) if isinstance(item.get(kind), dict) else {}
        body = ""
        media: tuple[InboundMedia, ...] = ()
        if kind == "text":
            body = part.get("body", "")
        elif kind in ("image", "audio", "document", "video", "sticker"):
            if not part.get("id"):
                raise WebhookRejected(malformed, f"a {kind} message has no media id")
            body = part.get("caption", "")
            media = (
                InboundMedia(
                    provider_media_id=str(part["id"]),
                    content_type=part.get("mime_type", ""),
                    filename=part.get("filename", ""),
                ),
            )
        elif kind == "location":
            place = ", ".join(p for p in (part.get("name"), part.get("address")) if p)
            coordinates = f"({part.get('latitude')}, {part.get('longitude')})"
            body = f"Location: {place} {coordinates}" if place else f"Location: {coordinates}"
        elif kind == "button":
            body = part.get("text") or part.get("payload", "")
        elif kind == "interactive":
            reply = part.get("button_reply") or part.get("list_reply") or part.get("nfm_reply")
            reply = reply if isinstance(reply, dict) else {}
            body = reply.get("title") or reply.get("body") or ""
            if reply.get("description"):
                body = f"{body} — {reply['description']}"
        elif kind == "reaction":
            body = part.get("emoji", "") or "(reaction removed)"
        elif kind == "contacts":
            cards = item.get("contacts") or []
            shared = []
            for card in cards if isinstance(cards, list) else []:
                name = (card.get("name") or {}).get("formatted_name", "")
                phones = ", ".join(p.get("phone", "") for p in card.get("phones") or [])
                shared.append(f"{name} {phones}".strip())
            body = "Shared contact: " + "; ".join(shared) if shared else "Shared contact"
        elif kind == "system":
            body = part.get("body", "")
        if not body and not media:
            errors = item.get("errors") or []
            title = errors[0].get("title", "") if errors and isinstance(errors[0], dict) else ""
            body = f"[{kind or 'unknown'} message{': ' + title if title else ''}]"
        sender = str(item["from"])
        context = item.get("context")
        del context  # replies to a message are shown as plain messages
        return InboundMessage(
            provider_message_id=str(item["id"]),
            from_phone=sender if sender.startswith("+") else "+" + sender,
            body=body,
            profile_name=names.get(sender, "")[:200],
            media=media,
            timestamp=_timestamp(item.get("timestamp")),
        )

    def _status(self, item) -> StatusUpdate | None:
        if not isinstance(item, dict) or not item.get("id") or not item.get("status"):
            raise WebhookRejected(WebhookRejected.MALFORMED, "a status has no 'id' or 'status'")
        raw = str(item["status"])
        ours = STATUS_MAP.get(raw)
        if ours is None:
            logger.info("Meta status %r ignored", raw)  # e.g. "deleted", "warning"
            return None
        code, reason = "", ""
        errors = item.get("errors") or []
        if errors and isinstance(errors[0], dict):
            error = errors[0]
            code = str(error.get("code", ""))
            details = (error.get("error_data") or {}).get("details", "")
            reason = error_reason(code, details or error.get("message") or error.get("title", ""))
        return StatusUpdate(
            provider_message_id=str(item["id"]),
            status=ours,
            provider_status=raw,
            error_code=code,
            error_reason=reason,
            timestamp=_timestamp(item.get("timestamp")),
        )

    # --- sending --------------------------------------------------------------------------

    def message_payload(self, message: Message, to_phone: str) -> dict:
        payload: dict = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to_phone,
        }
        template = message.template
        if template is not None:
            payload["type"] = "template"
            payload["template"] = self._template_payload(message, template)
            return payload
        media = [m for m in (message.media or []) if m.get("url")]
        if len(media) > 1:
            raise ProviderError("WhatsApp sends one attachment per message.", permanent=True)
        if media:
            item = media[0]
            content_type = item.get("content_type", "")
            kind = content_type.split("/")[0]
            kind = kind if kind in ("image", "audio", "video") else "document"
            part: dict = {"link": item["url"]}
            if message.body and kind != "audio":
                part["caption"] = message.body
            if kind == "document" and item.get("filename"):
                part["filename"] = item["filename"]
            payload["type"] = kind
            payload[kind] = part
            return payload
        if not message.body:
            raise ProviderError("The message has no text, media or template.", permanent=True)
        payload["type"] = "text"
        payload["text"] = {"preview_url": False, "body": message.body}
        return payload

    def _template_payload(self, message: Message, template: MessageTemplate) -> dict:
        values = {str(k): str(v) for k, v in (message.template_variables or {}).items()}
        names = [str(v) for v in (template.variables or [])] or sorted(values, key=_order)
        named = any(not name.isdigit() for name in names)

        def parameter(name: str) -> dict:
            if name not in values:
                raise ProviderError(
                    f"The template variable {{{{{name}}}}} has no value.", permanent=True
                )
            param = {"type": "text", "text": values[name]}
            if named:
                param["parameter_name"] = name
            return param

        components = []
        header = next(
            (
                c
                for c in template.components or []
                if isinstance(c, dict) and str(c.get("type", "")).upper() == "HEADER"
            ),
            None,
        )
        body_names = list(names)
        if header:
            header_format = str(header.get("format", "TEXT")).upper()
            if header_format == "TEXT":
                header_names = [n for n in _placeholders(header.get("text", "")) if n in names]
                if header_names:
                    components.append(
                        {"type": "header", "parameters": [parameter(n) for n in header_names]}
                    )
                    body_names = [n for n in names if n not in header_names]
            elif header_format in ("IMAGE", "VIDEO", "DOCUMENT"):
                media = [m for m in (message.media or []) if m.get("url")]
                if not media:
                    raise ProviderError(
                        "The template needs a header image, video or document.", permanent=True
                    )
                kind = header_format.lower()
                components.append(
                    {
                        "type": "header",
                        "parameters": [{"type": kind, kind: {"link": media[0]["url"]}}],
                    }
                )
        if body_names:
            components.append({"type": "body", "parameters": [parameter(n) for n in body_names]})
        result: dict = {"name": template.name, "language": {"code": template.language}}
        if components:
            result["components"] = components
        return result

    def send(self, message: Message, *, to_phone: str) -> SendResult:
        payload = self.message_payload(message, to_phone)
        url = f"{self.graph_url}/{self.channel.meta_phone_number_id}/messages"
        response = self._request("POST", url, json=payload, sending=True)
        data = self._json(response)
        try:
            message_id = str(data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError("Meta's answer has no message id.", ambiguous=True) from exc
        return SendResult(provider_message_id=message_id, status=Message.Status.ACCEPTED)

    # --- console --------------------------------------------------------------------------

    def test_connection(self) -> ConnectionCheck:
        channel = self.channel
        if not channel.meta_phone_number_id or not channel.meta_access_token:
            return ConnectionCheck(False, "Enter the phone number ID and the access token.")
        try:
            response = self._request(
                "GET",
                f"{self.graph_url}/{channel.meta_phone_number_id}",
                params={"fields": "display_phone_number,verified_name,quality_rating"},
            )
            data = self._json(response)
        except ProviderError as exc:
            if exc.code == "190":
                detail = (
                    "Meta refused the access token (expired or revoked). Create a permanent "
                    "system user token with the whatsapp_business_messaging permission."
                )
            elif exc.code == "100":
                detail = (
                    f"Meta does not know the phone number ID {channel.meta_phone_number_id}, "
                    "or the access token cannot reach it."
                )
            else:
                detail = f"Meta answered with an error: {exc.reason}"
            return ConnectionCheck(False, detail)
        number = data.get("display_phone_number", "")
        name = data.get("verified_name", "")
        quality = data.get("quality_rating", "")
        detail = f"Connected to {number}" + (f" ({name})" if name else "")
        if quality:
            detail += f", quality rating {quality}"
        return ConnectionCheck(True, detail + ".")

    def fetch_templates(self) -> list[TemplateData]:
        waba = self.channel.meta_business_account_id
        if not waba:
            raise ProviderError("Enter the WhatsApp business account ID.", permanent=True)
        url: str | None = f"{self.graph_url}/{waba}/message_templates"
        params: dict | None = {
            "limit": 100,
            "fields": "name,language,status,category,components,id,rejected_reason,"
            "parameter_format",
        }
        templates: list[TemplateData] = []
        for _ in range(MAX_TEMPLATE_PAGES):
            if url is None:
                break
            data = self._json(self._request("GET", url, params=params))
            templates.extend(self._template(item) for item in data.get("data") or [])
            following = (data.get("paging") or {}).get("next")
            # Follow only links back to the Graph API (the bearer token goes with them).
            url = following if following and self._same_origin(following) else None
            params = None
        return templates

    def _same_origin(self, url: str) -> bool:
        base = urlsplit(settings.META_GRAPH_BASE_URL)
        other = urlsplit(url)
        return (base.scheme, base.netloc) == (other.scheme, other.netloc)

    def _template(self, item: dict) -> TemplateData:
        components = item.get("components") or []
        body = next(
            (
                c.get("text", "")
                for c in components
                if isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY"
            ),
            "",
        )
        header = next(
            (
                c.get("text", "")
                for c in components
                if isinstance(c, dict)
                and str(c.get("type", "")).upper() == "HEADER"
                and str(c.get("format", "TEXT")).upper() == "TEXT"
            ),
            "",
        )
        category = str(item.get("category", "")).lower()
        if category not in MessageTemplate.Category.values:
            category = ""
        reason = item.get("rejected_reason") or ""
        if reason == "NONE":
            reason = ""
        return TemplateData(
            name=str(item.get("name", "")),
            language=str(item.get("language", "")),
            status=TEMPLATE_STATUS.get(str(item.get("status", "")).upper(), "pending"),
            category=category,
            body=body,
            variables=tuple(dict.fromkeys(_placeholders(header) + _placeholders(body))),
            provider_template_id=str(item.get("id", "")),
            components=components,
            rejection_reason=str(reason)[:300],
        )

    def fetch_media(self, media: dict) -> MediaContent:
        media_id = media.get("provider_media_id") or ""
        if not media_id or not re.fullmatch(r"[A-Za-z0-9_.-]+", media_id):
            raise ProviderError("The media has no Meta media id.", permanent=True)
        info = self._json(
            self._request(
                "GET",
                f"{self.graph_url}/{media_id}",
                params={"phone_number_id": self.channel.meta_phone_number_id},
            )
        )
        url = info.get("url")
        if not url or urlsplit(url).scheme not in ("https", "http"):
            raise ProviderError("Meta gave no download URL for the media.")
        try:
            size = int(info.get("file_size") or 0)
        except (TypeError, ValueError):
            size = 0
        if size > MEDIA_MAX_BYTES:
            raise ProviderError("The media is too large.", permanent=True)
        try:
            with (
                httpx.Client(timeout=TIMEOUT, headers=self._headers()) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    raise graph_error(response)
                chunks, total = [], 0
                for chunk in response.iter_bytes():
                    total += len(chunk)
                    if total > MEDIA_MAX_BYTES:
                        raise ProviderError("The media is too large.", permanent=True)
                    chunks.append(chunk)
                content_type = response.headers.get("content-type", "")
        except httpx.HTTPError as exc:
            raise connection_error(exc) from exc
        content = b"".join(chunks)
        expected = info.get("sha256")
        if expected and hashlib.sha256(content).hexdigest() != expected:
            raise ProviderError("The downloaded media does not match its checksum.")
        return MediaContent(
            content=content,
            content_type=(info.get("mime_type") or content_type.split(";")[0]).strip()
            or "application/octet-stream",
            filename=media.get("filename", "") or "",
        )


# --- errors ---------------------------------------------------------------------------------


def graph_error(response: httpx.Response) -> ProviderError:
    status = response.status_code
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code")
    details = (
        (error.get("error_data") or {}).get("details", "")
        if isinstance(error.get("error_data"), dict)
        else ""
    )
    fallback = details or error.get("message") or f"Meta answered HTTP {status}."
    reason = error_reason(code, fallback)
    try:
        number = int(code) if code is not None else None
    except (TypeError, ValueError):
        number = None
    transient = status >= 500 or status == 429 or number in TRANSIENT_CODES
    retry_after = None
    if status == 429 or number in (4, 80007, 130429, 131056):
        header = response.headers.get("retry-after", "")
        retry_after = float(header) if header.replace(".", "", 1).isdigit() else 1.0
    return ProviderError(
        reason,
        code=str(code if code is not None else status),
        permanent=not transient,
        retry_after=retry_after,
    )


def connection_error(exc: httpx.HTTPError, *, sent: bool = False) -> ProviderError:
    """Transient when the request never reached Meta; ambiguous when it may have."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return ProviderError("Meta did not answer the connection in time.")
    if isinstance(exc, httpx.ConnectError):
        return ProviderError(f"Could not connect to Meta ({exc}).")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(
            "Meta did not answer in time; the message may have been sent.", ambiguous=sent
        )
    return ProviderError(
        f"The connection to Meta broke ({type(exc).__name__}); the message may have been sent.",
        ambiguous=sent,
    )


def _order(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)
