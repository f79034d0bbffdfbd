"""Lead form providers' wire formats (Meta Lead Ads, Google Ads lead forms).

Each module turns what its provider sends into `LeadData` and knows how the provider proves a
webhook is genuine; `crm.services.leads` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class LeadRejected(Exception):
    """A lead webhook refused: `status` 403 (key or signature) or 400 (malformed)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LeadFetchError(Exception):
    """Reading a lead from the provider failed; `transient` ones are retried."""

    def __init__(self, reason: str, *, transient: bool):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


@dataclass
class LeadData:
    external_id: str
    form_id: str = ""
    campaign: str = ""
    is_test: bool = False
    full_name: str = ""
    phone: str = ""
    email: str = ""
    # Every answer as the provider named it (kept on the lead).
    fields: dict = field(default_factory=dict)
