"""The shared inbox: the conversation list, a thread with its reply box and contact panel, and
the small endpoints the page polls for what changed. Views stay thin: reads come from
channels_app.selectors, every change goes through a service function."""

from __future__ import annotations

import dataclasses
import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from channels_app import selectors
from channels_app.models import Channel, Conversation, Medium, Message
from channels_app.services import conversations as conversation_services
from privacy import access_log
from privacy.models import ConsentAction
from tenants.models import Role
from tenants.permissions import tenant_view

MAX_REPLY_LENGTH = 4096

# --- Forms ---------------------------------------------------------------------------------------


class ReplyForm(forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Reply"),
        max_length=MAX_REPLY_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": gettext_lazy("Write a message first.")},
    )
    # A new key per rendered form: submitting the same form twice sends one message.
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)


class TemplateForm(forms.Form):
    template = forms.IntegerField(error_messages={"required": gettext_lazy("Choose a template.")})
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)


class NoteForm(forms.Form):
    body = forms.CharField(
        label=gettext_lazy("Internal note"),
        max_length=conversation_services.MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": gettext_lazy("Write the note first.")},
    )


class ConsentForm(forms.Form):
    medium = forms.ChoiceField(label=gettext_lazy("Channel type"), choices=Medium.choices)
    purposes = forms.ChoiceField(
        label=gettext_lazy("For"),
        choices=[
            ("transactional", gettext_lazy("Service messages (replies, reminders)")),
            ("marketing", gettext_lazy("Marketing (offers, campaigns)")),
            ("both", gettext_lazy("Both")),
        ],
    )
    action = forms.ChoiceField(
        label=gettext_lazy("The customer"),
        choices=[
            (ConsentAction.GRANTED, gettext_lazy("agreed")),
            (ConsentAction.WITHDRAWN, gettext_lazy("withdrew consent")),
        ],
    )
    evidence = forms.CharField(
        label=gettext_lazy("Evidence"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("How you know: when, how, who was there."),
        error_messages={
            "required": gettext_lazy(
                "Say how you know, e.g. “Agreed on the phone on 3 May, call with Dana”."
            )
        },
    )


def _new_key() -> str:
    return str(uuid.uuid4())


def _idempotency_key(form) -> str:
    # Namespaced so a key typed into the form can never collide with a system key.
    return f"inbox:{form.cleaned_data['idempotency_key']}"


# --- Helpers -------------------------------------------------------------------------------------


def _conversation_or_404(conversation_id: int) -> Conversation:
    conversation = selectors.conversation_for_thread(conversation_id=conversation_id)
    if conversation is None:
        raise Http404(_("No such conversation."))
    return conversation


def _thread_url(request, conversation: Conversation) -> str:
    url = reverse(
        "channels:inbox_thread",
        kwargs={"tenant_slug": request.tenant.slug, "conversation_id": conversation.pk},
    )
    filters = selectors.InboxFilters.from_params(request.GET)
    return f"{url}?{urlencode(filters.as_params())}"


def _list_context(request, filters, *, cursor="", open_conversation=None) -> dict:
    page = selectors.inbox_page(user=request.user, filters=filters, cursor=cursor)
    return {
        "filters": filters,
        "filter_query": urlencode(filters.as_params()),
        "page": page,
        "tabs": _tabs(request, filters),
        "status_choices": [
            ("", _("Open and pending")),
            ("open", _("Open")),
            ("pending", _("Pending")),
            ("resolved", _("Resolved")),
            ("any", _("Any status")),
        ],
        "unread": selectors.unread_totals(user=request.user, filters=filters),
        "inbox_url": reverse("channels:inbox", kwargs={"tenant_slug": request.tenant.slug}),
        "channels": selectors.inbox_channels(),
        "open_conversation": open_conversation,
        "open_id": open_conversation.pk if open_conversation else None,
        "list_since": page.changes_cursor,
    }


def _tabs(request, filters) -> list[dict]:
    base = reverse("channels:inbox", kwargs={"tenant_slug": request.tenant.slug})
    labels = {"mine": _("Mine"), "unassigned": _("Unassigned"), "all": _("All")}
    return [
        {
            "key": key,
            "label": labels[key],
            "url": f"{base}?{urlencode(dataclasses.replace(filters, tab=key).as_params())}",
            "current": filters.tab == key,
        }
        for key in selectors.TABS
    ]


def _window_explanation(conversation: Conversation) -> str:
    if conversation.last_inbound_at is None:
        return _(
            "The customer has not written on this channel yet; WhatsApp allows only approved "
            "templates until they do."
        )
    return _(
        "The customer last wrote %(ago)s ago; WhatsApp allows only approved templates until "
        "they write again."
    ) % {"ago": timesince(conversation.last_inbound_at)}


def _composer_context(
    conversation: Conversation, *, reply_form=None, template_form=None, chosen_values=None
) -> dict:
    needs_template = conversation.channel.is_whatsapp and not conversation.window_open()
    context = {
        "conversation": conversation,
        "needs_template": needs_template,
        "reply_form": reply_form or ReplyForm(initial={"idempotency_key": _new_key()}),
    }
    if needs_template:
        from channels_app.templating import variable_names

        chosen_values = chosen_values or {}
        templates = []
        for template in selectors.approved_templates(channel=conversation.channel):
            templates.append(
                {
                    "template": template,
                    "variables": [
                        {
                            "name": name,
                            "label": "{{" + name + "}}",
                            "field": f"var-{template.pk}-{name}",
                            "value": chosen_values.get((template.pk, name), ""),
                        }
                        for name in variable_names(template)
                    ],
                }
            )
        context |= {
            "window_explanation": _window_explanation(conversation),
            "templates": templates,
            "template_form": template_form or TemplateForm(initial={"idempotency_key": _new_key()}),
        }
    return context


def _thread_context(
    request,
    conversation: Conversation,
    *,
    before: str = "",
    reply_form=None,
    template_form=None,
    chosen_values=None,
    note_form=None,
    consent_form=None,
) -> dict:
    thread = selectors.thread_page(conversation=conversation, before=before)
    filters = selectors.InboxFilters.from_params(request.GET)
    panel = selectors.contact_panel(conversation=conversation)
    context = _list_context(request, filters, open_conversation=conversation)
    context |= _composer_context(
        conversation,
        reply_form=reply_form,
        template_form=template_form,
        chosen_values=chosen_values,
    )
    context |= {
        "thread": thread,
        "thread_cursor": selectors.ThreadCursor.after(thread.messages).encode(),
        "panel": panel,
        "note_form": note_form or NoteForm(),
        "consent_form": consent_form
        or ConsentForm(initial={"medium": conversation.channel.medium}),
        "members": selectors.assignable_members(tenant=request.tenant),
        "statuses": Conversation.Status.choices,
        "is_sandbox": conversation.channel.kind == Channel.Kind.SANDBOX,
    }
    return context


def _render_thread(request, conversation, *, status=200, **forms_) -> HttpResponse:
    return render(
        request,
        "channels_app/inbox/thread.html",
        _thread_context(request, conversation, **forms_),
        status=status,
    )


# --- The list ------------------------------------------------------------------------------------


@tenant_view(Role.AGENT)
def inbox(request):
    filters = selectors.InboxFilters.from_params(request.GET)
    cursor = request.GET.get("cursor", "")
    try:
        if request.htmx and cursor:
            # "Load more": the next rows and the next button, nothing else.
            page = selectors.inbox_page(user=request.user, filters=filters, cursor=cursor)
            return render(
                request,
                "channels_app/inbox/_rows.html",
                {
                    "page": page,
                    "filters": filters,
                    "filter_query": urlencode(filters.as_params()),
                },
            )
        context = _list_context(request, filters, cursor=cursor)
    except selectors.BadCursor:
        return HttpResponseBadRequest(_("That page of the list no longer exists; reload it."))
    context["sandbox_channels"] = [
        c for c in context["channels"] if c.kind == Channel.Kind.SANDBOX and c.is_active
    ]
    return render(request, "channels_app/inbox/index.html", context)


@require_GET
@tenant_view(Role.AGENT)
def inbox_updates(request):
    """Rows with activity since the list's cursor, and the tab totals; 204 when nothing moved."""
    filters = selectors.InboxFilters.from_params(request.GET)
    since = selectors.parse_moment(request.GET.get("since", ""))
    if since is None:
        return HttpResponseBadRequest(_("The list's cursor is missing or unreadable."))
    changed = selectors.changed_conversations(user=request.user, filters=filters, since=since)
    if not changed:
        return HttpResponse(status=204)
    open_id = request.GET.get("open", "")
    return render(
        request,
        "channels_app/inbox/_list_updates.html",
        {
            "conversations": changed,
            "filters": filters,
            "filter_query": urlencode(filters.as_params()),
            "unread": selectors.unread_totals(user=request.user, filters=filters),
            "list_since": max(c.last_message_at for c in changed).isoformat(),
            "open_id": int(open_id) if open_id.isdigit() else None,
        },
    )


# --- A thread ------------------------------------------------------------------------------------


@tenant_view(Role.AGENT)
def thread(request, conversation_id: int):
    conversation = _conversation_or_404(conversation_id)
    before = request.GET.get("before", "")
    try:
        if request.htmx and before:
            # "Earlier messages": the older page and the next link, above what is shown.
            page = selectors.thread_page(conversation=conversation, before=before)
            return render(
                request,
                "channels_app/inbox/_earlier.html",
                {"thread": page, "conversation": conversation},
            )
        conversation_services.mark_read(conversation=conversation)
        response = _render_thread(request, conversation, before=before)
        # A whole page of the thread, older messages included (the no-script "earlier" link).
        access_log.record_access(
            request=request,
            action=access_log.Action.VIEWED_CONVERSATION,
            obj=conversation,
            detail=_("earlier messages") if before else "",
        )
        return response
    except selectors.BadCursor:
        return HttpResponseBadRequest(_("Those messages can no longer be found; reload the page."))


@require_GET
@tenant_view(Role.AGENT)
def thread_updates(request, conversation_id: int):
    """New messages and status changes of the open thread since its cursor; 204 when none."""
    conversation = _conversation_or_404(conversation_id)
    try:
        cursor = selectors.ThreadCursor.decode(request.GET.get("cursor", ""))
    except selectors.BadCursor:
        return HttpResponseBadRequest(_("The thread's cursor is missing or unreadable."))
    changes = selectors.thread_changes(conversation=conversation, cursor=cursor)
    if not changes:
        return HttpResponse(status=204)
    if any(m.direction == Message.Direction.INBOUND for m in changes.new):
        # The agent has the thread open: what just arrived is read.
        conversation_services.mark_read(conversation=conversation)
    return render(
        request,
        "channels_app/inbox/_thread_updates.html",
        {
            "conversation": conversation,
            "changes": changes,
            "thread_cursor": changes.cursor.encode(),
        },
    )


def _after_post(request, conversation, text: str | None = None):
    if text:
        messages.success(request, text)
    return redirect(_thread_url(request, conversation))


@require_POST
@tenant_view(Role.AGENT)
def reply(request, conversation_id: int):
    from channels_app.services.sending import InvalidMessage, SendRefused, send_message

    conversation = _conversation_or_404(conversation_id)
    form = ReplyForm(request.POST)
    message = None
    if form.is_valid():
        try:
            message = send_message(
                conversation=conversation,
                body=form.cleaned_data["body"],
                purpose="transactional",
                sender_kind=Message.SenderKind.AGENT,
                author=request.user,
                idempotency_key=_idempotency_key(form),
            )
        except (SendRefused, InvalidMessage) as exc:
            form.add_error("body" if getattr(exc, "field", None) == "body" else None, exc.detail)
    return _composer_response(request, conversation, form=form, message=message, kind="reply")


@require_POST
@tenant_view(Role.AGENT)
def send_template(request, conversation_id: int):
    from channels_app.services.sending import InvalidMessage, SendRefused, send_message
    from channels_app.templating import variable_names

    conversation = _conversation_or_404(conversation_id)
    form = TemplateForm(request.POST)
    message = None
    chosen_values = {}
    if form.is_valid():
        template = next(
            (
                t
                for t in selectors.approved_templates(channel=conversation.channel)
                if t.pk == form.cleaned_data["template"]
            ),
            None,
        )
        if template is None:
            form.add_error("template", _("Choose one of the approved templates of this channel."))
        else:
            variables = {
                name: request.POST.get(f"var-{template.pk}-{name}", "").strip()
                for name in variable_names(template)
            }
            chosen_values = {(template.pk, name): value for name, value in variables.items()}
            try:
                message = send_message(
                    conversation=conversation,
                    template=template,
                    variables=variables,
                    purpose=template.category_purpose,
                    sender_kind=Message.SenderKind.AGENT,
                    author=request.user,
                    idempotency_key=_idempotency_key(form),
                )
            except (SendRefused, InvalidMessage) as exc:
                form.add_error(None, exc.detail)
    return _composer_response(
        request,
        conversation,
        form=form,
        message=message,
        kind="template",
        chosen_values=chosen_values,
    )


def _composer_response(request, conversation, *, form, message, kind, chosen_values=None):
    """After a send: the fresh composer (and the new message) for HTMX, else back to the thread.

    A refused or invalid send keeps what was typed and says why.
    """
    failed = message is None
    if not request.htmx:
        if failed:
            forms_ = {"reply_form": form} if kind == "reply" else {"template_form": form}
            return _render_thread(
                request, conversation, status=400, chosen_values=chosen_values, **forms_
            )
        return _after_post(request, conversation)
    if failed:
        forms_ = {"reply_form": form} if kind == "reply" else {"template_form": form}
        context = _composer_context(conversation, chosen_values=chosen_values, **forms_)
    else:
        conversation.refresh_from_db()
        context = _composer_context(conversation) | {"sent": message}
    return render(request, "channels_app/inbox/_composer_response.html", context)


@require_POST
@tenant_view(Role.AGENT)
def note(request, conversation_id: int):
    conversation = _conversation_or_404(conversation_id)
    form = NoteForm(request.POST)
    created = None
    if form.is_valid():
        try:
            created = conversation_services.add_note(
                conversation=conversation, body=form.cleaned_data["body"], author=request.user
            )
        except ValidationError as exc:
            form.add_error("body", exc.messages)
    if not request.htmx:
        if created is None:
            return _render_thread(request, conversation, status=400, note_form=form)
        return _after_post(request, conversation, _("Note added."))
    return render(
        request,
        "channels_app/inbox/_note_response.html",
        {
            "conversation": conversation,
            "note_form": NoteForm() if created else form,
            "sent": created,
        },
    )


@require_POST
@tenant_view(Role.AGENT)
def assign(request, conversation_id: int):
    conversation = _conversation_or_404(conversation_id)
    choice = request.POST.get("assignee", "")
    if choice == "me":
        assignee = request.user
    elif choice == "":
        assignee = None
    else:
        member = next(
            (
                m.user
                for m in selectors.assignable_members(tenant=request.tenant)
                if str(m.user_id) == choice
            ),
            None,
        )
        if member is None:
            messages.error(request, _("Choose a member of the team."))
            return _after_post(request, conversation)
        assignee = member
    try:
        conversation_services.assign(conversation=conversation, assignee=assignee, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _after_post(request, conversation)
    if assignee is None:
        text = _("The conversation is unassigned.")
    elif assignee == request.user:
        text = _("The conversation is yours.")
    else:
        text = _("Assigned to %(person)s.") % {"person": assignee.get_full_name()}
    return _after_post(request, conversation, text)


@require_POST
@tenant_view(Role.AGENT)
def change_status(request, conversation_id: int):
    conversation = _conversation_or_404(conversation_id)
    try:
        conversation_services.set_status(
            conversation=conversation, status=request.POST.get("status", ""), by=request.user
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _after_post(request, conversation)
    texts = {
        Conversation.Status.OPEN: _("The conversation is open again."),
        Conversation.Status.PENDING: _("The conversation is pending."),
        Conversation.Status.RESOLVED: _("The conversation is resolved."),
    }
    return _after_post(request, conversation, texts[conversation.status])


@require_POST
@tenant_view(Role.AGENT)
def record_consent(request, conversation_id: int):
    conversation = _conversation_or_404(conversation_id)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            conversation_services.record_contact_consent(
                contact=conversation.contact,
                medium=form.cleaned_data["medium"],
                purposes=form.cleaned_data["purposes"],
                action=form.cleaned_data["action"],
                evidence=form.cleaned_data["evidence"],
                recorded_by=request.user,
                channel=conversation.channel,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return _after_post(request, conversation, _("Consent recorded."))
    return _render_thread(request, conversation, status=400, consent_form=form)


@require_GET
@tenant_view(Role.AGENT)
def media(request, conversation_id: int, message_id: int):
    """An attachment, fetched through the provider with the channel's credentials on demand."""
    from channels_app.providers.base import ProviderError, provider_for

    conversation = _conversation_or_404(conversation_id)
    message = Message.objects.filter(pk=message_id, conversation=conversation).first()
    index = request.GET.get("index", "0")
    if message is None or not index.isdigit() or int(index) >= len(message.media or []):
        raise Http404(_("No such attachment."))
    item = message.media[int(index)]
    try:
        content = provider_for(conversation.channel).fetch_media(item)
    except ProviderError as exc:
        return HttpResponse(
            _("The attachment could not be fetched: %(reason)s") % {"reason": exc.reason},
            status=502,
            content_type="text/plain; charset=utf-8",
        )
    content_type = content.content_type or item.get("content_type") or "application/octet-stream"
    response = HttpResponse(content.content, content_type=content_type)
    # Only kinds a browser shows inertly are displayed; anything else (HTML, SVG, scripts) is
    # downloaded, so a customer's file never runs as a page of ours.
    inline = content_type.split(";")[0].strip().lower() in INLINE_MEDIA_TYPES
    filename = (content.filename or item.get("filename") or f"attachment-{message.pk}").replace(
        '"', ""
    )
    response["Content-Disposition"] = (
        f'{"inline" if inline else "attachment"}; filename="{filename}"'
    )
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


INLINE_MEDIA_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "audio/ogg",
        "audio/mpeg",
        "audio/aac",
        "audio/mp4",
        "audio/amr",
        "video/mp4",
        "video/3gpp",
        "application/pdf",
    }
)
