"""Merging two contacts of one business into one (duplicates from imports, a second phone).

Everything that pointed at the other contact follows the survivor: conversations (messages
move into the survivor's conversation on the same channel, the one-per-channel rule holds),
deals, tasks, notes, appointments, leads, consent events (the consent state is re-derived from
the merged ledger by `privacy.services`), access-log entries and whatever later apps link to a
contact. Tags are united, custom attributes merged, the other contact is deleted, all in one
transaction.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext as _

from crm.models import Contact, ContactTag
from tenants.context import require_current_tenant

# Fields a person chooses between ("primary" or "other"); the default keeps the primary's
# value and fills its blanks from the other.
MERGE_FIELDS = ("name", "phone", "email", "language", "owner", "company", "lifecycle_stage")
KEEP_PRIMARY, TAKE_OTHER = "primary", "other"

# Relations moved by hand below; every other link to a contact is moved generically.
_SPECIAL = {"conversations", "contact_tags", "consent_states"}


def merged_values(*, primary: Contact, other: Contact, choices: dict[str, str]) -> dict:
    """The survivor's field values: per field the chosen side, else the primary's unless it
    is blank."""
    values = {}
    for name in MERGE_FIELDS:
        attname = Contact._meta.get_field(name).attname
        mine, theirs = getattr(primary, attname), getattr(other, attname)
        choice = choices.get(name)
        if choice == TAKE_OTHER or (choice != KEEP_PRIMARY and mine in ("", None)):
            values[attname] = theirs
        else:
            values[attname] = mine
    attributes = dict(other.attributes or {})
    if choices.get("attributes") == TAKE_OTHER:
        attributes.update(
            {
                k: v
                for k, v in (primary.attributes or {}).items()
                if k not in attributes or attributes[k] in ("", None)
            }
        )
    else:
        attributes.update(
            {k: v for k, v in (primary.attributes or {}).items() if v not in ("", None)}
        )
    values["attributes"] = attributes
    return values


def _move_rows(manager, field_name: str, source, target) -> None:
    """Point `field_name` of every row at `target`; where a unique rule refuses (the target
    already has such a row), the source's duplicate row goes."""
    rows = manager.filter(**{field_name: source})
    try:
        with transaction.atomic():
            rows.update(**{field_name: target})
        return
    except IntegrityError:
        pass
    for pk in list(rows.values_list("pk", flat=True)):
        try:
            with transaction.atomic():
                manager.filter(pk=pk).update(**{field_name: target})
        except IntegrityError:
            manager.filter(pk=pk).delete()


def _links_to(model) -> list:
    return [
        field
        for field in model._meta.get_fields(include_hidden=True)
        if field.auto_created
        and not field.concrete
        and (field.one_to_many or field.one_to_one)
        and isinstance(field.field, models.ForeignKey)
    ]


def _merge_conversations(*, primary: Contact, other: Contact) -> None:
    from channels_app.models import Conversation

    mine = {
        c.channel_id: c for c in Conversation.objects.select_for_update().filter(contact=primary)
    }
    for theirs in Conversation.objects.select_for_update().filter(contact=other):
        survivor = mine.get(theirs.channel_id)
        if survivor is None:
            Conversation.objects.filter(pk=theirs.pk).update(contact=primary)
            continue
        for relation in _links_to(Conversation):
            _move_rows(
                relation.related_model._default_manager, relation.field.name, theirs, survivor
            )
        if theirs.last_message_at > survivor.last_message_at:
            survivor.last_message_at = theirs.last_message_at
            survivor.last_message_preview = theirs.last_message_preview
            survivor.status = theirs.status
        if theirs.last_inbound_at and (
            survivor.last_inbound_at is None or theirs.last_inbound_at > survivor.last_inbound_at
        ):
            survivor.last_inbound_at = theirs.last_inbound_at
        survivor.unread_count += theirs.unread_count
        survivor.created_at = min(survivor.created_at, theirs.created_at)
        survivor.save()
        theirs.delete()


@transaction.atomic
def merge_contacts(
    *, primary: Contact, other: Contact, choices: dict[str, str] | None = None, merged_by=None
) -> Contact:
    """Fold `other` into `primary` and delete `other`; returns the survivor."""
    from privacy.models import ConsentState
    from privacy.services import rederive_consent_states

    tenant = require_current_tenant()
    if primary.pk == other.pk:
        raise ValidationError(_("A contact cannot be merged with itself."))
    # Lock both (in id order, so two merges of the same pair cannot deadlock).
    locked = {
        c.pk: c
        for c in Contact.objects.select_for_update()
        .filter(pk__in=[primary.pk, other.pk])
        .order_by("pk")
    }
    if len(locked) != 2 or any(c.tenant_id != tenant.pk for c in locked.values()):
        raise ValidationError(_("Both contacts must belong to this business."))
    primary, other = locked[primary.pk], locked[other.pk]
    values = merged_values(primary=primary, other=other, choices=choices or {})

    _merge_conversations(primary=primary, other=other)
    their_tags = list(ContactTag.objects.filter(contact=other).values_list("tag_id", flat=True))
    ContactTag.objects.bulk_create(
        [
            ContactTag(tenant_id=primary.tenant_id, contact=primary, tag_id=tag_id)
            for tag_id in their_tags
        ],
        ignore_conflicts=True,
    )
    ConsentState.objects.filter(contact=other).delete()
    for relation in _links_to(Contact):
        if relation.name in _SPECIAL or relation.get_accessor_name() in _SPECIAL:
            continue
        _move_rows(relation.related_model._default_manager, relation.field.name, other, primary)
    rederive_consent_states(contact=primary)

    other.delete()
    for attname, value in values.items():
        setattr(primary, attname, value)
    primary.created_at = min(primary.created_at, other.created_at)
    primary.last_activity_at = max(primary.last_activity_at, other.last_activity_at)
    if other.processing_restricted_at and not primary.processing_restricted_at:
        # A restriction the person asked for survives the merge.
        primary.processing_restricted_at = other.processing_restricted_at
    primary.save()
    if merged_by is not None:
        # The timeline keeps a trace of what became of the other record.
        from crm.services.notes import add_note

        gone = ", ".join(v for v in (other.name, other.phone, other.email) if v) or str(other.pk)
        add_note(
            body=_("Merged with another contact record (%(who)s).") % {"who": gone},
            author=merged_by,
            contact=primary,
        )
    return primary
