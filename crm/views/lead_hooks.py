"""Lead webhooks: /hooks/leads/<source token>/, outside any login or tenant URL.

Google Ads posts JSON with the advertiser's key; Meta posts a signed `leadgen` notification
(and a GET for the subscription handshake). The unguessable token names the lead source
(looked up across tenants, the one deliberate crossing), then everything runs in its tenant.
Refusals are JSON `{"error": "<reason>"}`: 403 (key or signature), 400 (malformed), 404
(unknown address), 405 (method), 413 (too large); each is counted on the source.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from crm.models import LeadSource
from crm.services import leads as services
from tenants.context import tenant_context

logger = logging.getLogger(__name__)


@csrf_exempt
@transaction.non_atomic_requests  # counters are written although a webhook is refused
def lead_hook(request, token: str):
    source = services.find_source(token)
    if source is None:
        logger.warning("lead webhook for an unknown address %s…", token[:6])
        return JsonResponse({"error": "unknown webhook address"}, status=404)
    methods = ("GET", "POST") if source.kind == LeadSource.Kind.META_LEAD_ADS else ("POST",)
    if request.method not in methods:
        response = JsonResponse({"error": f"method {request.method} is not allowed"}, status=405)
        response["Allow"] = ", ".join(methods)
        return response
    with tenant_context(source.tenant):
        if request.method == "GET":
            status, text = services.meta_handshake(source=source, query=request.GET)
            return HttpResponse(text, status=status, content_type="text/plain")
        limit = getattr(settings, "WEBHOOK_MAX_BODY_BYTES", 1_048_576)
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit or len(request.body) > limit:
            reason = f"the body is larger than {limit} bytes"
            services.record_rejection(source=source, reason=reason)
            return JsonResponse({"error": reason}, status=413)
        if source.kind == LeadSource.Kind.GOOGLE_ADS:
            status, answer = services.receive_google(source=source, body=request.body)
        else:
            status, answer = services.receive_meta(
                source=source,
                body=request.body,
                signature=request.headers.get("X-Hub-Signature-256", ""),
            )
    return JsonResponse(answer, status=status)
