"""Lead intake: Google Ads lead forms and Meta Lead Ads create or update contacts.

Each lead is stored once per provider lead id (`Lead`, unique per source), so a provider's
retry is a no-op. Processing a lead matches the contact by E.164 phone, then by e-mail,
creates it (source "lead form") or fills its blanks, assigns the source's owner when the
contact has none, records the consent the form captured (source "lead form", the form's
wording as evidence) and, optionally, sends the welcome message through `send_to_contact`:
the consent gate decides, and a refusal is noted on the lead, not treated as an error.

Webhook refusals (bad key or signature: 403; malformed: 400) are counted on the source with
the reason, and logged.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.lead_providers import LeadData, LeadFetchError, LeadRejected, google, meta
from crm.models import ConsentAttestation, Contact, Lead, LeadSource
from crm.phones import InvalidPhoneNumber, normalize_phone

logger = logging.getLogger(__name__)


def find_source(token: str) -> LeadSource | None:
    """The lead source a webhook address names (looked up across tenants, then scoped)."""
    from tenants.context import platform_access

    if not token or len(token) > 64:
        return None
    with platform_access():
        return LeadSource.unscoped.select_related("tenant").filter(token=token).first()


def record_rejection(*, source: LeadSource, reason: str) -> None:
    logger.warning("lead webhook refused for source %s: %s", source.pk, reason)
    LeadSource.objects.filter(pk=source.pk).update(
        rejected_count=F("rejected_count") + 1, last_error=reason[:300]
    )


def _count_received(source: LeadSource) -> None:
    LeadSource.objects.filter(pk=source.pk).update(
        received_count=F("received_count") + 1, last_received_at=timezone.now()
    )


# --- Google Ads -----------------------------------------------------------------------------


def receive_google(*, source: LeadSource, body: bytes) -> tuple[int, dict]:
    """Handle one Google Ads lead webhook: (HTTP status, JSON answer)."""
    try:
        if source.kind != LeadSource.Kind.GOOGLE_ADS:
            raise LeadRejected(404, "this address is not a Google Ads lead source")
        payload = google.parse_body(body)
        google.check_key(payload, source.google_key or "")
        if not source.enabled:
            raise LeadRejected(403, "this lead source is switched off")
        data = google.parse_lead(payload)
    except LeadRejected as exc:
        record_rejection(source=source, reason=exc.reason)
        return exc.status, {"error": exc.reason}
    lead, created = _store_lead(source=source, data=data)
    if not created:
        return 200, {"lead": lead.external_id, "duplicate": True}
    _count_received(source)
    process_lead(lead=lead, data=data)
    lead.refresh_from_db()
    return 200, {"lead": lead.external_id, "status": lead.status}


def _store_lead(*, source: LeadSource, data: LeadData) -> tuple[Lead, bool]:
    existing = Lead.objects.filter(source=source, external_id=data.external_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            lead = Lead.objects.create(
                source=source,
                external_id=data.external_id,
                form_id=data.form_id,
                campaign=data.campaign,
                fields=data.fields,
                is_test=data.is_test,
            )
    except IntegrityError:
        return Lead.objects.get(source=source, external_id=data.external_id), False
    return lead, True


# --- Meta Lead Ads --------------------------------------------------------------------------


def meta_handshake(*, source: LeadSource, query) -> tuple[int, str]:
    try:
        if source.kind != LeadSource.Kind.META_LEAD_ADS:
            raise LeadRejected(404, "this address is not a Meta Lead Ads source")
        return 200, meta.check_handshake(query, source.meta_verify_token)
    except LeadRejected as exc:
        record_rejection(source=source, reason=exc.reason)
        return exc.status, exc.reason


def receive_meta(*, source: LeadSource, body: bytes, signature: str) -> tuple[int, dict]:
    """Handle one signed leadgen webhook: store each new lead, fetch it after commit."""
    from crm.tasks import fetch_meta_lead

    try:
        if source.kind != LeadSource.Kind.META_LEAD_ADS:
            raise LeadRejected(404, "this address is not a Meta Lead Ads source")
        meta.check_signature(body, signature, source.meta_app_secret or "")
        if not source.enabled:
            raise LeadRejected(403, "this lead source is switched off")
        changes = meta.parse_webhook(body)
    except LeadRejected as exc:
        record_rejection(source=source, reason=exc.reason)
        return exc.status, {"error": exc.reason}
    accepted = duplicates = ignored = 0
    for change in changes:
        if source.meta_page_id and change["page_id"] and change["page_id"] != source.meta_page_id:
            ignored += 1
            continue
        data = LeadData(external_id=change["leadgen_id"], form_id=change["form_id"])
        with transaction.atomic():
            lead, created = _store_lead(source=source, data=data)
            if created:
                tenant_id, lead_id = lead.tenant_id, lead.pk
                transaction.on_commit(
                    lambda t=tenant_id, i=lead_id: fetch_meta_lead.delay(t, i), robust=True
                )
        if created:
            accepted += 1
            _count_received(source)
        else:
            duplicates += 1
    return 200, {"accepted": accepted, "duplicates": duplicates, "ignored": ignored}


def fetch_and_process_meta_lead(*, lead_id: int) -> str:
    """Read a stored Meta lead from the Graph API and process it.

    Raises LeadFetchError for a transient failure (the task retries); a permanent one marks
    the lead failed with the reason.
    """
    lead = Lead.objects.select_related("source").filter(pk=lead_id).first()
    if lead is None or lead.status != Lead.Status.RECEIVED:
        return lead.status if lead else "missing"
    source = lead.source
    try:
        data = meta.fetch_lead(lead.external_id, access_token=source.meta_access_token or "")
    except LeadFetchError as exc:
        if exc.transient:
            raise
        fail_lead(lead=lead, reason=exc.reason)
        return Lead.Status.FAILED
    data.external_id = lead.external_id
    data.form_id = data.form_id or lead.form_id
    process_lead(lead=lead, data=data)
    return Lead.Status.PROCESSED


def fail_lead(*, lead: Lead, reason: str) -> None:
    Lead.objects.filter(pk=lead.pk).exclude(status=Lead.Status.PROCESSED).update(
        status=Lead.Status.FAILED, error=reason[:300]
    )
    LeadSource.objects.filter(pk=lead.source_id).update(last_error=reason[:300])


# --- Processing -----------------------------------------------------------------------------


def _purposes(consent: str) -> list[str]:
    from privacy.models import Purpose

    if consent == ConsentAttestation.MARKETING:
        return [Purpose.TRANSACTIONAL, Purpose.MARKETING]
    if consent == ConsentAttestation.TRANSACTIONAL:
        return [Purpose.TRANSACTIONAL]
    return []


def consent_evidence(*, source: LeadSource, lead: Lead) -> str:
    return _("%(kind)s “%(name)s”, form %(form)s, lead %(lead)s: %(wording)s") % {
        "kind": source.get_kind_display(),
        "name": source.name,
        "form": lead.form_id or "-",
        "lead": lead.external_id,
        "wording": source.consent_wording or _("(no wording recorded)"),
    }


def _match_contact(*, phone: str, email: str, typed_email: str = "") -> Contact | None:
    if phone:
        contact = Contact.objects.filter(phone=phone).first()
        if contact is not None:
            return contact
    if email:
        # Exact matches on the (tenant, email) index: the address as stored by us (lower
        # case) or as the person typed it.
        addresses = {email, typed_email.strip()} - {""}
        for contact in Contact.objects.filter(email__in=addresses).order_by("id"):
            if not contact.phone or not phone:
                return contact
    return None


def process_lead(*, lead: Lead, data: LeadData) -> Lead:
    """Create or update the lead's contact, record consent, send the welcome message."""
    from channels_app.models import Medium
    from privacy.models import ConsentAction, ConsentSource
    from privacy.services import record_consent

    source = lead.source
    phone = ""
    if data.phone:
        try:
            phone = normalize_phone(data.phone)
        except InvalidPhoneNumber as exc:
            if not data.email:
                fail_lead(lead=lead, reason=exc.messages[0])
                return lead
    email = data.email.strip().lower()[:254] if data.email else ""
    if not phone and not email:
        fail_lead(lead=lead, reason=_("The form gave no phone number and no e-mail."))
        return lead
    with transaction.atomic():
        lead = Lead.objects.select_for_update().select_related("source").get(pk=lead.pk)
        if lead.status == Lead.Status.PROCESSED:
            return lead
        contact = _match_contact(phone=phone, email=email, typed_email=data.email)
        if contact is None:
            try:
                with transaction.atomic():
                    contact = Contact.objects.create(
                        name=data.full_name,
                        phone=phone,
                        email=email,
                        source=Contact.Source.LEAD_FORM,
                        owner=source.assign_owner,
                    )
            except IntegrityError:  # the same phone arrived at the same moment
                contact = Contact.objects.get(phone=phone)
        changed = []
        for name, value in (("name", data.full_name), ("phone", phone), ("email", email)):
            if value and not getattr(contact, name):
                setattr(contact, name, value)
                changed.append(name)
        if contact.owner_id is None and source.assign_owner_id:
            contact.owner_id = source.assign_owner_id
            changed.append("owner")
        if changed:
            contact.save(update_fields=[*changed, "updated_at"])
        purposes = _purposes(source.consent_purpose)
        if purposes:
            record_consent(
                contact=contact,
                media=[Medium.WHATSAPP, Medium.SMS],
                purposes=purposes,
                action=ConsentAction.GRANTED,
                source=ConsentSource.LEAD_FORM,
                evidence=consent_evidence(source=source, lead=lead),
            )
        lead.contact = contact
        lead.status = Lead.Status.PROCESSED
        lead.error = ""
        lead.fields = data.fields or lead.fields
        lead.form_id = data.form_id or lead.form_id
        lead.campaign = data.campaign or lead.campaign
        lead.is_test = lead.is_test or data.is_test
        lead.welcome_note = _send_welcome(lead=lead, source=source, contact=contact)
        lead.save(
            update_fields=[
                "contact", "status", "error", "fields", "form_id", "campaign", "is_test",
                "welcome_note",
            ]
        )  # fmt: skip
    return lead


