"""The contact list (search, filters, sort, keyset pages, saved segments), the contact form,
custom attribute definitions, the CSV export and merging.

Agents work contacts; owners and admins manage attribute definitions, merge and export (an
export takes many people's data out of the product, a merge cannot be undone).
"""

from __future__ import annotations

import csv

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.forms import (
    AttributeForm,
    ContactFilterForm,
    ContactForm,
    SegmentForm,
    attach_errors,
)
from crm.models import Contact, ContactAttribute, Segment, Tag
from crm.selectors import contacts as selectors
from crm.services import contacts as services
from crm.services import merge as merge_services
from crm.services.merge import MERGE_FIELDS
from privacy.access_log import client_ip, record_access
from privacy.models import AccessLogEntry
from privacy.security import note_export
from salesos.csv_safety import safe_cell
from tenants.context import tenant_context
from tenants.models import Role
from tenants.permissions import tenant_view

EXPORT_BATCH = 2000


def _list_url(request, filters: selectors.ContactFilter, **extra) -> str:
    url = reverse("crm:contacts", kwargs={"tenant_slug": request.tenant.slug})
    items = filters.query_items() + [(k, v) for k, v in extra.items() if v]
    return f"{url}?{urlencode(items)}" if items else url


@require_GET
@tenant_view(Role.AGENT)
def contact_list(request):
    filters = selectors.ContactFilter.from_params(request.GET)
    page = selectors.contact_page(filters, cursor=request.GET.get("after", ""))
    segment = None
    if request.GET.get("segment", "").isdigit():
        segment = Segment.objects.filter(pk=int(request.GET["segment"])).first()
    context = {
        "filters": filters,
        "filter_form": ContactFilterForm(tenant=request.tenant),
        "selected_tags": [str(pk) for pk in filters.tags],
        "page": page,
        "next_url": (
            _list_url(request, filters, after=page.next_cursor, segment=request.GET.get("segment"))
            if page.next_cursor
            else None
        ),
        "first_url": _list_url(request, filters, segment=request.GET.get("segment")),
        # Each row links to contacts/<id>/: one reverse() for the page, not one per row.
        "contacts_url": reverse("crm:contacts", kwargs={"tenant_slug": request.tenant.slug}),
        "query": urlencode(filters.query_items()),
        "segments": selectors.segments(),
        "segment": segment,
        "segment_form": SegmentForm(),
        "sort_labels": selectors.SORT_LABELS,
        "is_tenant_admin": request.membership.has_role(Role.ADMIN),
    }
    with timezone.override(request.tenant.zone):
        return render(request, "crm/contacts/list.html", context)


