"""Google Ads lead form extensions: the webhook Google posts for each submitted form.

Google sends JSON with `lead_id`, `form_id`, `campaign_id`, `google_key` (the key the
advertiser typed into the form's webhook settings), `is_test` and `user_column_data`: a list
of `{column_id, column_name, string_value}` with column ids such as FULL_NAME, FIRST_NAME,
LAST_NAME, EMAIL, PHONE_NUMBER.
"""

from __future__ import annotations

import hmac
import json

from crm.lead_providers import LeadData, LeadRejected

MAX_COLUMNS = 200


def check_key(payload: dict, expected: str) -> None:
    given = payload.get("google_key")
    if not isinstance(given, str) or not given:
        raise LeadRejected(403, "google_key is missing")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise LeadRejected(403, "google_key does not match")


def parse_body(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise LeadRejected(400, "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise LeadRejected(400, "the body is not a JSON object")
    return payload


def parse_lead(payload: dict) -> LeadData:
    lead_id = payload.get("lead_id")
    if not isinstance(lead_id, str | int) or not str(lead_id).strip():
        raise LeadRejected(400, "lead_id is missing")
    columns = payload.get("user_column_data")
    if not isinstance(columns, list) or not columns:
        raise LeadRejected(400, "user_column_data must be a non-empty list")
    if len(columns) > MAX_COLUMNS:
        raise LeadRejected(400, "user_column_data has too many columns")
    answers: dict[str, str] = {}
    for column in columns:
        if not isinstance(column, dict):
            raise LeadRejected(400, "each user_column_data entry must be an object")
        column_id = column.get("column_id") or column.get("column_name")
        value = column.get("string_value", "")
        if not isinstance(column_id, str) or not isinstance(value, str):
            raise LeadRejected(400, "user_column_data entries need column_id and string_value")
        answers[column_id[:100]] = value[:1000]
    name = answers.get("FULL_NAME", "").strip() or " ".join(
        part
        for part in (answers.get("FIRST_NAME", "").strip(), answers.get("LAST_NAME", "").strip())
        if part
    )
    return LeadData(
        external_id=str(lead_id).strip()[:128],
        form_id=str(payload.get("form_id") or "")[:128],
        campaign=str(payload.get("campaign_id") or "")[:200],
        is_test=payload.get("is_test") is True,
        full_name=name[:200],
        phone=answers.get("PHONE_NUMBER", "").strip(),
        email=answers.get("EMAIL", "").strip() or answers.get("WORK_EMAIL", "").strip(),
        fields=answers,
    )
