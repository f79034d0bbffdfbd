"""Lead webhooks as Google and Meta send them."""

from __future__ import annotations

import hashlib
import hmac
import json

from django.urls import reverse


def hook_url(source) -> str:
    return reverse("crm_public:lead_hook", kwargs={"token": source.token})


def google_payload(*, key="google-lead-form-key", lead_id="TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   phone="+14155550123", email="ana@example.com", name="Ana Lima",
                   is_test=False) -> dict:  # fmt: skip
    """The body Google Ads posts for a lead form submission (api_version 1.0)."""
    columns = []
    if name:
        columns.append({"column_name": "Full Name", "string_value": name, "column_id": "FULL_NAME"})
    if phone:
        columns.append(
            {"column_name": "User Phone", "string_value": phone, "column_id": "PHONE_NUMBER"}
        )
    if email:
        columns.append({"column_name": "User Email", "string_value": email, "column_id": "EMAIL"})
    return {
        "lead_id": lead_id,
        "user_column_data": columns,
        "api_version": "1.0",
        "form_id": 40000000000,
        "campaign_id": 12345678901,
        "google_key": key,
        "is_test": is_test,
        "gcl_id": "gclid-abc",
        "adgroup_id": 20000000000,
        "creative_id": 30000000000,
    }


def post_google(client, source, payload):
    body = json.dumps(payload) if not isinstance(payload, bytes | str) else payload
    return client.post(hook_url(source), body, content_type="application/json")


def meta_leadgen_body(*leadgen_ids, page_id="1122334455", form_id="998877") -> bytes:
    return json.dumps(
        {
            "object": "page",
            "entry": [
                {
                    "id": page_id,
                    "time": 1733040000,
                    "changes": [
                        {
                            "field": "leadgen",
                            "value": {
                                "ad_id": "444",
                                "form_id": form_id,
                                "leadgen_id": leadgen_id,
                                "created_time": 1733040000,
                                "page_id": page_id,
                                "adgroup_id": "555",
                            },
                        }
                        for leadgen_id in leadgen_ids
                    ],
                }
            ],
        }
    ).encode()


def meta_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_meta(client, source, body: bytes, *, secret: str | None = None, signature=None):
    headers = {}
    if signature is None and secret is not None:
        signature = meta_signature(body, secret)
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return client.post(hook_url(source), body, content_type="application/json", headers=headers)
