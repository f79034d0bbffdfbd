"""Team notes on contacts, companies and deals (never sent to the customer)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Note
from crm.services.contacts import touch_activity

MAX_NOTE = 10_000


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": _("Write something first.")})
    if len(body) > MAX_NOTE:
        raise ValidationError({"body": _("A note holds at most 10,000 characters.")})
    return body


@transaction.atomic
def add_note(*, body: str, author, contact=None, company=None, deal=None) -> Note:
    """A note on exactly one of a contact, a company or a deal of the active business."""
    targets = [t for t in (contact, company, deal) if t is not None]
    if len(targets) != 1:
        raise ValueError("a note belongs to exactly one contact, company or deal")
    note = Note.objects.create(
        body=_clean_body(body), author=author, contact=contact, company=company, deal=deal
    )
    contact_id = contact.pk if contact is not None else getattr(deal, "contact_id", None)
    if contact_id:
        touch_activity(contact_id=contact_id, at=note.created_at)
    return note


@transaction.atomic
def edit_note(*, note: Note, body: str) -> Note:
    note.body = _clean_body(body)
    note.edited_at = timezone.now()
    note.save(update_fields=["body", "edited_at"])
    return note


@transaction.atomic
def delete_note(*, note: Note) -> None:
    note.delete()
