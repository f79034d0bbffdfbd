"""The built-in sandbox: a simulated phone in the browser, so a business can try the product
with no provider account.

It behaves like a WhatsApp provider (24-hour window, templates) and its webhooks are signed and
parsed like a real provider's: the simulator builds a `WebhookRequest` with `signed_request`
and hands it to the same inbound pipeline as `/hooks/sandbox/<token>`.

Wire format (JSON, signed with `X-Sandbox-Signature: sha256=<hex HMAC of the body>`):
    {"events": [
        {"type": "message", "id": "sbx-in-…", "from": "+15550100", "name": "Ana", "body": "Hi",
         "media": [{"url": "…", "content_type": "image/png"}]},
        {"type": "status", "id": "sbx-out-…", "status": "delivered"}
    ]}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from channels_app.models import Message, MessageTemplate
from channels_app.providers.base import (
    ConnectionCheck,
    InboundMedia,
    InboundMessage,
    Provider,
    SendResult,
    StatusUpdate,
    TemplateData,
    WebhookEvent,
    WebhookRejected,
    WebhookRequest,
)

SIGNATURE_HEADER = "X-Sandbox-Signature"
SANDBOX_STATUSES = {
    "sent": Message.Status.SENT,
    "delivered": Message.Status.DELIVERED,
    "read": Message.Status.READ,
    "failed": Message.Status.FAILED,
}
MAX_EVENTS = 100

# Two approved templates so the "outside the window" path can be tried in the sandbox.
SANDBOX_TEMPLATES = (
    TemplateData(
        name="follow_up",
        language="en",
        status=MessageTemplate.Status.APPROVED,
        category=MessageTemplate.Category.UTILITY,
        body="Hello {{1}}, we are following up on your request. Reply to continue.",
        variables=("1",),
        provider_template_id="sandbox-follow_up-en",
    ),
    TemplateData(
        name="appointment_reminder",
        language="en",
        status=MessageTemplate.Status.APPROVED,
        category=MessageTemplate.Category.UTILITY,
        body="Hi {{1}}, a reminder of your appointment on {{2}}. Reply YES to confirm.",
        variables=("1", "2"),
        provider_template_id="sandbox-appointment_reminder-en",
    ),
)


def ensure_secret(channel) -> str:
    """The channel's signing key, created on first use."""
    if not channel.sandbox_secret:
        channel.sandbox_secret = secrets.token_urlsafe(32)
        channel.save(update_fields=["sandbox_secret"])
    return channel.sandbox_secret


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_request(channel, events: list[dict]) -> WebhookRequest:
    """A webhook exactly as the simulated phone would post it to the channel's hook URL."""
    body = json.dumps({"events": events}).encode()
    return WebhookRequest(
        method="POST",
        full_path=f"/hooks/sandbox/{channel.webhook_token}/",
        headers={SIGNATURE_HEADER: sign(ensure_secret(channel), body)},
        body=body,
        content_type="application/json",
    )


class SandboxProvider(Provider):
    def verify(self, request: WebhookRequest) -> None:
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not given:
            raise WebhookRejected(WebhookRejected.SIGNATURE, "missing X-Sandbox-Signature")
        if not self.channel.sandbox_secret:
            raise WebhookRejected(WebhookRejected.SIGNATURE, "the channel has no signing key")
        expected = sign(self.channel.sandbox_secret, request.body)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected(WebhookRejected.SIGNATURE, "X-Sandbox-Signature does not match")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WebhookRejected(WebhookRejected.MALFORMED, f"body is not JSON: {exc}") from exc
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list) or not events:
            raise WebhookRejected(WebhookRejected.MALFORMED, "expected a non-empty 'events' list")
        if len(events) > MAX_EVENTS:
            raise WebhookRejected(WebhookRejected.MALFORMED, f"more than {MAX_EVENTS} events")
        return [self._event(index, item) for index, item in enumerate(events)]

    def _event(self, index: int, item) -> WebhookEvent:
        def text(key: str, *, required: bool = True, limit: int = 4096) -> str:
            value = item.get(key, "")
            if not isinstance(value, str) or (required and not value.strip()):
                raise WebhookRejected(
                    WebhookRejected.MALFORMED, f"events[{index}].{key} must be a non-empty string"
                )
            if len(value) > limit:
                raise WebhookRejected(
                    WebhookRejected.MALFORMED, f"events[{index}].{key} is longer than {limit}"
                )
            return value

        if not isinstance(item, dict):
            raise WebhookRejected(WebhookRejected.MALFORMED, f"events[{index}] is not an object")
        kind = item.get("type")
        if kind == "message":
            media = item.get("media") or []
            if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
                raise WebhookRejected(
                    WebhookRejected.MALFORMED, f"events[{index}].media must be a list of objects"
                )
            return InboundMessage(
                provider_message_id=text("id", limit=128),
                from_phone=text("from", limit=40),
                body=text("body", required=not media),
                profile_name=text("name", required=False, limit=200),
                media=tuple(
                    InboundMedia(
                        url=str(m.get("url", ""))[:1000],
                        content_type=str(m.get("content_type", ""))[:100],
                    )
                    for m in media
                ),
            )
        if kind == "status":
            status = text("status", limit=32)
            if status not in SANDBOX_STATUSES:
                raise WebhookRejected(
                    WebhookRejected.MALFORMED, f"events[{index}].status {status!r} is unknown"
                )
            return StatusUpdate(
                provider_message_id=text("id", limit=128),
                status=SANDBOX_STATUSES[status],
                provider_status=status,
            )
        raise WebhookRejected(
            WebhookRejected.MALFORMED, f"events[{index}].type must be 'message' or 'status'"
        )

    def send(self, message: Message, *, to_phone: str) -> SendResult:
        # The simulated phone reads outbound messages from the conversation and reports
        # delivered/read through signed status webhooks when it shows them.
        return SendResult(
            provider_message_id=f"sbx-out-{secrets.token_hex(12)}", status=Message.Status.SENT
        )

    def test_connection(self) -> ConnectionCheck:
        return ConnectionCheck(ok=True, detail="The sandbox is built in and always reachable.")

    def fetch_templates(self) -> list[TemplateData]:
        return list(SANDBOX_TEMPLATES)
