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
