"""Twilio (WhatsApp and SMS): one adapter, the medium comes from the channel's kind.

- Webhooks are verified with the official `RequestValidator` against the URL Twilio called,
  rebuilt from `settings.PUBLIC_BASE_URL` (behind a proxy the request's own host and scheme
  are the proxy's). Twilio signs with the auth token of the account that owns the sender: a
  sender in a subaccount (typically inside a Messaging Service) is signed with the
  subaccount's token, which the parent's credentials can read. A URL matched by a Webhooks
  rule is signed with that rule's shared key (HMAC-SHA256) and says so in a header.
- Sends go through the official client (`twilio.rest.Client`) with our status callback URL.
- `TWILIO_API_BASE_URL`, when set (tests, benchmarks), sends every Twilio API call to that
  server instead: https://<product>.twilio.com/<path> -> <base>/twilio/<product>/<path>.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.rest import Client

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

# Seconds for one API call (connect and read); a send that times out after the request went
# out is "ambiguous", never retried blindly.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20
MEDIA_MAX_BYTES = 32 * 1024 * 1024

# Where Twilio posts delivery statuses for the messages we send.
STATUS_CALLBACK_PATH = "/hooks/twilio/{token}/status/"

# Twilio's message statuses (Message resource and status callbacks) -> ours.
STATUS_MAP = {
    "accepted": Message.Status.ACCEPTED,
    "scheduled": Message.Status.ACCEPTED,
    "queued": Message.Status.ACCEPTED,
    "sending": Message.Status.ACCEPTED,
    "sent": Message.Status.SENT,
    "delivered": Message.Status.DELIVERED,
    # Some recipients of a group message got it: it left Twilio, delivery is not certain.
    "partially_delivered": Message.Status.SENT,
    "read": Message.Status.READ,
    "failed": Message.Status.FAILED,
    "undelivered": Message.Status.UNDELIVERED,
    "canceled": Message.Status.CANCELED,
    "receiving": Message.Status.RECEIVED,
    "received": Message.Status.RECEIVED,
}

# Twilio error codes in words (API errors and delivery errors in status callbacks).
ERROR_REASONS: dict[int, str] = {
    20003: "Twilio refused the account SID and auth token.",
    20404: "Twilio does not know this resource (wrong account SID or sender?).",
    20429: "Twilio is throttling requests; the message will be retried.",
    20500: "Twilio had an internal error; the message will be retried.",
    20503: "Twilio is temporarily unavailable; the message will be retried.",
    21211: "The recipient's phone number is not valid.",
    21408: "Sending to this country is not enabled in the Twilio account's geo permissions.",
    21602: "The message has no text, media or template.",
    21603: "The channel has no sender number or messaging service.",
    21604: "The message has no recipient number.",
    21606: "The sender number cannot send messages to this destination from this account.",
    21610: "The recipient has unsubscribed (replied STOP) and cannot be messaged.",
    21611: "The sender number has too many queued messages.",
    21612: "The recipient's number cannot receive messages from this sender.",
    21614: "The recipient's number is not a mobile number.",
    21617: "The message text is too long (over 1600 characters).",
    21620: "A media URL is not valid or not reachable.",
    21656: "The template variables are not valid.",
    21910: "The sender and recipient are not on the same channel (WhatsApp vs SMS).",
    30001: "Twilio's queue for this sender overflowed; the message will be retried.",
    30002: "The Twilio account is suspended.",
    30003: "The recipient's phone is unreachable (off or out of coverage).",
    30004: "The message was blocked (the recipient blocked this sender or their carrier did).",
    30005: "The recipient's number is unknown or no longer exists.",
    30006: "The number is a landline or its carrier cannot receive messages.",
    30007: "The carrier filtered the message as spam or against its rules.",
    30008: "The message could not be delivered for an unknown reason.",
    30032: "The toll-free sender number is not verified.",
    30034: "The sender number is not registered for US A2P 10DLC messaging.",
    63003: "WhatsApp could not find the recipient (the number has no WhatsApp account).",
    63005: "WhatsApp did not accept the content of the message.",
    63007: "Twilio has no WhatsApp sender with this number for the account.",
    63013: "WhatsApp refused the message under its policy.",
    63015: "The WhatsApp sandbox only messages numbers that joined it.",
    63016: "Outside the 24-hour window only an approved WhatsApp template can be sent.",
    63018: "The WhatsApp sender's rate limit was exceeded; the message will be retried.",
    63024: "The recipient is not a valid WhatsApp user.",
    63027: "The template does not exist for this language.",
    63028: "The number of template variables does not match the template.",
    63030: "A template parameter is not supported for this template type.",
    63031: "A WhatsApp sender cannot message its own number.",
    63032: "WhatsApp did not deliver: the recipient's number is part of an experiment.",
    63049: "WhatsApp chose not to deliver this marketing message to this user.",
}
TRANSIENT_CODES = frozenset({20429, 20500, 20503, 30001, 63018})


def error_reason(code: int | str | None, fallback: str = "") -> str:
    try:
        number = int(code or 0)
    except (TypeError, ValueError):
        number = 0
    reason = ERROR_REASONS.get(number)
    if reason:
        return reason
    if fallback:
        return fallback
    return f"Twilio reported error {code}." if code else "Twilio reported an error."


# --- HTTP client ----------------------------------------------------------------------------

_TWILIO_URL = re.compile(r"^https://(?P<product>[a-z0-9-]+)(?:\.[a-z0-9.-]+)?\.twilio\.com/", re.I)


def api_url(url: str) -> str:
    """The URL to call: unchanged in production, the local server when one is configured."""
    base = settings.TWILIO_API_BASE_URL
    if not base:
        return url
    return _TWILIO_URL.sub(lambda m: f"{base.rstrip('/')}/twilio/{m['product'].lower()}/", url)


class SalesOSTwilioHttpClient(TwilioHttpClient):
    """The official HTTP client, with timeouts, routed to TWILIO_API_BASE_URL when set."""

    def __init__(self, **kwargs):
        kwargs.setdefault("timeout", READ_TIMEOUT)
        super().__init__(**kwargs)

    def request(self, method, url, *args, **kwargs):
        return super().request(method, api_url(url), *args, **kwargs)


def is_twilio_url(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" and (host == "twilio.com" or host.endswith(".twilio.com"))


# Subaccount auth tokens read with the parent's credentials, to check their webhooks.
_SUBACCOUNT_TOKENS: dict[tuple[str, str, str], tuple[float, str | None]] = {}
_SUBACCOUNT_LOCK = threading.Lock()
SUBACCOUNT_TOKEN_TTL = 600
SUBACCOUNT_CACHE_SIZE = 1000


def _address(number: str, whatsapp: bool) -> str:
    number = number.strip()
    if whatsapp and not number.startswith("whatsapp:"):
        return "whatsapp:" + number
    return number


def _header(request: WebhookRequest, name: str) -> str:
    value = request.headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in request.headers.items():
            if key.lower() == lowered:
                return candidate
        return ""
    return value


class TwilioProvider(Provider):
    @property
    def whatsapp(self) -> bool:
        return self.channel.is_whatsapp

    # --- client ---------------------------------------------------------------------------

    def client(self, account_sid: str | None = None, auth_token: str | None = None) -> Client:
        return Client(
            account_sid or self.channel.twilio_account_sid,
            auth_token or self.channel.twilio_auth_token,
            http_client=SalesOSTwilioHttpClient(),
        )

    def status_callback_url(self) -> str:
        return settings.PUBLIC_BASE_URL + STATUS_CALLBACK_PATH.format(
            token=self.channel.webhook_token
        )

    # --- webhooks -------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        reject = WebhookRejected.SIGNATURE
        signature = _header(request, SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected(reject, "missing X-Twilio-Signature")
        try:
            params = request.form if request.method == "POST" else {}
        except UnicodeDecodeError as exc:
            raise WebhookRejected(reject, "the body is not valid UTF-8 form data") from exc
        # The URL Twilio called, as the public sees it (not as the proxy forwarded it).
        url = settings.PUBLIC_BASE_URL + request.full_path

        settings_header = _header(request, SIGNATURE_SETTINGS_HEADER)
        if settings_header:
            # Signed by a Webhooks rule with a shared key instead of the auth token.
            algorithm = get_signature_algorithm(settings_header)
            secret = getattr(self.channel, "twilio_webhook_signing_secret", "") or ""
            if not secret:
                raise WebhookRejected(
                    reject,
                    "signed with a Twilio webhooks shared key, and the channel has no "
                    "shared key secret",
                )
            if not RequestValidator(secret).validate(url, params, signature, algorithm):
                raise WebhookRejected(reject, "X-Twilio-Signature (shared key) does not match")
            return

        if not self.channel.twilio_auth_token:
            raise WebhookRejected(reject, "the channel has no Twilio auth token")
        if RequestValidator(self.channel.twilio_auth_token).validate(url, params, signature):
            return
        account_sid = params.get("AccountSid", "") if params else ""
        if account_sid and account_sid != self.channel.twilio_account_sid:
            token = self._subaccount_token(account_sid)
            if token is None:
                raise WebhookRejected(
                    reject,
                    f"signed for Twilio account {account_sid}, which is neither the channel's "
                    "account nor one of its subaccounts",
                )
            if RequestValidator(token).validate(url, params, signature):
                return
        raise WebhookRejected(reject, "X-Twilio-Signature does not match")

    def _subaccount_token(self, account_sid: str) -> str | None:
        """The auth token of a subaccount of the channel's account (None if it is not one)."""
        parent = self.channel.twilio_account_sid
        if not parent or not re.fullmatch(r"AC[0-9a-fA-F]{32}", account_sid):
            return None
        fingerprint = hashlib.sha256(self.channel.twilio_auth_token.encode()).hexdigest()
        key = (parent, fingerprint, account_sid)
        now = time.monotonic()
        with _SUBACCOUNT_LOCK:
            cached = _SUBACCOUNT_TOKENS.get(key)
        if cached and cached[0] > now:
            return cached[1]
        try:
            account = self.client().api.v2010.accounts(account_sid).fetch()
        except TwilioRestException as exc:
            if exc.status in (401, 403, 404):
                token = None
            else:
                logger.warning("Twilio subaccount lookup failed: %s", exc.status)
                return None
        except (requests.RequestException, TwilioException) as exc:
            logger.warning("Twilio subaccount lookup failed: %s", type(exc).__name__)
            return None
        else:
            owner = getattr(account, "owner_account_sid", None)
            token = account.auth_token if owner == parent else None
        with _SUBACCOUNT_LOCK:
            if len(_SUBACCOUNT_TOKENS) >= SUBACCOUNT_CACHE_SIZE:
                _SUBACCOUNT_TOKENS.clear()  # bounded: forged AccountSids cannot fill memory
            _SUBACCOUNT_TOKENS[key] = (now + SUBACCOUNT_TOKEN_TTL, token)
        return token

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        malformed = WebhookRejected.MALFORMED
        try:
            form = request.form
        except UnicodeDecodeError as exc:
            raise WebhookRejected(malformed, "the body is not valid UTF-8 form data") from exc
        message_sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        if not message_sid:
            raise WebhookRejected(malformed, "no MessageSid")
        if len(message_sid) > 64:
            raise WebhookRejected(malformed, "MessageSid is too long")

        status = form.get("MessageStatus")
        if status is None and form.get("SmsStatus") not in (None, "", "received", "receiving"):
            status = form.get("SmsStatus")
        if status is not None:
            return [self._status(form, message_sid, status)]
        return [self._inbound(form, message_sid)]

    def _status(self, form, message_sid: str, status: str) -> StatusUpdate:
        ours = STATUS_MAP.get(status.strip().lower())
        if ours is None:
            raise WebhookRejected(WebhookRejected.MALFORMED, f"unknown MessageStatus {status!r}")
        code = (form.get("ErrorCode") or "").strip()
        reason = ""
        if code and code != "0":
            reason = error_reason(code, form.get("ErrorMessage", ""))
        else:
            code = ""
        return StatusUpdate(
            provider_message_id=message_sid,
            status=ours,
            provider_status=status,
            error_code=code,
            error_reason=reason,
            timestamp=_dlr_time(form.get("RawDlrDoneDate", "")),
        )

    def _inbound(self, form, message_sid: str) -> InboundMessage:
        sender = form.get("From", "")
        if not sender:
            raise WebhookRejected(WebhookRejected.MALFORMED, "no From")
        try:
            count = int(form.get("NumMedia") or 0)
        except ValueError:
            raise WebhookRejected(WebhookRejected.MALFORMED, "NumMedia is not a number") from None
        if not 0 <= count <= 20:
            raise WebhookRejected(WebhookRejected.MALFORMED, "NumMedia is out of range")
        media = []
        for index in range(count):
            url = form.get(f"MediaUrl{index}", "")
            if not url:
                raise WebhookRejected(WebhookRejected.MALFORMED, f"MediaUrl{index} is missing")
            media.append(
                InboundMedia(url=url, content_type=form.get(f"MediaContentType{index}", ""))
            )
        body = form.get("Body", "")
        if not body and form.get("Latitude") and form.get("Longitude"):
            place = ", ".join(p for p in (form.get("Label"), form.get("Address")) if p)
            body = (
                f"Location: {place + ' ' if place else ''}({form['Latitude']}, {form['Longitude']})"
            )
        if not body and form.get("ButtonText"):
            body = form["ButtonText"]
        if not body and not media:
            body = f"[{form.get('MessageType') or 'empty'} message]"
        return InboundMessage(
            provider_message_id=message_sid,
            from_phone=sender.removeprefix("whatsapp:"),
            body=body,
            profile_name=form.get("ProfileName", "")[:200],
            media=tuple(media),
        )

    # --- sending --------------------------------------------------------------------------

    def _send_params(self, message: Message, to_phone: str) -> dict:
        channel = self.channel
        params: dict = {
            "to": _address(to_phone, self.whatsapp),
            "status_callback": self.status_callback_url(),
        }
        if channel.twilio_messaging_service_sid:
            params["messaging_service_sid"] = channel.twilio_messaging_service_sid
        elif channel.twilio_from:
            params["from_"] = _address(channel.twilio_from, self.whatsapp)
        else:
            raise ProviderError(
                "The channel has no sender number or messaging service.",
                code="21603",
                permanent=True,
            )
        template = message.template
        if template is not None:
            if not template.provider_template_id:
                raise ProviderError(
                    f"The template “{template.name}” has no Twilio Content SID; sync templates.",
                    permanent=True,
                )
            params["content_sid"] = template.provider_template_id
            variables = message.template_variables or {}
            if variables:
                params["content_variables"] = json.dumps(
                    {str(k): str(v) for k, v in variables.items()}
                )
            return params
        media_urls = [m["url"] for m in (message.media or []) if m.get("url")]
        if media_urls:
            params["media_url"] = media_urls
        if message.body:
            params["body"] = message.body
        if not media_urls and not message.body:
            raise ProviderError("The message has no text, media or template.", permanent=True)
        return params

    def send(self, message: Message, *, to_phone: str) -> SendResult:
        params = self._send_params(message, to_phone)
        try:
            created = self.client().messages.create(**params)
        except TwilioRestException as exc:
            raise rest_error(exc) from exc
        except requests.RequestException as exc:
            raise connection_error(exc, sent=True) from exc
        except TwilioException as exc:
            raise ProviderError(
                f"Twilio's answer could not be read: {exc}", ambiguous=True
            ) from exc
        return SendResult(
            provider_message_id=created.sid,
            status=STATUS_MAP.get(created.status or "", Message.Status.ACCEPTED),
        )

    def find_sent(self, message: Message, *, to_phone: str) -> str | None:
        """Look for the message among the latest ones Twilio sent to this number."""
        started = message.created_at - timedelta(minutes=2)
        filters: dict = {"to": _address(to_phone, self.whatsapp), "limit": 50, "page_size": 50}
        if not self.channel.twilio_messaging_service_sid and self.channel.twilio_from:
            filters["from_"] = _address(self.channel.twilio_from, self.whatsapp)
        try:
            listed = self.client().messages.list(**filters)
        except (TwilioException, requests.RequestException) as exc:
            logger.warning("Twilio message lookup failed: %s", type(exc).__name__)
            return None
        candidates = []
        for item in listed:
            created = item.date_created
            if item.direction not in (None, "outbound-api"):
                continue
            if created is not None and created < started:
                continue
            if message.template_id is None and (item.body or "") != (message.body or ""):
                continue
            candidates.append(item.sid)
        if not candidates:
            return None
        taken = set(
            Message.objects.filter(
                channel=self.channel, provider_message_id__in=candidates
            ).values_list("provider_message_id", flat=True)
        )
        free = [sid for sid in candidates if sid not in taken]
        # Only a single unclaimed match is certain; several identical sends cannot be told apart.
        return free[0] if len(free) == 1 else None

    # --- console --------------------------------------------------------------------------

    def test_connection(self) -> ConnectionCheck:
        channel = self.channel
        if not channel.twilio_account_sid or not channel.twilio_auth_token:
            return ConnectionCheck(False, "Enter the Twilio account SID and auth token.")
        try:
            account = self.client().api.v2010.accounts(channel.twilio_account_sid).fetch()
        except TwilioRestException as exc:
            if exc.status in (401, 403):
                return ConnectionCheck(
                    False,
                    "Twilio refused the account SID and auth token. Copy both again from the "
                    "Twilio console (use the primary auth token).",
                )
            if exc.status == 404:
                return ConnectionCheck(
                    False, f"Twilio does not know the account {channel.twilio_account_sid}."
                )
            return ConnectionCheck(False, f"Twilio answered with an error: {rest_error(exc)}")
        except (requests.RequestException, TwilioException) as exc:
            return ConnectionCheck(False, f"Could not reach Twilio: {connection_error(exc)}")
        if account.status != "active":
            return ConnectionCheck(False, f"The Twilio account is {account.status}.")
        sender = channel.twilio_messaging_service_sid or channel.twilio_from
        sender_words = f", sending as {sender}" if sender else ", but no sender is set"
        return ConnectionCheck(
            True, f"Connected to the Twilio account “{account.friendly_name}”{sender_words}."
        )

    def fetch_templates(self) -> list[TemplateData]:
        try:
            items = list(self.client().content.v1.content_and_approvals.stream(page_size=100))
        except TwilioRestException as exc:
            raise rest_error(exc) from exc
        except (requests.RequestException, TwilioException) as exc:
            raise connection_error(exc) from exc
        return [self._template(item) for item in items]

    def _template(self, item) -> TemplateData:
        types = item.types or {}
        body = ""
        for value in types.values():
            if isinstance(value, dict):
                body = value.get("body") or value.get("title") or ""
                if body:
                    break
        approval = item.approval_requests or {}
        if isinstance(approval.get("whatsapp"), dict):
            approval = approval["whatsapp"]
        raw_status = (approval.get("status") or "").lower()
        rejection = approval.get("rejection_reason") or ""
        if not self.whatsapp:
            status = MessageTemplate.Status.APPROVED  # SMS content needs no approval
        elif raw_status == "approved":
            status = MessageTemplate.Status.APPROVED
        elif raw_status == "rejected":
            status = MessageTemplate.Status.REJECTED
        elif raw_status == "paused":
            status = MessageTemplate.Status.PAUSED
        elif raw_status == "disabled":
            status = MessageTemplate.Status.DISABLED
        else:
            status = MessageTemplate.Status.PENDING
            if raw_status in ("", "unsubmitted"):
                rejection = rejection or "Not submitted to WhatsApp for approval."
        category = (approval.get("category") or "").lower()
        if category not in MessageTemplate.Category.values:
            category = ""
        variables = tuple(sorted((item.variables or {}).keys(), key=_variable_order))
        if not variables:
            variables = tuple(dict.fromkeys(re.findall(r"\{\{\s*([\w.]+)\s*\}\}", body)))
        return TemplateData(
            name=item.friendly_name or item.sid,
            language=item.language or "",
            status=status,
            category=category,
            body=body,
            variables=variables,
            provider_template_id=item.sid,
            components=[
                {"type": kind, **(v if isinstance(v, dict) else {})} for kind, v in types.items()
            ],
            rejection_reason=rejection[:300],
        )

    def fetch_media(self, media: dict) -> MediaContent:
        url = media.get("url") or ""
        if not is_twilio_url(url):
            # Never send the account's credentials anywhere but Twilio.
            raise ProviderError("The media URL is not a Twilio URL.", permanent=True)
        auth = (self.channel.twilio_account_sid, self.channel.twilio_auth_token)
        try:
            # Twilio redirects to its media store; requests drops the credentials on the way.
            response = requests.get(
                api_url(url),
                auth=auth,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                allow_redirects=True,
                stream=True,
            )
        except requests.RequestException as exc:
            raise connection_error(exc) from exc
        with response:
            if response.status_code in (401, 403):
                raise ProviderError(
                    "Twilio refused the channel's credentials for this media.",
                    code="20003",
                    permanent=True,
                )
            if response.status_code == 404:
                raise ProviderError("Twilio no longer has this media.", permanent=True)
            if response.status_code >= 400:
                raise ProviderError(
                    f"Twilio answered {response.status_code} for the media.",
                    permanent=response.status_code < 500,
                )
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MEDIA_MAX_BYTES:
                    raise ProviderError("The media is too large.", permanent=True)
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type", "") or media.get("content_type", "")
        return MediaContent(
            content=b"".join(chunks),
            content_type=content_type.split(";")[0].strip() or "application/octet-stream",
            filename=media.get("filename", "") or "",
        )