def _save_contact_form(request, form: ContactForm, contact: Contact | None):
    """Validate and save; returns the contact, or None with the errors on the form."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        attributes = services.clean_attribute_values(raw=form.raw_attributes())
    except ValidationError as exc:
        for key, errors in exc.error_dict.items():
            form.add_error(f"attr_{key}", errors)
        return None
    if contact is not None:
        # Values of attributes whose definition was deleted stay as they were.
        keep = {
            k: v for k, v in (contact.attributes or {}).items() if k not in form.raw_attributes()
        }
        attributes = {**keep, **attributes}
    tags = list(Tag.objects.filter(pk__in=data["tags"])) + services.tags_by_names(
        names=form.new_tag_names()
    )
    fields = {
        "name": data["name"],
        "email": data["email"],
        "language": data["language"],
        "owner": data["owner"],
        "company": data["company"],
        "lifecycle_stage": data["lifecycle_stage"],
    }
    try:
        if contact is None:
            return services.create_contact(
                phone=data["phone"], tags=tags, attributes=attributes, **fields
            )
        return services.update_contact(
            contact=contact, phone=data["phone"], tags=tags, attributes=attributes, **fields
        )
    except services.DuplicatePhone as exc:
        url = reverse(
            "crm:contact",
            kwargs={"tenant_slug": request.tenant.slug, "contact_id": exc.existing.pk},
        )
        form.add_error(
            "phone",
            format_html(
                '{} <a href="{}">{}</a>',
                _("Another contact already has this phone number:"),
                url,
                exc.existing.display_name,
            ),
        )
    except ValidationError as exc:
        if exc.code in ("empty", "too_long", "unparsable", "impossible"):
            form.add_error("phone", exc)
        else:
            attach_errors(form, exc)
    return None


@tenant_view(Role.AGENT)
def contact_new(request):
    form = ContactForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST":
        contact = _save_contact_form(request, form, None)
        if contact is not None:
            messages.success(request, _("Contact saved."))
            return redirect("crm:contact", tenant_slug=request.tenant.slug, contact_id=contact.pk)
    return render(
        request,
        "crm/contacts/form.html",
        {"form": form, "contact": None},
        status=400 if request.method == "POST" else 200,
    )


@tenant_view(Role.AGENT)
def contact_edit(request, contact_id: int):
    contact = get_object_or_404(Contact, pk=contact_id)
    if request.method == "POST":
        form = ContactForm(request.POST, tenant=request.tenant)
        saved = _save_contact_form(request, form, contact)
        if saved is not None:
            messages.success(request, _("Contact saved."))
            return redirect("crm:contact", tenant_slug=request.tenant.slug, contact_id=contact.pk)
        status = 400
    else:
        initial = {
            "name": contact.name,
            "phone": contact.phone,
            "email": contact.email,
            "language": contact.language,
            "lifecycle_stage": contact.lifecycle_stage,
            "owner": str(contact.owner_id or ""),
            "company": str(contact.company_id or ""),
            "tags": [str(pk) for pk in contact.tags.values_list("pk", flat=True)],
        }
        for key, value in (contact.attributes or {}).items():
            initial[f"attr_{key}"] = value
        form = ContactForm(initial=initial, tenant=request.tenant)
        status = 200
        record_access(
            request=request,
            action=AccessLogEntry.Action.VIEWED_CONTACT,
            obj=contact,
            detail=_("edit form"),
        )
    return render(
        request, "crm/contacts/form.html", {"form": form, "contact": contact}, status=status
    )


# --- segments ---------------------------------------------------------------------------------


@require_POST
@tenant_view(Role.AGENT)
def segment_save(request):
    filters = selectors.ContactFilter.from_params(request.POST)
    form = SegmentForm(request.POST)
    if form.is_valid():
        try:
            segment = services.save_segment(
                name=form.cleaned_data["name"], filters=filters, created_by=request.user
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(_list_url(request, filters))
        messages.success(request, _("Segment “%(name)s” saved.") % {"name": segment.name})
        return redirect(_list_url(request, filters, segment=str(segment.pk)))
    messages.error(request, _("Give the segment a name."))
    return redirect(_list_url(request, filters))


@tenant_view(Role.AGENT)
def segment_detail(request, segment_id: int):
    """GET opens the segment in the list; POST renames it."""
    segment = get_object_or_404(Segment, pk=segment_id)
    if request.method == "POST":
        form = SegmentForm(request.POST)
        if form.is_valid():
            try:
                services.rename_segment(segment=segment, name=form.cleaned_data["name"])
                messages.success(request, _("Segment renamed."))
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
        else:
            messages.error(request, _("Give the segment a name."))
        return redirect("crm:segments", tenant_slug=request.tenant.slug)
    return redirect(_list_url(request, selectors.segment_filter(segment), segment=str(segment.pk)))


@require_GET
@tenant_view(Role.AGENT)
def segment_list(request):
    rows = [(segment, selectors.segment_count(segment)) for segment in selectors.segments()]
    return render(request, "crm/contacts/segments.html", {"rows": rows})


@require_POST
@tenant_view(Role.AGENT)
def segment_delete(request, segment_id: int):
    segment = get_object_or_404(Segment, pk=segment_id)
    services.delete_segment(segment=segment)
    messages.success(request, _("Segment “%(name)s” deleted.") % {"name": segment.name})
    return redirect("crm:segments", tenant_slug=request.tenant.slug)


# --- custom attribute definitions ---------------------------------------------------------------


@tenant_view(Role.ADMIN)
def attribute_list(request):
    form = AttributeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.create_attribute(
                label=form.cleaned_data["label"],
                kind=form.cleaned_data["kind"],
                choices=form.choice_list(),
            )
            messages.success(request, _("Attribute added."))
            return redirect("crm:attributes", tenant_slug=request.tenant.slug)
        except ValidationError as exc:
            attach_errors(form, exc)
    return render(
        request,
        "crm/contacts/attributes.html",
        {"form": form, "attributes": selectors.attribute_definitions()},
        status=400 if request.method == "POST" else 200,
    )


@tenant_view(Role.ADMIN)
def attribute_edit(request, contact_attribute_id: int):
    attribute = get_object_or_404(ContactAttribute, pk=contact_attribute_id)
    initial = {
        "label": attribute.label,
        "kind": attribute.kind,
        "choices": "\n".join(attribute.choices or []),
    }
    form = AttributeForm(request.POST or None, initial=initial)
    form.fields["kind"].disabled = True
    if request.method == "POST" and form.is_valid():
        try:
            services.update_attribute(
                attribute=attribute, label=form.cleaned_data["label"], choices=form.choice_list()
            )
            messages.success(request, _("Attribute saved."))
            return redirect("crm:attributes", tenant_slug=request.tenant.slug)
        except ValidationError as exc:
            attach_errors(form, exc)
    return render(
        request,
        "crm/contacts/attribute_edit.html",
        {"form": form, "attribute": attribute},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@tenant_view(Role.ADMIN)
def attribute_move(request, contact_attribute_id: int):
    attribute = get_object_or_404(ContactAttribute, pk=contact_attribute_id)
    services.move_attribute(
        attribute=attribute, direction=-1 if request.POST.get("direction") == "up" else 1
    )
    return redirect("crm:attributes", tenant_slug=request.tenant.slug)


@require_POST
@tenant_view(Role.ADMIN)
def attribute_delete(request, contact_attribute_id: int):
    attribute = get_object_or_404(ContactAttribute, pk=contact_attribute_id)
    services.delete_attribute(attribute=attribute)
    messages.success(request, _("Attribute “%(label)s” deleted.") % {"label": attribute.label})
    return redirect("crm:attributes", tenant_slug=request.tenant.slug)


# --- CSV export -----------------------------------------------------------------------------


class _Echo:
    def write(self, value):
        return value


@require_GET
@tenant_view(Role.ADMIN)
def contact_export(request):
    filters = selectors.ContactFilter.from_params(request.GET)
    tenant = request.tenant
    attributes = selectors.attribute_definitions()
    count = selectors.contacts_matching(filters).count()
    record_access(
        request=request,
        action=AccessLogEntry.Action.EXPORTED_CONTACTS,
        detail=_("%(count)s contacts; filter: %(query)s")
        % {"count": count, "query": urlencode(filters.query_items()) or _("none")},
    )
    # A large export is also a security event on the privacy centre (P17).
    note_export(
        rows=count, what=_("contacts CSV export"), user=request.user, ip_address=client_ip(request)
    )
    header = [
        "id",
        "name",
        "phone",
        "email",
        "language",
        "lifecycle_stage",
        "owner",
        "company",
        "tags",
        "source",
        "created_at",
        "last_activity_at",
    ] + [f"attr:{a.key}" for a in attributes]

    def rows():
        writer = csv.writer(_Echo())
        yield "\ufeff"
        yield writer.writerow(header)
        # The view has returned (and the tenant was deactivated) when the body streams.
        with tenant_context(tenant):
            for contact in selectors.iter_matching(filters, batch=EXPORT_BATCH):
                values = [
                    contact.pk,
                    contact.name,
                    contact.phone,
                    contact.email,
                    contact.language,
                    contact.lifecycle_stage,
                    contact.owner.email if contact.owner else "",
                    contact.company.name if contact.company else "",
                    ", ".join(tag.name for tag in contact.tags.all()),
                    contact.source,
                    contact.created_at.astimezone(tenant.zone).strftime("%Y-%m-%d %H:%M"),
                    contact.last_activity_at.astimezone(tenant.zone).strftime("%Y-%m-%d %H:%M"),
                ] + [(contact.attributes or {}).get(a.key, "") for a in attributes]
                yield writer.writerow([safe_cell(value) for value in values])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(timezone.now(), tenant.zone).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="contacts-{stamp}.csv"'
    return response


# --- merge ----------------------------------------------------------------------------------


def _merge_candidates(contact: Contact, q: str) -> list[Contact]:
    if not q:
        return []
    found = selectors.contacts_matching(selectors.ContactFilter(q=q)).exclude(pk=contact.pk)
    return list(found.order_by("name", "id")[:20])


@tenant_view(Role.ADMIN)
def contact_merge(request, contact_id: int):
    """Pick the duplicate, compare field by field, choose, merge."""
    contact = get_object_or_404(Contact, pk=contact_id)
    other_id = request.POST.get("other") or request.GET.get("other") or ""
    other = None
    if other_id.isdigit():
        other = Contact.objects.filter(pk=int(other_id)).exclude(pk=contact.pk).first()
    if request.method == "POST":
        if other is None:
            messages.error(request, _("Choose the contact to merge into this one."))
            return render(
                request,
                "crm/contacts/merge.html",
                {"contact": contact, "candidates": [], "q": ""},
                status=400,
            )
        primary, duplicate = (
            (other, contact)
            if request.POST.get("keep") == "other"
            else (
                contact,
                other,
            )
        )
        choices = {}
        for name in (*MERGE_FIELDS, "attributes"):
            value = request.POST.get(f"field_{name}", "")
            if value in ("primary", "other"):
                # The form names sides by this page's contact ("this") and the chosen one.
                if primary is contact:
                    choices[name] = value
                else:
                    choices[name] = "other" if value == "primary" else "primary"
        label = duplicate.display_name
        try:
            survivor = merge_services.merge_contacts(
                primary=primary, other=duplicate, choices=choices, merged_by=request.user
            )
        except ValidationError as exc:
            return HttpResponseBadRequest(" ".join(exc.messages))
        messages.success(request, _("%(name)s was merged into this contact.") % {"name": label})
        return redirect("crm:contact", tenant_slug=request.tenant.slug, contact_id=survivor.pk)
    q = request.GET.get("q", "").strip()
    rows = []
    # The comparison shows both contacts' details side by side.
    for shown in (contact, other) if other is not None else (contact,):
        record_access(
            request=request,
            action=AccessLogEntry.Action.VIEWED_CONTACT,
            obj=shown,
            detail=_("merge comparison"),
        )
    if other is not None:
        for name in MERGE_FIELDS:
            field = Contact._meta.get_field(name)
            mine, theirs = getattr(contact, name), getattr(other, name)
            rows.append(
                {
                    "name": name,
                    "label": field.verbose_name,
                    "mine": _display(contact, name),
                    "theirs": _display(other, name),
                    "differ": mine != theirs,
                    "default": "other"
                    if mine in ("", None) and theirs not in ("", None)
                    else "primary",
                }
            )
    return render(
        request,
        "crm/contacts/merge.html",
        {
            "contact": contact,
            "other": other,
            "rows": rows,
            "q": q,
            "candidates": _merge_candidates(contact, q),
        },
    )


def _display(contact: Contact, name: str) -> str:
    display = getattr(contact, f"get_{name}_display", None)
    value = display() if display else getattr(contact, name)
    return "" if value in (None, "") else str(value)
