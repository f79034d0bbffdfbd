"""Demo data for lead intake: one Google Ads lead form source and a couple of its leads.

The leads arrive through the real webhook service (`receive_google`), as Google would post
them, so contacts, consent events and the owner assignment are exactly what intake makes.
Idempotent: the source is found by name and a lead id already received is a no-op.
"""

from __future__ import annotations

import json

from crm.models import ConsentAttestation, LeadSource
from crm.services.leads import receive_google

DEMO_SOURCE = "Google Ads: free check-up form"
DEMO_KEY = "demo-google-lead-key"
DEMO_LEADS = [
    ("demo-lead-0001", "Maya Fischer", "+447700900311", "maya.fischer@example.com"),
    ("demo-lead-0002", "Tomás Ruiz", "+34600900312", "tomas.ruiz@example.com"),
]


def seed_leads(*, tenant, owner=None) -> LeadSource:
    source = LeadSource.objects.filter(name=DEMO_SOURCE).first()
    if source is None:
        source = LeadSource.objects.create(
            kind=LeadSource.Kind.GOOGLE_ADS,
            name=DEMO_SOURCE,
            google_key=DEMO_KEY,
            consent_purpose=ConsentAttestation.TRANSACTIONAL,
            consent_wording="I agree that the clinic contacts me about my check-up by WhatsApp "
            "or SMS.",
            assign_owner=owner,
        )
    for lead_id, name, phone, email in DEMO_LEADS:
        payload = {
            "lead_id": lead_id,
            "api_version": "1.0",
            "form_id": 40000000001,
            "campaign_id": 12345678901,
            "google_key": source.google_key,
            "is_test": False,
            "user_column_data": [
                {"column_name": "Full Name", "string_value": name, "column_id": "FULL_NAME"},
                {"column_name": "User Phone", "string_value": phone, "column_id": "PHONE_NUMBER"},
                {"column_name": "User Email", "string_value": email, "column_id": "EMAIL"},
            ],
        }
        receive_google(source=source, body=json.dumps(payload).encode())
    return source
