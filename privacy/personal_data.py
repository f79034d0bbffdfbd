"""Personal data held by the privacy app itself (see privacy/registry.py)."""

from privacy import models as privacy
from privacy.registry import Erasure, Retention, declare

declare(
    privacy.ConsentEvent,
    fields=("evidence",),
    subject_path="contact",
    erasure=Erasure.KEEP_PROOF,
    retention=Retention.CONTACT,
    note="The ledger is proof of consent: erasure keeps the events without the evidence text.",
)
declare(
    privacy.ConsentState,
    subject_path="contact",
    erasure=Erasure.DELETE,
    retention=Retention.CONTACT,
    note="Derived from the ledger.",
)
declare(privacy.MessagingPolicy, erasure=Erasure.NOT_CUSTOMER_DATA, retention=Retention.BUSINESS)
declare(
    privacy.AccessLogEntry,
    fields=("detail",),
    subject_path="subject",
    erasure=Erasure.ANONYMISE,
    retention=Retention.ACCESS_LOG,
    expires_by="created_at",
    note="Who looked at whose data: kept (unlinked from the person) as the business's record.",
)
declare(
    privacy.DataRequest,
    fields=("subject_phone", "subject_email", "notes", "changes", "export_file"),
    subject_path="contact",
    match_fields=("subject_phone", "subject_email"),
    erasure=Erasure.KEEP_PROOF,
    retention=Retention.BUSINESS,
    note="The record of a data request: after erasure only salted hashes of the identifiers "
    "remain, as proof; export archives are deleted.",
)
declare(
    privacy.PurgeReport,
    erasure=Erasure.NOT_CUSTOMER_DATA,
    retention=Retention.ACCESS_LOG,
    expires_by="started_at",
    note="Counts of what each retention purge removed; no personal data.",
)
declare(
    privacy.SecurityEvent,
    erasure=Erasure.NOT_CUSTOMER_DATA,
    retention=Retention.ACCESS_LOG,
    expires_by="last_seen_at",
    note="Forged webhooks, failed logins, large exports: addresses of the sender, not customers.",
)
declare(
    privacy.Incident,
    erasure=Erasure.NOT_CUSTOMER_DATA,
    retention=Retention.BUSINESS,
    note="The business's breach record; kept until the business is deleted.",
)
declare(
    privacy.BusinessExport,
    fields=("file",),
    erasure=Erasure.ANONYMISE,
    retention=Retention.BUSINESS,
    note="An owner's export of the whole business: the archive holds every customer's data and "
    "is deleted when its link expires or a newer export replaces it; the record of who asked "
    "stays until the business is deleted.",
)