def _send_welcome(*, lead: Lead, source: LeadSource, contact: Contact) -> str:
    from channels_app import templating
    from channels_app.models import Message
    from channels_app.services.sending import InvalidMessage, SendRefused, send_to_contact
    from privacy.models import Purpose

    channel = source.welcome_channel
    if channel is None or not (source.welcome_template_id or source.welcome_text.strip()):
        return ""
    if lead.is_test:
        return _("Test lead: no welcome message sent.")
    first_name = (contact.name or "").split(" ")[0]
    kwargs = {}
    if source.welcome_template_id:
        template = source.welcome_template
        kwargs["template"] = template
        kwargs["variables"] = {
            name: first_name or "-" for name in templating.variable_names(template)
        }
    else:
        kwargs["body"] = source.welcome_text.strip().replace("{name}", first_name)
    try:
        message = send_to_contact(
            contact=contact,
            channel=channel,
            purpose=Purpose.TRANSACTIONAL,
            sender_kind=Message.SenderKind.AUTOMATION,
            idempotency_key=f"lead-welcome:{lead.pk}",
            **kwargs,
        )
    except SendRefused as exc:
        return (_("Welcome message not sent: %(why)s") % {"why": exc.detail})[:300]
    except InvalidMessage as exc:
        return (_("Welcome message not sent: %(why)s") % {"why": exc.detail})[:300]
    return (_("Welcome message queued (#%(id)d).") % {"id": message.pk})[:300]


# --- Owners' page ---------------------------------------------------------------------------


def webhook_path(source: LeadSource) -> str:
    from django.urls import reverse

    return reverse("crm_public:lead_hook", kwargs={"token": source.token})


@transaction.atomic
def set_enabled(*, source: LeadSource, enabled: bool) -> LeadSource:
    source.enabled = enabled
    source.save(update_fields=["enabled"])
    return source
