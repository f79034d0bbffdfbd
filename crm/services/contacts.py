"""Contact writes."""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from crm.models import Contact, ContactAttribute, ContactTag, LifecycleStage, Segment, Tag
from crm.phones import normalize_phone


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
    if not created:
        # They wrote: the contact list's "recent activity" order follows.
        touch_activity(contact_id=contact.pk)
    return contact, created


# --- the contact form's writes -----------------------------------------------------------------


class DuplicatePhone(ValidationError):
    """Another contact of this business has the phone number; `existing` is that contact."""

    def __init__(self, existing: Contact):
        super().__init__(
            _("Another contact already has this phone number."), code="duplicate_phone"
        )
        self.existing = existing


def normalise_contact_phone(*, raw: str, exclude: Contact | None = None) -> str:
    """E.164 form of a phone typed into a form ("" stays ""), refusing a number another
    contact of the business already has."""
    if not (raw or "").strip():
        return ""
    phone = normalize_phone(raw)
    others = Contact.objects.filter(phone=phone)
    if exclude is not None and exclude.pk:
        others = others.exclude(pk=exclude.pk)
    existing = others.first()
    if existing is not None:
        raise DuplicatePhone(existing)
    return phone


def clean_attribute_values(*, raw: dict[str, str]) -> dict[str, str]:
    """The business's custom attribute values from text, validated by kind; raises a
    ValidationError keyed by attribute key. Empty values are dropped."""
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for definition in ContactAttribute.objects.all():
        text = (raw.get(definition.key) or "").strip()
        if not text:
            continue
        try:
            values[definition.key] = clean_attribute_value(definition=definition, text=text)
        except ValidationError as exc:
            errors[definition.key] = exc.messages
    if errors:
        raise ValidationError(errors)
    return values


def clean_attribute_value(*, definition: ContactAttribute, text: str) -> str:
    kind = definition.kind
    if kind == ContactAttribute.Kind.NUMBER:
        try:
            number = Decimal(text.replace(",", "."))
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise ValidationError(_("“%(value)s” is not a number.") % {"value": text})
        return str(number)
    if kind == ContactAttribute.Kind.DATE:
        try:
            return datetime.date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValidationError(
                _("“%(value)s” is not a date (YYYY-MM-DD).") % {"value": text}
            ) from None
    if kind == ContactAttribute.Kind.CHOICE:
        if text not in (definition.choices or []):
            raise ValidationError(
                _("“%(value)s” is not one of: %(choices)s.")
                % {"value": text, "choices": ", ".join(definition.choices or [])}
            )
        return text
    if len(text) > 500:
        raise ValidationError(_("At most 500 characters."))
    return text


def tags_by_names(*, names: list[str]) -> list[Tag]:
    """The business's tags with these names, created when new (case kept as first typed)."""
    tags = []
    seen = set()
    for raw in names:
        name = raw.strip()[:50]
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        tag = Tag.objects.filter(name__iexact=name).first()
        if tag is None:
            try:
                with transaction.atomic():
                    tag = Tag.objects.create(name=name)
            except IntegrityError:
                tag = Tag.objects.get(name=name)
        tags.append(tag)
    return tags


def set_tags(*, contact: Contact, tags: list[Tag]) -> None:
    wanted = {tag.pk for tag in tags}
    ContactTag.objects.filter(contact=contact).exclude(tag_id__in=wanted).delete()
    have = set(ContactTag.objects.filter(contact=contact).values_list("tag_id", flat=True))
    ContactTag.objects.bulk_create(
        [
            ContactTag(tenant_id=contact.tenant_id, contact=contact, tag_id=pk)
            for pk in wanted - have
        ],
        ignore_conflicts=True,
    )


CONTACT_FIELDS = ("name", "email", "language", "owner", "company", "lifecycle_stage")


def _check_same_tenant(*, owner=None, company=None) -> None:
    from tenants.context import require_current_tenant
    from tenants.models import Membership

    tenant = require_current_tenant()
    if owner is not None and not Membership.objects.filter(tenant=tenant, user=owner).exists():
        raise ValidationError({"owner": _("The owner must be a member of this business.")})
    if company is not None and company.tenant_id != tenant.pk:
        raise ValidationError({"company": _("No such company.")})


@transaction.atomic
def create_contact(
    *,
    phone: str = "",
    name: str = "",
    email: str = "",
    language: str = "",
    owner=None,
    company=None,
    lifecycle_stage: str = "",
    tags: list[Tag] | None = None,
    attributes: dict | None = None,
    source: str = Contact.Source.MANUAL,
) -> Contact:
    """A new contact of the active business. `phone` may be typed freely; it is stored in
    E.164 and must be new to the business (DuplicatePhone otherwise)."""
    _check_same_tenant(owner=owner, company=company)
    phone = normalise_contact_phone(raw=phone)
    try:
        with transaction.atomic():
            contact = Contact.objects.create(
                phone=phone,
                name=name[:200],
                email=email,
                language=language,
                owner=owner,
                company=company,
                lifecycle_stage=lifecycle_stage or LifecycleStage.LEAD,
                attributes=attributes or {},
                source=source,
            )
    except IntegrityError:
        # Someone saved the same number in between.
        raise DuplicatePhone(Contact.objects.get(phone=phone)) from None
    if tags:
        set_tags(contact=contact, tags=tags)
    return contact


