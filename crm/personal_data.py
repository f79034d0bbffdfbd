"""Personal data held by the CRM (see privacy/registry.py)."""

from crm import models as crm
from privacy.registry import Erasure, Retention, declare

declare(
    crm.Contact,
    fields=("name", "phone", "email", "attributes"),
    subject_path="",
    erasure=Erasure.DELETE,
    retention=Retention.CONTACT,
    note="The data subject's own record.",
)
declare(
    crm.ContactTag,
    subject_path="contact",
    erasure=Erasure.DELETE,
    retention=Retention.CONTACT,
)
declare(
    crm.Note,
    fields=("body",),
    subject_path="contact",
    erasure=Erasure.DELETE,
    retention=Retention.CONTACT,
    note="Team notes about the contact.",
)
declare(
    crm.Task,
    fields=("title", "description"),
    subject_path="contact",
    erasure=Erasure.DELETE,
    retention=Retention.CONTACT,
)
declare(
    crm.Appointment,
    fields=("title", "location", "link", "notes", "customer_reply"),
    subject_path="contact",
    erasure=Erasure.DELETE,
    retention=Retention.CONTACT,
)
declare(
    crm.Deal,
    fields=("title",),
    subject_path="contact",
    erasure=Erasure.ANONYMISE,
    retention=Retention.BUSINESS,
    note="The business keeps its sales figures; the link to the person and the title go.",
)
declare(
    crm.Lead,
    fields=("fields",),
    subject_path="contact",
    erasure=Erasure.DELETE,
    retention=Retention.CONTACT,
    note="The answers of a lead form as the provider sent them.",
)
declare(
    crm.ContactImport,
    fields=("file", "error_report", "original_name"),
    erasure=Erasure.SCAN_AND_DELETE,
    retention=Retention.EXPORT_FILES,
    expires_by="created_at",
    note="Uploaded CSV files and their error reports hold many people's rows.",
)
declare(
    crm.Company,
    fields=("phone", "address"),
    erasure=Erasure.NOT_CUSTOMER_DATA,
    retention=Retention.BUSINESS,
    note="Organisations, not people.",
)
for model in (
    crm.Tag,
    crm.ContactAttribute,
    crm.Segment,
    crm.Pipeline,
    crm.Stage,
    crm.DealStageChange,
    crm.CalendarFeed,
    crm.LeadSource,
):
    declare(model, erasure=Erasure.NOT_CUSTOMER_DATA, retention=Retention.BUSINESS)
