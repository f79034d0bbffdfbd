"""Contact writes."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from crm.models import Contact


def find_or_create_contact_by_phone(
    *, phone: str, name: str = "", source: str = Contact.Source.INBOUND
) -> tuple[Contact, bool]:
    """The active business's contact with this E.164 phone, created if new.

    Safe under concurrent webhooks for the same new number: the unique constraint decides and
    the loser reads the winner's row. A provider-supplied profile name fills an empty name only.
    """
    contact = Contact.objects.filter(phone=phone).first()
    created = False
    if contact is None:
        try:
            with transaction.atomic():
                contact = Contact.objects.create(phone=phone, name=name[:200], source=source)
                created = True
        except IntegrityError:
            contact = Contact.objects.get(phone=phone)
    if not created and name and not contact.name:
        contact.name = name[:200]
        contact.save(update_fields=["name", "updated_at"])
    return contact, created