@transaction.atomic
def update_contact(
    *,
    contact: Contact,
    phone: str | None = None,
    tags: list[Tag] | None = None,
    attributes: dict | None = None,
    **changes,
) -> Contact:
    """Change a contact's fields (those given); same phone rules as `create_contact`."""
    unknown = set(changes) - set(CONTACT_FIELDS)
    if unknown:
        raise TypeError(f"not contact fields: {sorted(unknown)}")
    _check_same_tenant(owner=changes.get("owner"), company=changes.get("company"))
    if phone is not None:
        contact.phone = normalise_contact_phone(raw=phone, exclude=contact)
    for name, value in changes.items():
        setattr(contact, name, value)
    if attributes is not None:
        contact.attributes = attributes
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError:
        raise DuplicatePhone(
            Contact.objects.exclude(pk=contact.pk).get(phone=contact.phone)
        ) from None
    if tags is not None:
        set_tags(contact=contact, tags=tags)
    return contact


@transaction.atomic
def delete_contact(*, contact: Contact) -> None:
    contact.delete()


def touch_activity(*, contact_id: int, at=None) -> None:
    """Move a contact's last activity forward (never back)."""
    at = at or timezone.now()
    Contact.objects.filter(pk=contact_id, last_activity_at__lt=at).update(last_activity_at=at)


# --- custom attribute definitions (owners and admins) ------------------------------------------


def _clean_choices(kind: str, choices: list[str]) -> list[str]:
    cleaned = []
    for choice in choices:
        choice = choice.strip()[:100]
        if choice and choice not in cleaned:
            cleaned.append(choice)
    if kind == ContactAttribute.Kind.CHOICE and not cleaned:
        raise ValidationError({"choices": _("A choice attribute needs at least one choice.")})
    return cleaned if kind == ContactAttribute.Kind.CHOICE else []


@transaction.atomic
def create_attribute(
    *, label: str, kind: str, key: str = "", choices: list[str] = ()
) -> ContactAttribute:
    key = slugify(key or label).replace("-", "_")[:50]
    if not key:
        raise ValidationError({"key": _("Give the attribute a name with letters or digits.")})
    if ContactAttribute.objects.filter(key=key).exists():
        raise ValidationError(
            {"key": _("An attribute with the key “%(key)s” exists.") % {"key": key}}
        )
    position = (ContactAttribute.objects.aggregate(top=Max("position"))["top"] or 0) + 1
    return ContactAttribute.objects.create(
        key=key,
        label=label.strip()[:100],
        kind=kind,
        choices=_clean_choices(kind, list(choices)),
        position=position,
    )


@transaction.atomic
def update_attribute(
    *, attribute: ContactAttribute, label: str, choices: list[str] = ()
) -> ContactAttribute:
    """The label and (for a choice attribute) the choices; the key and kind stay, so stored
    values keep their meaning."""
    attribute.label = label.strip()[:100]
    attribute.choices = _clean_choices(attribute.kind, list(choices))
    attribute.save(update_fields=["label", "choices"])
    return attribute


@transaction.atomic
def move_attribute(*, attribute: ContactAttribute, direction: int) -> None:
    """One place up (-1) or down (+1) in the form's order."""
    ordered_ = list(
        ContactAttribute.objects.select_for_update().order_by("position", "label", "id")
    )
    index = next(i for i, a in enumerate(ordered_) if a.pk == attribute.pk)
    target = index + (1 if direction > 0 else -1)
    if not 0 <= target < len(ordered_):
        return
    ordered_[index], ordered_[target] = ordered_[target], ordered_[index]
    for position, item in enumerate(ordered_):
        if item.position != position:
            item.position = position
            item.save(update_fields=["position"])


@transaction.atomic
def delete_attribute(*, attribute: ContactAttribute) -> None:
    """The definition goes; values stay in contacts' records (shown nowhere) until edited."""
    attribute.delete()


# --- segments ---------------------------------------------------------------------------------


def _unique_segment_name(name: str, *, exclude: Segment | None = None) -> str:
    name = name.strip()[:100]
    if not name:
        raise ValidationError({"name": _("Give the segment a name.")})
    others = Segment.objects.filter(name=name)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if others.exists():
        raise ValidationError({"name": _("A segment named “%(name)s” exists.") % {"name": name}})
    return name


@transaction.atomic
def save_segment(*, name: str, filters, created_by=None) -> Segment:
    """`filters` is a `crm.selectors.contacts.ContactFilter`."""
    return Segment.objects.create(
        name=_unique_segment_name(name), filters=filters.to_params(), created_by=created_by
    )


@transaction.atomic
def rename_segment(*, segment: Segment, name: str) -> Segment:
    segment.name = _unique_segment_name(name, exclude=segment)
    segment.save(update_fields=["name"])
    return segment


@transaction.atomic
def delete_segment(*, segment: Segment) -> None:
    segment.delete()