# --- errors ---------------------------------------------------------------------------------


def rest_error(exc: TwilioRestException) -> ProviderError:
    code = exc.code
    reason = error_reason(code, str(exc.msg or "") or f"Twilio answered HTTP {exc.status}.")
    transient = exc.status >= 500 or exc.status == 429 or (code in TRANSIENT_CODES)
    retry_after = None
    if exc.status == 429 or code in (20429, 63018):
        retry_after = 1.0
    return ProviderError(
        reason,
        code=str(code or exc.status),
        permanent=not transient,
        retry_after=retry_after,
    )


def connection_error(exc: Exception, *, sent: bool = False) -> ProviderError:
    """Network trouble: transient when the request never left, ambiguous when it may have."""
    if isinstance(exc, requests.ConnectTimeout):
        return ProviderError("Twilio did not answer the connection in time.")
    if isinstance(exc, requests.Timeout):
        return ProviderError(
            "Twilio did not answer in time; the message may have been sent.", ambiguous=sent
        )
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        refused = any(
            word in text
            for word in ("NewConnectionError", "Connection refused", "Name or service", "resolve")
        )
        if refused or not sent:
            return ProviderError(f"Could not connect to Twilio ({type(exc).__name__}).")
        return ProviderError(
            "The connection to Twilio broke; the message may have been sent.", ambiguous=True
        )
    return ProviderError(f"Twilio request failed ({type(exc).__name__}).", ambiguous=sent)


def _variable_order(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _dlr_time(value: str) -> datetime | None:
    """RawDlrDoneDate (YYMMDDhhmm, UTC) of SMS delivery receipts."""
    if not value or not value.isdigit() or len(value) not in (10, 12):
        return None
    try:
        return datetime.strptime(value[:10], "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
