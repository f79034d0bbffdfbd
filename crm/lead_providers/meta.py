"""Meta Lead Ads: the page's `leadgen` webhook and reading the lead from the Graph API.

- Subscription handshake: GET with `hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`.
- Webhook: POST signed with `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body with the
  app secret>`; body `{"object": "page", "entry": [{"id", "time", "changes": [{"field":
  "leadgen", "value": {"leadgen_id", "page_id", "form_id", "created_time", "ad_id"}}]}]}`.
  It carries no answers: those are read with `GET /{version}/{leadgen_id}` and the page
  access token, which answers `{"id", "created_time", "field_data": [{"name", "values"}]}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
from django.conf import settings

from crm.lead_providers import LeadData, LeadFetchError, LeadRejected

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})


def check_handshake(query, expected: str) -> str:
    """The challenge to echo, or LeadRejected(403)."""
    given = query.get("hub.verify_token", "")
    if (
        query.get("hub.mode") == "subscribe"
        and expected
        and hmac.compare_digest(given.encode(), expected.encode())
    ):
        return query.get("hub.challenge", "")
    raise LeadRejected(403, "hub.verify_token does not match")


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(body: bytes, header: str, secret: str) -> None:
    if not header:
        raise LeadRejected(403, "missing X-Hub-Signature-256")
    if not header.startswith("sha256="):
        raise LeadRejected(403, "X-Hub-Signature-256 is not sha256=<hex>")
    if not secret:
        raise LeadRejected(403, "no app secret is set for this lead source")
    if not hmac.compare_digest(header.encode(), signature(body, secret).encode()):
        raise LeadRejected(403, "X-Hub-Signature-256 does not match")


def parse_webhook(body: bytes) -> list[dict]:
    """The leadgen changes: [{leadgen_id, page_id, form_id, ad_id}]."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise LeadRejected(400, "the body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise LeadRejected(400, "the body has no entry list")
    leads = []
    for entry in payload["entry"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes", []), list):
            raise LeadRejected(400, "an entry is not an object with a changes list")
        for change in entry.get("changes", []):
            if not isinstance(change, dict) or change.get("field") != "leadgen":
                continue
            value = change.get("value")
            if not isinstance(value, dict) or not value.get("leadgen_id"):
                raise LeadRejected(400, "a leadgen change has no value.leadgen_id")
            leads.append(
                {
                    "leadgen_id": str(value["leadgen_id"])[:128],
                    "page_id": str(value.get("page_id") or entry.get("id") or ""),
                    "form_id": str(value.get("form_id") or "")[:128],
                    "ad_id": str(value.get("ad_id") or ""),
                }
            )
    return leads


def graph_url() -> str:
    return f"{settings.META_GRAPH_BASE_URL.rstrip('/')}/{settings.META_GRAPH_VERSION}"


def fetch_lead(leadgen_id: str, *, access_token: str) -> LeadData:
    """Read one lead's answers from the Graph API."""
    url = f"{graph_url()}/{leadgen_id}"
    try:
        with httpx.Client(timeout=TIMEOUT) as client:
            response = client.get(
                url,
                headers={"Authorization": f"Bearer {access_token}"},
                params={"fields": "id,created_time,field_data,form_id,ad_id,campaign_id,is_test"},
            )
    except httpx.HTTPError as exc:
        raise LeadFetchError(
            f"Meta did not answer ({exc.__class__.__name__})", transient=True
        ) from exc
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 400:
        error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
        code = error.get("code")
        message = error.get("message") or f"HTTP {response.status_code}"
        transient = (
            response.status_code >= 500 or response.status_code == 429 or (code in TRANSIENT_CODES)
        )
        raise LeadFetchError(f"Meta refused to give the lead: {message}"[:300], transient=transient)
    if not isinstance(data, dict) or not isinstance(data.get("field_data"), list):
        raise LeadFetchError("Meta's answer has no field_data", transient=False)
    answers: dict[str, str] = {}
    for item in data["field_data"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        values = item.get("values") or []
        answers[item["name"][:100]] = ", ".join(str(v) for v in values)[:1000]
    name = answers.get("full_name", "").strip() or " ".join(
        p
        for p in (answers.get("first_name", "").strip(), answers.get("last_name", "").strip())
        if p
    )
    return LeadData(
        external_id=str(data.get("id") or leadgen_id),
        form_id=str(data.get("form_id") or ""),
        campaign=str(data.get("campaign_id") or ""),
        is_test=bool(data.get("is_test")),
        full_name=name[:200],
        phone=(answers.get("phone_number") or answers.get("phone") or "").strip(),
        email=(answers.get("email") or answers.get("work_email") or "").strip(),
        fields=answers,
    )
