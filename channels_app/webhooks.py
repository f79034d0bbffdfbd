"""Provider webhooks: /hooks/<provider>/<channel token>/….

No session, login or CSRF token: a provider's signature is the only credential, checked by
the channel's adapter. The unguessable token in the URL names the channel (looked up across
tenants, the one deliberate crossing here, through a short-lived per-process hint, see
`channels_app.routing`), then everything runs in the channel's tenant. That tenant stays
active until the tenant middleware clears it after the response: resetting it here as well
would cost one more write to the database connection per webhook.
Answers are what the providers expect: Twilio an empty TwiML document, Meta a quick 200.
Refusals are JSON `{"error": "<reason>"}` with 403 (signature), 400 (malformed), 404
(unknown address), 405 (method) or 413 (too large).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from channels_app.models import Channel
from channels_app.providers.base import WebhookRejected, WebhookRequest, provider_for
from channels_app.routing import activate_channel
from channels_app.services.inbound import WebhookOutcome, receive_webhook, record_rejection
from privacy.access_log import client_ip

logger = logging.getLogger(__name__)

TWILIO_KINDS = frozenset({Channel.Kind.TWILIO_WHATSAPP, Channel.Kind.TWILIO_SMS})
META_KINDS = frozenset({Channel.Kind.META_WHATSAPP})
SANDBOX_KINDS = frozenset({Channel.Kind.SANDBOX})

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _error(reason: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": reason, **extra}, status=status)


def _too_large(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return length > settings.WEBHOOK_MAX_BODY_BYTES


def _receive(request, token: str, *, kinds: frozenset[str], methods: tuple[str, ...], answer):
    if request.method not in methods:
        response = _error(f"method {request.method} is not allowed", 405)
        response["Allow"] = ", ".join(methods)
        return response
    # Activates the channel's tenant for the rest of the request (see the module docstring).
    channel = activate_channel(token)
    if channel is None or channel.kind not in kinds:
        # A valid token under the wrong provider is still a secret: log only its start.
        logger.warning(
            "webhook for an unknown address %s", request.path.replace(token, token[:6] + "…")
        )
        return _error("unknown webhook address", 404)
    if channel.tenant.is_locked:
        # The business is scheduled for deletion: nothing more of its customers is stored.
        return _error("this business is being deleted", 410)
    if request.method == "GET":
        return _handshake(request, channel)
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    if _too_large(request) or len(request.body) > limit:
        reason = f"the body is larger than {limit} bytes"
        record_rejection(
            channel=channel, kind=WebhookRejected.MALFORMED, reason=reason,
            ip_address=client_ip(request),
        )  # fmt: skip
        return _error(reason, 413)
    try:
        outcome = receive_webhook(channel=channel, request=WebhookRequest.from_django(request))
    except WebhookRejected as exc:
        return _error(exc.reason, exc.status_code)
    if not outcome.ok:
        return _error(outcome.error, 400, accepted=outcome.accepted, duplicates=outcome.duplicates)
    return answer(outcome)


def _handshake(request, channel: Channel):
    """Meta's subscription check: echo hub.challenge when hub.verify_token matches."""
    response = provider_for(channel).handshake(WebhookRequest.from_django(request))
    if response is None:
        reason = "a GET must be the hub.challenge verification"
        record_rejection(
            channel=channel, kind=WebhookRejected.MALFORMED, reason=reason,
            ip_address=client_ip(request),
        )  # fmt: skip
        return _error(reason, 400)
    if response.status_code == 403:
        reason = "hub.verify_token does not match"
        record_rejection(
            channel=channel, kind=WebhookRejected.SIGNATURE, reason=reason,
            ip_address=client_ip(request),
        )  # fmt: skip
        return _error(reason, 403)
    return response


def _twiml(outcome: WebhookOutcome) -> HttpResponse:
    # An empty TwiML document: Twilio sends no automatic reply and retries nothing.
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


def _json_ok(outcome: WebhookOutcome) -> JsonResponse:
    return JsonResponse({"accepted": outcome.accepted, "duplicates": outcome.duplicates})


def _hook(*, kinds, methods=("POST",), answer=_json_ok):
    @csrf_exempt
    @transaction.non_atomic_requests  # health counters are written although a webhook is refused
    def view(request, token: str):
        return _receive(request, token, kinds=kinds, methods=methods, answer=answer)

    return view


twilio_inbound = _hook(kinds=TWILIO_KINDS, answer=_twiml)
twilio_status = _hook(kinds=TWILIO_KINDS, answer=_twiml)
meta = _hook(kinds=META_KINDS, methods=("GET", "POST"))
sandbox = _hook(kinds=SANDBOX_KINDS)
