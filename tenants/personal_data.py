"""Personal data held by the tenants app (see privacy/registry.py)."""

from privacy.registry import Erasure, Retention, declare
from tenants.models import ApiKey, Invitation

declare(
    Invitation,
    fields=("email",),
    erasure=Erasure.NOT_CUSTOMER_DATA,
    retention=Retention.BUSINESS,
    note="Invited team members, not customers; removed with the tenant.",
)
declare(
    ApiKey,
    erasure=Erasure.NOT_CUSTOMER_DATA,
    retention=Retention.BUSINESS,
    note="Only a hash of each key is stored.",
)
