"""A local HTTP server that speaks Twilio's REST API and Meta's Graph API.

The adapters run for real against it (the official `twilio` client, `httpx` for Meta); only
the host changes. One server answers for several provider hosts:

    https://api.twilio.com/<path>        ->  <base_url>/twilio/api/<path>
    https://content.twilio.com/<path>    ->  <base_url>/twilio/content/<path>
    https://messaging.twilio.com/<path>  ->  <base_url>/twilio/messaging/<path>
    https://graph.facebook.com/<path>    ->  <base_url>/graph/<path>   (WhatsApp Cloud API
                                                                       and Lead Ads leads)

URLs the stub hands out (paging links, media URLs) are the real provider URLs, exactly as the
providers return them; the client side rewrites them, as it does for every other request.
Meta's media download URL (lookaside.fbsbx.com in production) is a stub URL, since Meta hands
it out as an opaque absolute URL.

    with ProviderStub() as stub:
        stub.twilio_account("AC…", "token")
        ...
        assert stub.sent[0]["Body"] == "Hello"

Failure injection: `fail_next(n, status=500)` (transient, n times), `fail_permanently(code=…)`
(the next send(s) are refused with the provider's error), `delay(seconds)` (the request is
processed, and recorded, before the answer is held back: a client timeout then leaves the
message sent, as a real lost response does), `reset()`.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from twilio.http.http_client import TwilioHttpClient

TWILIO_API_VERSION = "2010-04-01"

# Twilio error codes the stub knows by heart: HTTP status and Twilio's message.
TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service is unavailable. Please try again"),
    21211: (400, "Invalid 'To' Phone Number"),
    21408: (
        400,
        "Permission to send an SMS has not been enabled for the region indicated by the "
        "'To' number",
    ),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The 'From' phone number provided is not a valid message-capable Twilio phone number "
        "for this destination/account",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS"),
    21614: (400, "'To' number is not a valid mobile number"),
    21656: (400, "The ContentVariables Parameter is invalid"),
    21910: (
        400,
        "Invalid From and To pair. From and To should be of the same channel",
    ),
    63003: (400, "Channel could not find To address"),
    63007: (400, "Twilio could not find a Channel with the specified From address"),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. If you "
        "are using WhatsApp, please use a Message Template.",
    ),
}

# Meta error codes: HTTP status, type, message (and details for error_data).
META_ERRORS: dict[int, tuple[int, str, str, str]] = {
    4: (400, "OAuthException", "(#4) Application request limit reached", ""),
    100: (400, "OAuthException", "(#100) Invalid parameter", ""),
    190: (
        401,
        "OAuthException",
        "Invalid OAuth access token - Cannot parse access token",
        "",
    ),
    130429: (
        400,
        "OAuthException",
        "(#130429) Rate limit hit",
        "Cloud API message throughput has been reached.",
    ),
    131000: (
        500,
        "OAuthException",
        "(#131000) Something went wrong",
        "Message failed to send due to an unknown error.",
    ),
    131026: (
        400,
        "OAuthException",
        "(#131026) Message Undeliverable",
        "Message failed to send because the recipient cannot be reached.",
    ),
    131047: (
        400,
        "OAuthException",
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    131050: (
        400,
        "OAuthException",
        "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving "
        "marketing messages on WhatsApp from your business.",
        "",
    ),
    131056: (
        400,
        "OAuthException",
        "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        "Too many messages sent from the sender phone number to the same recipient phone "
        "number in a short period of time.",
    ),
    132001: (
        404,
        "OAuthException",
        "(#132001) Template name does not exist in the translation",
        "template name does not exist in the specified language",
    ),
}


def _hex(n: int = 32) -> str:
    return secrets.token_hex(n // 2)


def twilio_sid(prefix: str) -> str:
    return prefix + _hex(32)


def wamid() -> str:
    raw = b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(18)
    return "wamid." + base64.b64encode(raw).decode()


def rfc2822(dt: datetime) -> str:
    return email.utils.format_datetime(dt, usegmt=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _is_meta_code(code: int) -> bool:
    return code in META_ERRORS or code >= 130000


@dataclass
class _Failure:
    remaining: int
    status: int
    code: int | None
    message: str | None
    provider: str | None  # "twilio", "meta" or None for both
    sends_only: bool


@dataclass
class _TwilioAccount:
    sid: str
    auth_token: str
    friendly_name: str
    owner_account_sid: str
    status: str = "active"
    type: str = "Full"
    date_created: datetime = field(default_factory=_now)


class ProviderStub:
    """The server. Use as a context manager, or `start()` / `stop()`."""

    def __init__(self, host: str = "127.0.0.1"):
        self._host = host
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.lock = threading.RLock()
        self._init_state()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> ProviderStub:
        stub = self

        class Handler(_Handler):
            provider_stub = stub

        self._server = ThreadingHTTPServer((self._host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="provider-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ProviderStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the provider stub is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def twilio_base_url(self) -> str:
        """The value for settings.TWILIO_API_BASE_URL."""
        return self.base_url

    @property
    def meta_base_url(self) -> str:
        """The value for settings.META_GRAPH_BASE_URL."""
        return self.base_url + "/graph"

    # --- state ---------------------------------------------------------------------------

    def _init_state(self) -> None:
        with self.lock:
            self.sent: list[dict[str, Any]] = []
            self.requests: list[dict[str, Any]] = []
            self._failures: list[_Failure] = []
            self._delay_seconds = 0.0
            self._delay_times: int | None = None
            self._twilio_accounts: dict[str, _TwilioAccount] = {}
            self._twilio_messages: dict[str, list[dict]] = {}
            self._twilio_contents: dict[str, list[dict]] = {}
            self._twilio_media: dict[str, tuple[str, bytes, str]] = {}  # path -> (acct, b, ct)
            self._cdn: dict[str, tuple[bytes, str]] = {}
            self._meta_numbers: dict[str, dict] = {}
            self._meta_tokens: set[str] = set()
            self._meta_templates: dict[str, list[dict]] = {}
            self._meta_media: dict[str, dict] = {}
            self._meta_leads: dict[str, dict] = {}

    def reset(self) -> None:
        """Forget everything: accounts, records, injected failures and delays."""
        self._init_state()

    def sends(self, provider: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.sent if provider is None or s["provider"] == provider]

    # --- failure injection ---------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        code: int | None = None,
        message: str | None = None,
        provider: str | None = None,
        sends_only: bool = True,
    ) -> None:
        """The next `n` sends (or any calls with sends_only=False) fail transiently."""
        with self.lock:
            self._failures.append(_Failure(n, status, code, message, provider, sends_only))

    def fail_permanently(
        self,
        code: int = 21610,
        status: int | None = None,
        message: str | None = None,
        *,
        times: int = 1,
        provider: str | None = None,
    ) -> None:
        """The next send(s) are refused with this provider error code."""
        if provider is None:
            provider = "meta" if _is_meta_code(code) else "twilio"
        if status is None:
            table = META_ERRORS if provider == "meta" else TWILIO_ERRORS
            status = table.get(code, (400,))[0]
        with self.lock:
            self._failures.append(_Failure(times, status, code, message, provider, True))

    def delay(self, seconds: float, *, times: int | None = None) -> None:
        """Hold every answer (or the next `times`) back by `seconds`, after processing."""
        with self.lock:
            self._delay_seconds = seconds
            self._delay_times = times

    def _take_failure(self, provider: str, is_send: bool) -> _Failure | None:
        with self.lock:
            for failure in self._failures:
                if failure.remaining <= 0:
                    continue
                if failure.provider not in (None, provider):
                    continue
                if failure.sends_only and not is_send:
                    continue
                failure.remaining -= 1
                return failure
        return None

    def _take_delay(self) -> float:
        with self.lock:
            if not self._delay_seconds:
                return 0.0
            if self._delay_times is not None:
                if self._delay_times <= 0:
                    return 0.0
                self._delay_times -= 1
            return self._delay_seconds

    # --- Twilio fixtures ----------------------------------------------------------------

    def twilio_account(
        self,
        sid: str | None = None,
        auth_token: str | None = None,
        *,
        friendly_name: str = "Sales OS test account",
        owner_account_sid: str | None = None,
        status: str = "active",
    ) -> tuple[str, str]:
        """Register an account (a subaccount when owner_account_sid is given)."""
        sid = sid or twilio_sid("AC")
        auth_token = auth_token or _hex(32)
        with self.lock:
            self._twilio_accounts[sid] = _TwilioAccount(
                sid=sid,
                auth_token=auth_token,
                friendly_name=friendly_name,
                owner_account_sid=owner_account_sid or sid,
                status=status,
                type="Full",
            )
        return sid, auth_token

    def twilio_content(
        self,
        account_sid: str,
        *,
        friendly_name: str,
        body: str,
        language: str = "en",
        variables: dict[str, str] | None = None,
        category: str = "UTILITY",
        status: str = "approved",
        rejection_reason: str = "",
        sid: str | None = None,
        types: dict | None = None,
    ) -> str:
        """Register a Content API template (with its WhatsApp approval) for an account."""
        sid = sid or twilio_sid("HX")
        now = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        content_type = "twilio/text"
        types = types or {content_type: {"body": body}}
        item = {
            "date_created": now,
            "date_updated": now,
            "sid": sid,
            "account_sid": account_sid,
            "friendly_name": friendly_name,
            "language": language,
            "variables": variables or {},
            "types": types,
            "approval_requests": {
                "name": friendly_name,
                "category": category,
                "content_type": next(iter(types)),
                "status": status,
                "rejection_reason": rejection_reason,
                "allow_category_change": True,
            },
        }
        with self.lock:
            self._twilio_contents.setdefault(account_sid, []).append(item)
        return sid

    def twilio_media(
        self,
        account_sid: str,
        content: bytes,
        content_type: str = "image/jpeg",
        *,
        message_sid: str | None = None,
    ) -> str:
        """Store media as Twilio does for an inbound message; returns its (real-host) URL."""
        message_sid = message_sid or twilio_sid("MM")
        media_sid = twilio_sid("ME")
        path = (
            f"/{TWILIO_API_VERSION}/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}"
        )
        with self.lock:
            self._twilio_media[path] = (account_sid, content, content_type)
        return "https://api.twilio.com" + path

    def twilio_messages(self, account_sid: str) -> list[dict]:
        with self.lock:
            return list(self._twilio_messages.get(account_sid, []))

    # --- Meta fixtures ------------------------------------------------------------------

    def meta_phone_number(
        self,
        phone_number_id: str,
        access_token: str,
        *,
        display_phone_number: str = "+1 555-010-0000",
        verified_name: str = "Sales OS Test",
        quality_rating: str = "GREEN",
        waba_id: str | None = None,
    ) -> None:
        with self.lock:
            self._meta_tokens.add(access_token)
            self._meta_numbers[phone_number_id] = {
                "id": phone_number_id,
                "display_phone_number": display_phone_number,
                "verified_name": verified_name,
                "quality_rating": quality_rating,
                "code_verification_status": "VERIFIED",
                "platform_type": "CLOUD_API",
                "throughput": {"level": "STANDARD"},
                "waba_id": waba_id,
            }

    def meta_access_token(self, token: str) -> None:
        with self.lock:
            self._meta_tokens.add(token)

    def meta_template(
        self,
        waba_id: str,
        *,
        name: str,
        body: str,
        language: str = "en_US",
        category: str = "UTILITY",
        status: str = "APPROVED",
        example: list[str] | None = None,
        components: list[dict] | None = None,
        rejected_reason: str | None = None,
        template_id: str | None = None,
    ) -> str:
        template_id = template_id or str(secrets.randbelow(10**15) + 10**15)
        if components is None:
            body_component: dict[str, Any] = {"type": "BODY", "text": body}
            if example:
                body_component["example"] = {"body_text": [example]}
            components = [body_component]
        item = {
            "name": name,
            "parameter_format": "POSITIONAL",
            "components": components,
            "language": language,
            "status": status,
            "category": category,
            "id": template_id,
        }
        if rejected_reason is not None:
            item["rejected_reason"] = rejected_reason
        with self.lock:
            self._meta_templates.setdefault(waba_id, []).append(item)
        return template_id

    def meta_media(
        self,
        content: bytes,
        mime_type: str = "image/jpeg",
        *,
        media_id: str | None = None,
        phone_number_id: str | None = None,
    ) -> str:
        media_id = media_id or str(secrets.randbelow(10**15) + 10**15)
        with self.lock:
            self._meta_media[media_id] = {
                "content": content,
                "mime_type": mime_type,
                "sha256": hashlib.sha256(content).hexdigest(),
                "file_size": len(content),
                "phone_number_id": phone_number_id,
            }
        return media_id

    def meta_lead(
        self,
        access_token: str,
        *,
        field_data: dict[str, str | list[str]],
        leadgen_id: str | None = None,
        form_id: str = "",
        ad_id: str = "",
        campaign_id: str = "",
        is_test: bool = False,
    ) -> str:
        """Register a Lead Ads lead, readable with `access_token` (a page access token) as
        `GET /{version}/{leadgen_id}`; `field_data` is {question name: answer(s)}."""
        leadgen_id = leadgen_id or str(secrets.randbelow(10**15) + 10**15)
        with self.lock:
            self._meta_tokens.add(access_token)
            self._meta_leads[leadgen_id] = {
                "id": leadgen_id,
                "created_time": _now().strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "ad_id": ad_id,
                "form_id": form_id,
                "campaign_id": campaign_id,
                "is_test": is_test,
                "field_data": [
                    {"name": name, "values": value if isinstance(value, list) else [value]}
                    for name, value in field_data.items()
                ],
                "token": access_token,
            }
        return leadgen_id


# --- HTTP handler ---------------------------------------------------------------------------


class _Reply(Exception):
    def __init__(self, status: int, body: Any = None, headers: dict | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


_TWILIO_ACCOUNT = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[A-Za-z0-9]+)\.json$")
_TWILIO_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[A-Za-z0-9]+)/Messages\.json$")
_TWILIO_MESSAGE = re.compile(
    r"^/2010-04-01/Accounts/(?P<sid>[A-Za-z0-9]+)/Messages/(?P<msg>SM[0-9a-f]+|MM[0-9a-f]+)\.json$"
)
_TWILIO_MEDIA = re.compile(
    r"^/2010-04-01/Accounts/(?P<sid>[A-Za-z0-9]+)/Messages/[A-Za-z0-9]+/Media/[A-Za-z0-9]+$"
)
_META_VERSION = re.compile(r"^v\d+\.\d+$")


class _Handler(BaseHTTPRequestHandler):
    provider_stub: ProviderStub
    protocol_version = "HTTP/1.1"
    server_version = "ProviderStub/1.0"

    def log_message(self, format, *args):
        return

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # --- plumbing ---------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        stub = self.provider_stub
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        self.req_path = split.path
        self.query = parse_qs(split.query, keep_blank_values=True)
        with stub.lock:
            stub.requests.append(
                {
                    "method": method,
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": self.raw_body,
                }
            )
        try:
            if self.req_path.startswith("/twilio/"):
                rest = self.req_path[len("/twilio/") :]
                host, _, path = rest.partition("/")
                self._twilio(method, host, "/" + path)
            elif self.req_path.startswith("/twilio-cdn/"):
                self._twilio_cdn(self.req_path[len("/twilio-cdn/") :])
            elif self.req_path.startswith("/graph/"):
                self._meta(method, self.req_path[len("/graph") :])
            else:
                raise _Reply(404, {"error": "unknown path"})
        except _Reply as reply:
            self._send(reply.status, reply.body, reply.headers)
        except Exception as exc:  # a bug in the stub: say so instead of hanging the client
            self._send(599, {"stub_error": repr(exc)})

    def _send(self, status: int, body: Any, headers: dict) -> None:
        pause = self.provider_stub._take_delay()
        if pause:
            time.sleep(pause)
        if isinstance(body, bytes):
            payload = body
            content_type = headers.pop("Content-Type", "application/octet-stream")
        elif body is None:
            payload = b""
            content_type = headers.pop("Content-Type", "text/plain")
        else:
            payload = json.dumps(body).encode()
            content_type = "application/json; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): the work was done all the same

    def _form(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_body.decode("utf-8"), keep_blank_values=True)

    # --- Twilio ------------------------------------------------------------------------

    def _twilio_error(self, code: int, status: int | None = None, message: str | None = None):
        default_status, default_message = TWILIO_ERRORS.get(code, (status or 400, "Error"))
        status = status or default_status
        return _Reply(
            status,
            {
                "code": code,
                "message": message or default_message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def _twilio_auth(self) -> _TwilioAccount:
        header = self.headers.get("Authorization", "")
        stub = self.provider_stub
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            except ValueError:
                user = password = ""
            with stub.lock:
                account = stub._twilio_accounts.get(user)
            if account and secrets.compare_digest(account.auth_token, password):
                return account
        raise self._twilio_error(20003, 401)

    def _twilio_account_for_path(self, sid: str) -> _TwilioAccount:
        """The account in the URL, reachable with the credentials (own or a subaccount)."""
        caller = self._twilio_auth()
        with self.provider_stub.lock:
            account = self.provider_stub._twilio_accounts.get(sid)
        if account is None or (
            account.sid != caller.sid and account.owner_account_sid != caller.sid
        ):
            raise self._twilio_error(
                20404, 404, f"The requested resource {self.req_path} was not found"
            )
        return account

    def _injected_failure(self, provider: str, is_send: bool) -> None:
        failure = self.provider_stub._take_failure(provider, is_send)
        if failure is None:
            return
        if provider == "twilio":
            code = failure.code
            if code is None:
                code = {429: 20429, 503: 20503}.get(failure.status, 20500)
            raise self._twilio_error(code, failure.status, failure.message)
        code = failure.code
        if code is None:
            code = 130429 if failure.status == 429 else 131000
        raise self._meta_error(code, failure.status, failure.message)

    def _twilio(self, method: str, host: str, path: str) -> None:
        if host == "api":
            if m := _TWILIO_ACCOUNT.match(path):
                if method != "GET":
                    raise _Reply(405, {"error": "method not allowed"})
                self._injected_failure("twilio", False)
                account = self._twilio_account_for_path(m["sid"])
                raise _Reply(200, self._twilio_account_json(account))
            if m := _TWILIO_MESSAGES.match(path):
                if method == "POST":
                    self._twilio_send(m["sid"])
                self._injected_failure("twilio", False)
                self._twilio_list_messages(m["sid"])
            if m := _TWILIO_MESSAGE.match(path):
                self._injected_failure("twilio", False)
                account = self._twilio_account_for_path(m["sid"])
                for resource in self.provider_stub.twilio_messages(account.sid):
                    if resource["sid"] == m["msg"]:
                        raise _Reply(200, resource)
                raise self._twilio_error(20404, 404)
            if _TWILIO_MEDIA.match(path):
                self._twilio_media_fetch(path)
        if host == "content" and path == "/v1/ContentAndApprovals":
            self._injected_failure("twilio", False)
            self._twilio_contents()
        raise self._twilio_error(20404, 404, f"The requested resource {path} was not found")

    def _twilio_account_json(self, account: _TwilioAccount) -> dict:
        base = f"/{TWILIO_API_VERSION}/Accounts/{account.sid}"
        return {
            "auth_token": account.auth_token,
            "date_created": rfc2822(account.date_created),
            "date_updated": rfc2822(account.date_created),
            "friendly_name": account.friendly_name,
            "owner_account_sid": account.owner_account_sid,
            "sid": account.sid,
            "status": account.status,
            "subresource_uris": {
                "messages": f"{base}/Messages.json",
                "incoming_phone_numbers": f"{base}/IncomingPhoneNumbers.json",
            },
            "type": account.type,
            "uri": f"{base}.json",
        }

    def _twilio_send(self, sid: str) -> None:
        stub = self.provider_stub
        account = self._twilio_account_for_path(sid)
        self._injected_failure("twilio", True)
        form = self._form()
        fields: dict[str, Any] = {
            key: (values if key == "MediaUrl" else values[-1]) for key, values in form.items()
        }
        to = fields.get("To", "")
        from_ = fields.get("From", "")
        service = fields.get("MessagingServiceSid", "")
        if not to:
            raise self._twilio_error(21604)
        if not from_ and not service:
            raise self._twilio_error(21603)
        if not (fields.get("Body") or fields.get("MediaUrl") or fields.get("ContentSid")):
            raise self._twilio_error(21602)
        if from_ and (to.startswith("whatsapp:") != from_.startswith("whatsapp:")):
            raise self._twilio_error(21910)
        if "ContentVariables" in fields:
            try:
                variables = json.loads(fields["ContentVariables"])
            except ValueError:
                variables = None
            if not isinstance(variables, dict):
                raise self._twilio_error(21656)
        now = _now()
        message_sid = twilio_sid("MM" if fields.get("MediaUrl") else "SM")
        base = f"/{TWILIO_API_VERSION}/Accounts/{account.sid}/Messages/{message_sid}"
        resource = {
            "account_sid": account.sid,
            "api_version": TWILIO_API_VERSION,
            "body": fields.get("Body", ""),
            "date_created": rfc2822(now),
            "date_sent": None,
            "date_updated": rfc2822(now),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_ or None,
            "messaging_service_sid": service or None,
            "num_media": str(len(fields.get("MediaUrl", []))),
            "num_segments": "0" if service else "1",
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": to,
            "uri": f"{base}.json",
        }
        with stub.lock:
            stub.sent.append(
                {
                    "provider": "twilio",
                    "account_sid": account.sid,
                    "message_id": message_sid,
                    **fields,
                }
            )
            # What a later list shows: the message left Twilio straight away.
            stored = dict(resource, status="sent", date_sent=rfc2822(now))
            stub._twilio_messages.setdefault(account.sid, []).insert(0, stored)
        raise _Reply(201, resource)

    def _twilio_list_messages(self, sid: str) -> None:
        account = self._twilio_account_for_path(sid)
        q = {key: values[-1] for key, values in self.query.items()}
        items = self.provider_stub.twilio_messages(account.sid)
        if q.get("To"):
            items = [i for i in items if i["to"] == q["To"]]
        if q.get("From"):
            items = [i for i in items if i["from"] == q["From"]]

        def sent_day(item):
            parsed = email.utils.parsedate_to_datetime(item["date_sent"] or item["date_created"])
            return parsed.strftime("%Y-%m-%d")

        def sent_at(item):
            return email.utils.parsedate_to_datetime(item["date_sent"] or item["date_created"])

        def parse_bound(value: str) -> datetime:
            value = value.strip()
            if len(value) == 10:
                return datetime.fromisoformat(value).replace(tzinfo=UTC)
            return datetime.fromisoformat(value.replace("Z", "+00:00"))

        if q.get("DateSent"):
            value = q["DateSent"]
            if len(value) == 10:
                items = [i for i in items if sent_day(i) == value]
            else:
                items = [i for i in items if sent_at(i) == parse_bound(value)]
        if q.get("DateSent<"):
            bound = parse_bound(q["DateSent<"])
            items = [i for i in items if sent_at(i) <= bound]
        if q.get("DateSent>"):
            bound = parse_bound(q["DateSent>"])
            items = [i for i in items if sent_at(i) >= bound]
        page_size = max(1, min(int(q.get("PageSize") or 50), 1000))
        page = int(q.get("Page") or 0)
        start = page * page_size
        chunk = items[start : start + page_size]
        base = f"/{TWILIO_API_VERSION}/Accounts/{account.sid}/Messages.json"
        filters = {k: v for k, v in q.items() if k not in ("Page", "PageSize", "PageToken")}

        def page_uri(number: int) -> str:
            return base + "?" + urlencode({**filters, "PageSize": page_size, "Page": number})

        has_next = start + page_size < len(items)
        raise _Reply(
            200,
            {
                "end": start + len(chunk) - 1 if chunk else 0,
                "first_page_uri": page_uri(0),
                "messages": chunk,
                "next_page_uri": (
                    page_uri(page + 1) + f"&PageToken=PASM{page + 1}" if has_next else None
                ),
                "page": page,
                "page_size": page_size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": start,
                "uri": page_uri(page),
            },
        )

    def _twilio_media_fetch(self, path: str) -> None:
        stub = self.provider_stub
        with stub.lock:
            stored = stub._twilio_media.get(path)
        if stored is None:
            raise self._twilio_error(20404, 404)
        account_sid, content, content_type = stored
        # Media is behind HTTP basic auth (the account's own credentials or its parent's).
        self._twilio_account_for_path(account_sid)
        token = secrets.token_urlsafe(16)
        with stub.lock:
            stub._cdn[token] = (content, content_type)
        # Twilio answers with a redirect to its media store, which needs no credentials.
        raise _Reply(307, None, {"Location": f"{stub.base_url}/twilio-cdn/{token}"})

    def _twilio_cdn(self, token: str) -> None:
        with self.provider_stub.lock:
            stored = self.provider_stub._cdn.get(token)
        if stored is None:
            raise _Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        content, content_type = stored
        raise _Reply(200, content, {"Content-Type": content_type})

    def _twilio_contents(self) -> None:
        account = self._twilio_auth()
        q = {key: values[-1] for key, values in self.query.items()}
        items = list(self.provider_stub._twilio_contents.get(account.sid, []))
        page_size = max(1, min(int(q.get("PageSize") or 50), 1000))
        page = int(q.get("Page") or 0)
        start = page * page_size
        chunk = items[start : start + page_size]
        base = "https://content.twilio.com/v1/ContentAndApprovals"

        def url(number: int, token: str | None = None) -> str:
            params = {"PageSize": page_size, "Page": number}
            if token:
                params["PageToken"] = token
            return base + "?" + urlencode(params)

        has_next = start + page_size < len(items)
        raise _Reply(
            200,
            {
                "contents": chunk,
                "meta": {
                    "page": page,
                    "page_size": page_size,
                    "first_page_url": url(0),
                    "previous_page_url": url(page - 1) if page > 0 else None,
                    "url": url(page),
                    "next_page_url": url(page + 1, f"PT{page + 1}") if has_next else None,
                    "key": "contents",
                },
            },
        )

    # --- Meta --------------------------------------------------------------------------

    def _meta_error(
        self,
        code: int,
        status: int | None = None,
        message: str | None = None,
        *,
        subcode: int | None = None,
        type_: str | None = None,
    ) -> _Reply:
        default = META_ERRORS.get(code, (status or 400, "OAuthException", f"(#{code}) Error", ""))
        error: dict[str, Any] = {
            "message": message or default[2],
            "type": type_ or default[1],
            "code": code,
            "fbtrace_id": "A" + secrets.token_urlsafe(16),
        }
        if default[3]:
            error["error_data"] = {"messaging_product": "whatsapp", "details": default[3]}
        if subcode is not None:
            error["error_subcode"] = subcode
        return _Reply(status or default[0], {"error": error})

    def _meta_token(self) -> str:
        header = self.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        if not token:
            token = (self.query.get("access_token") or [""])[-1]
        with self.provider_stub.lock:
            known = token in self.provider_stub._meta_tokens
        if not token:
            raise self._meta_error(
                2500,
                400,
                "An active access token must be used to query information about the current user.",
                type_="OAuthException",
            )
        if not known:
            raise self._meta_error(190, 401, subcode=463 if token.startswith("expired") else None)
        return token

    def _meta_not_found(self, object_id: str) -> _Reply:
        return self._meta_error(
            100,
            400,
            f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation. Please "
            "read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            subcode=33,
            type_="GraphMethodException",
        )

    def _meta(self, method: str, path: str) -> None:
        stub = self.provider_stub
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == "media-download" and len(parts) == 2:
            self._meta_download(parts[1])
        if not parts or not _META_VERSION.match(parts[0]):
            raise self._meta_error(2500, 400, "Unknown path components: " + path)
        parts = parts[1:]
        self._meta_token()
        if len(parts) == 2 and parts[1] == "messages" and method == "POST":
            self._meta_send(parts[0])
        self._injected_failure("meta", False)
        if len(parts) == 2 and parts[1] == "message_templates" and method == "GET":
            self._meta_templates(parts[0])
        if len(parts) == 1 and method == "GET":
            object_id = parts[0]
            with stub.lock:
                number = stub._meta_numbers.get(object_id)
                media = stub._meta_media.get(object_id)
                lead = stub._meta_leads.get(object_id)
            if lead is not None:
                self._meta_lead(lead)
            if number is not None:
                body = {k: v for k, v in number.items() if k != "waba_id"}
                fields = (self.query.get("fields") or [""])[-1]
                if fields:
                    wanted = set(fields.split(",")) | {"id"}
                    body = {k: v for k, v in body.items() if k in wanted}
                raise _Reply(200, body)
            if media is not None:
                raise _Reply(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "url": f"{stub.base_url}/graph/media-download/{object_id}",
                        "mime_type": media["mime_type"],
                        "sha256": media["sha256"],
                        "file_size": str(media["file_size"]),
                        "id": object_id,
                    },
                )
            raise self._meta_not_found(object_id)
        raise self._meta_error(
            100, 400, f"Unsupported {method.lower()} request.", type_="GraphMethodException"
        )

    def _meta_lead(self, lead: dict) -> None:
        # A lead is readable only with the page token it belongs to (Graph answers as for an
        # unknown object otherwise); `fields` picks what comes back, as on Graph.
        if self._meta_token() != lead["token"]:
            raise self._meta_not_found(lead["id"])
        body = {k: v for k, v in lead.items() if k != "token"}
        fields = (self.query.get("fields") or [""])[-1]
        if fields:
            wanted = set(fields.split(",")) | {"id"}
            body = {k: v for k, v in body.items() if k in wanted}
        raise _Reply(200, body)

    def _meta_send(self, phone_number_id: str) -> None:
        stub = self.provider_stub
        with stub.lock:
            known = phone_number_id in stub._meta_numbers
        if not known:
            raise self._meta_not_found(phone_number_id)
        self._injected_failure("meta", True)
        try:
            body = json.loads(self.raw_body or b"{}")
        except ValueError:
            raise self._meta_error(100, 400, "(#100) Invalid parameter") from None
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise self._meta_error(100, 400, "(#100) The parameter messaging_product is required.")
        to = str(body.get("to") or "")
        if not to:
            raise self._meta_error(100, 400, "(#100) The parameter to is required.")
        kind = body.get("type", "text")
        allowed = {
            "text", "template", "image", "audio", "document", "video", "sticker",
            "location", "interactive", "contacts", "reaction",
        }  # fmt: skip
        if kind not in allowed or kind not in body:
            raise self._meta_error(
                100, 400, f"(#100) Param {kind} is required for messages of type {kind}."
            )
        if kind == "text" and not (body["text"] or {}).get("body"):
            raise self._meta_error(100, 400, "(#100) Param text['body'] is required.")
        message_id = wamid()
        wa_id = re.sub(r"\D", "", to)
        with stub.lock:
            stub.sent.append(
                {
                    "provider": "meta",
                    "phone_number_id": phone_number_id,
                    "message_id": message_id,
                    **body,
                }
            )
        reply: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id}],
            "messages": [{"id": message_id}],
        }
        if kind == "template":
            reply["messages"][0]["message_status"] = "accepted"
        raise _Reply(200, reply)

    def _meta_templates(self, waba_id: str) -> None:
        stub = self.provider_stub
        with stub.lock:
            if waba_id not in stub._meta_templates and not any(
                n.get("waba_id") == waba_id for n in stub._meta_numbers.values()
            ):
                raise self._meta_not_found(waba_id)
            items = list(stub._meta_templates.get(waba_id, []))
        q = {key: values[-1] for key, values in self.query.items()}
        limit = max(1, min(int(q.get("limit") or 25), 1000))
        start = 0
        if q.get("after"):
            start = int(base64.urlsafe_b64decode(q["after"].encode()).decode())
        chunk = items[start : start + limit]
        body: dict[str, Any] = {"data": chunk}
        if items:
            cursors = {
                "before": base64.urlsafe_b64encode(str(start).encode()).decode(),
                "after": base64.urlsafe_b64encode(str(start + len(chunk)).encode()).decode(),
            }
            paging: dict[str, Any] = {"cursors": cursors}
            if start + limit < len(items):
                version = self.req_path.split("/")[2]
                params = {k: v for k, v in q.items() if k not in ("after", "access_token")}
                params.update(limit=limit, after=cursors["after"])
                paging["next"] = (
                    f"{stub.base_url}/graph/{version}/{waba_id}/message_templates?"
                    + urlencode(params)
                )
            body["paging"] = paging
        raise _Reply(200, body)

    def _meta_download(self, media_id: str) -> None:
        self._meta_token()
        with self.provider_stub.lock:
            media = self.provider_stub._meta_media.get(media_id)
        if media is None:
            raise _Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        raise _Reply(200, media["content"], {"Content-Type": media["mime_type"]})


# --- Client side ----------------------------------------------------------------------------

_TWILIO_HOST = re.compile(r"^https://(?P<host>[a-z0-9.-]+)\.twilio\.com/", re.IGNORECASE)


def rewrite_twilio_url(url: str, base_url: str) -> str:
    """https://<host>.twilio.com/<path> -> <base_url>/twilio/<host>/<path>."""
    return _TWILIO_HOST.sub(lambda m: f"{base_url.rstrip('/')}/twilio/{m['host']}/", url)


class StubTwilioHttpClient(TwilioHttpClient):
    """The official Twilio HTTP client, pointed at the stub (for the stub's own tests)."""

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.stub_base_url = base_url

    def request(self, method, url, *args, **kwargs):
        return super().request(method, rewrite_twilio_url(url, self.stub_base_url), *args, **kwargs)


@contextlib.contextmanager
def running_stub():
    with ProviderStub() as stub:
        yield stub
