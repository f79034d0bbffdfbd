"""Webhooks signed exactly as Twilio and Meta sign them.

Twilio: form parameters (application/x-www-form-urlencoded) and `X-Twilio-Signature`, the
base64 HMAC-SHA1 of the full URL followed by the sorted parameters, keyed with the account's
auth token (computed with the official `RequestValidator`). With a Webhooks shared key the
hash is the key's algorithm (HMAC-SHA256) and `X-Twilio-Webhooks-Signature-Settings` names it.
Post them form-encoded: `client.post(path, encode_form(params), content_type=FORM, headers=h)`.

Meta: a JSON body and `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed
with the app secret>`. Post the bytes as they are: `client.post(path, body,
content_type="application/json", headers=h)`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from tests.fakes.provider_stub import TWILIO_API_VERSION, twilio_sid, wamid

FORM = "application/x-www-form-urlencoded"

# --- Twilio ---------------------------------------------------------------------------------


def encode_form(params: Mapping[str, Any]) -> str:
    """The body Twilio posts: form-encoded, lists as repeated keys."""
    return urlencode(
        [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])]
    )


def twilio_signature(
    url: str, secret: str, params: Mapping[str, Any], algorithm: str | None = None
) -> str:
    return RequestValidator(secret).compute_signature(url, dict(params), algorithm)


def _twilio_headers(
    url: str,
    auth_token: str,
    params: dict[str, Any],
    shared_key: tuple[str, str] | None,
    algorithm: str,
) -> dict[str, str]:
    headers = {
        "User-Agent": "TwilioProxy/1.1",
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
    }
    if shared_key is not None:
        key_id, secret = shared_key
        headers["X-Twilio-Signature"] = twilio_signature(url, secret, params, algorithm)
        headers["X-Twilio-Webhooks-Signature-Settings"] = f"key={key_id},algorithm={algorithm}"
    else:
        headers["X-Twilio-Signature"] = twilio_signature(url, auth_token, params)
    return headers


def _address(number: str, channel: str) -> str:
    if channel == "whatsapp" and not number.startswith("whatsapp:"):
        return "whatsapp:" + number
    return number


def twilio_inbound_message(
    url: str,
    auth_token: str,
    *,
    from_: str,
    to: str,
    body: str = "",
    message_sid: str | None = None,
    media: Sequence[tuple[str, str]] = (),
    messaging_service_sid: str | None = None,
    profile_name: str | None = None,
    channel: str = "whatsapp",
    account_sid: str | None = None,
    extra: Mapping[str, str] | None = None,
    shared_key: tuple[str, str] | None = None,
    algorithm: str = "HMAC_SHA256",
) -> tuple[dict[str, str], dict[str, str]]:
    """An incoming message webhook: (form params, headers).

    `media` is a sequence of (url, content_type); `url` is the exact URL Twilio calls (what
    the signature covers); `shared_key=(key_id, secret)` signs with a Webhooks shared key.
    """
    message_sid = message_sid or twilio_sid("MM" if media else "SM")
    account_sid = account_sid or twilio_sid("AC")
    from_address = _address(from_, channel)
    to_address = _address(to, channel)
    params: dict[str, str] = {}
    if channel == "sms":
        params.update(
            ToCountry="US", ToState="CA", ToCity="", ToZip="",
            FromCountry="US", FromState="CA", FromCity="", FromZip="",
        )  # fmt: skip
    params.update(
        SmsMessageSid=message_sid,
        NumMedia=str(len(media)),
        SmsSid=message_sid,
        SmsStatus="received",
        Body=body,
        To=to_address,
        NumSegments="1",
        MessageSid=message_sid,
        AccountSid=account_sid,
        From=from_address,
        ApiVersion=TWILIO_API_VERSION,
    )
    if channel == "whatsapp":
        params["WaId"] = from_address.removeprefix("whatsapp:").lstrip("+")
        params["ProfileName"] = profile_name or ""
        params["ReferralNumMedia"] = "0"
        params["MessageType"] = _whatsapp_message_type(media)
        params["ChannelMetadata"] = json.dumps(
            {
                "type": "whatsapp",
                "data": {"context": {"ProfileName": profile_name or "", "WaId": params["WaId"]}},
            }
        )
    elif profile_name:
        params["ProfileName"] = profile_name
    for index, (media_url, content_type) in enumerate(media):
        params[f"MediaContentType{index}"] = content_type
        params[f"MediaUrl{index}"] = media_url
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    params.update(extra or {})
    return params, _twilio_headers(url, auth_token, params, shared_key, algorithm)


def _whatsapp_message_type(media: Sequence[tuple[str, str]]) -> str:
    if not media:
        return "text"
    content_type = media[0][1]
    if content_type.startswith("image/"):
        return "image"
    if content_type.startswith("audio/"):
        return "audio"
    if content_type.startswith("video/"):
        return "video"
    return "document"


def twilio_status_callback(
    url: str,
    auth_token: str,
    *,
    message_sid: str,
    status: str,
    error_code: str | int | None = None,
    to: str = "+15550001111",
    from_: str = "+15550002222",
    channel: str = "whatsapp",
    account_sid: str | None = None,
    messaging_service_sid: str | None = None,
    extra: Mapping[str, str] | None = None,
    shared_key: tuple[str, str] | None = None,
    algorithm: str = "HMAC_SHA256",
) -> tuple[dict[str, str], dict[str, str]]:
    """A message status callback: (form params, headers)."""
    account_sid = account_sid or twilio_sid("AC")
    to_address = _address(to, channel)
    params: dict[str, str] = {}
    if error_code not in (None, ""):
        params["ErrorCode"] = str(error_code)
    if channel == "whatsapp":
        params.update(
            ChannelPrefix="whatsapp",
            ChannelInstallSid=twilio_sid("XE"),
            ChannelToAddress="+" + to_address.removeprefix("whatsapp:").lstrip("+"),
            StructuredMessage="false",
        )
        if status in ("delivered", "read"):
            params["EventType"] = status.upper()
    params.update(
        SmsSid=message_sid,
        SmsStatus=status,
        MessageStatus=status,
        To=to_address,
        MessageSid=message_sid,
        AccountSid=account_sid,
        From=_address(from_, channel),
        ApiVersion=TWILIO_API_VERSION,
    )
    if channel == "sms" and status == "delivered":
        params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
    if messaging_service_sid:
        params["MessagingServiceSid"] = messaging_service_sid
    params.update(extra or {})
    return params, _twilio_headers(url, auth_token, params, shared_key, algorithm)


# --- Meta -----------------------------------------------------------------------------------


def meta_signature(app_secret: str, raw_body: bytes) -> str:
    digest = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def meta_webhook(app_secret: str, payload: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    """Any Graph webhook payload, serialised and signed as Meta does."""
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature": "sha1=" + hmac.new(app_secret.encode(), raw, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": meta_signature(app_secret, raw),
    }
    return raw, headers


def _meta_envelope(waba_id: str, phone_number_id: str, display: str, value: dict) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": display,
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def meta_inbound_message(
    app_secret: str,
    *,
    phone_number_id: str,
    waba_id: str,
    from_wa_id: str,
    body: str = "",
    message_id: str | None = None,
    media: Mapping[str, Any] | None = None,
    profile_name: str | None = None,
    display_phone_number: str = "15550100000",
    timestamp: int | None = None,
    message: Mapping[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """An incoming WhatsApp message webhook: (raw body, headers).

    `media`: {"type": "image"|"audio"|"document"|"video"|"sticker", "id", "mime_type",
    optional "caption", "filename", "sha256"}. `message`: replaces the type-specific part for
    other kinds (location, button, interactive…), e.g. {"type": "location", "location": {…}}.
    """
    wa_id = from_wa_id.lstrip("+")
    msg: dict[str, Any] = {
        "from": wa_id,
        "id": message_id or wamid(),
        "timestamp": str(timestamp or int(time.time())),
    }
    if message is not None:
        msg.update(message)
    elif media is not None:
        kind = media.get("type", "image")
        part = {k: v for k, v in media.items() if k != "type"}
        part.setdefault("sha256", secrets.token_hex(32))
        part.setdefault("mime_type", "image/jpeg")
        if body and "caption" not in part and kind in ("image", "video", "document"):
            part["caption"] = body
        msg.update({"type": kind, kind: part})
    else:
        msg.update({"type": "text", "text": {"body": body}})
    value = {
        "contacts": [{"profile": {"name": profile_name or ""}, "wa_id": wa_id}],
        "messages": [msg],
    }
    payload = _meta_envelope(waba_id, phone_number_id, display_phone_number, value)
    return meta_webhook(app_secret, payload)


def meta_status(
    app_secret: str,
    *,
    message_id: str,
    status: str,
    recipient: str,
    errors: Iterable[Mapping[str, Any]] | None = None,
    phone_number_id: str = "106540352242922",
    waba_id: str = "102290129340398",
    display_phone_number: str = "15550100000",
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A message status webhook (sent, delivered, read, failed): (raw body, headers).

    `errors`: e.g. [{"code": 131050, "title": "…"}]; message/error_data are filled in.
    """
    entry: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(timestamp or int(time.time())),
        "recipient_id": recipient.lstrip("+"),
    }
    if status in ("sent", "delivered"):
        entry["conversation"] = {
            "id": secrets.token_hex(16),
            "origin": {"type": "service"},
        }
        entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if errors:
        entry["errors"] = [
            {
                "code": e["code"],
                "title": e.get("title", "Error"),
                "message": e.get("message", e.get("title", "Error")),
                "error_data": {"details": e.get("details", e.get("title", ""))},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }
            for e in errors
        ]
    payload = _meta_envelope(waba_id, phone_number_id, display_phone_number, {"statuses": [entry]})
    return meta_webhook(app_secret, payload)
