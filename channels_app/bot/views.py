"""The bot pages: profile and status, per-channel overrides, the "try it" box, the knowledge
base and the monthly usage. Everyone in the business may look; owners and admins change
things. The work is in the bot's service modules."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from channels_app.bot import knowledge, metering, pipeline, profiles, providers
from channels_app.bot.forms import (
    BotProfileForm,
    DocumentForm,
    EditDocumentForm,
    TryForm,
    UploadForm,
)
from channels_app.bot.models import BotProfile, BotRun, KnowledgeDocument
from channels_app.models import Channel, Conversation
from tenants.models import Role
from tenants.permissions import tenant_view


def _require_admin(request) -> None:
    if not request.membership.has_role(Role.ADMIN):
        raise PermissionDenied(_("Only owners and admins can change the bot."))


def _provider_label(profile) -> dict:
    config = providers.config_for(profile)
    return {"is_local": config.is_local, "model": config.model, "base_url": config.base_url}


def bot_status() -> dict:
    """What the bot page and the dashboard say about the bot: on or off, and why it stopped."""
    profile = profiles.default_profile()
    balance = metering.balance()
    enabled = bool(profile and profile.enabled)
    return {
        "enabled": enabled,
        "tokens_remaining": balance.tokens_remaining,
        "exhausted": balance.tokens_remaining <= 0,
        "stopped": enabled and balance.tokens_remaining <= 0,
    }


def _save_profile(request, profile, form) -> bool:
    if not form.is_valid():
        return False
    try:
        profiles.update_profile(profile=profile, **form.changes())
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return False
    return True


def _bot_page(request, *, profile, form=None, try_form=None, result=None, status=200):
    overrides = {p.channel_id: p for p in BotProfile.objects.filter(channel__isnull=False)}
    channels = [(channel, overrides.get(channel.pk)) for channel in Channel.objects.all()]
    runs = BotRun.objects.select_related("conversation__contact").order_by("-created_at", "-id")
    return render(
        request,
        "channels_app/bot/index.html",
        {
            "profile": profile,
            "form": form,
            "status": bot_status(),
            "provider": _provider_label(profile),
            "channels": channels,
            "try_form": try_form or TryForm(),
            "result": result,
            "runs": list(runs[:10]),
            "documents": KnowledgeDocument.objects.count(),
        },
        status=status,
    )


@tenant_view(Role.AGENT)
def bot(request):
    profile = profiles.ensure_default_profile()
    is_admin = request.membership.has_role(Role.ADMIN)
    if request.method != "POST":
        return _bot_page(
            request, profile=profile, form=BotProfileForm(instance=profile) if is_admin else None
        )
    _require_admin(request)
    form = BotProfileForm(request.POST, instance=profile)
    if _save_profile(request, profile, form):
        messages.success(request, _("Bot settings saved."))
        return redirect("channels:bot", tenant_slug=request.tenant.slug)
    messages.error(request, _("The bot settings were not saved; see the errors below."))
    profile.refresh_from_db()
    return _bot_page(request, profile=profile, form=form, status=400)


@require_POST
@tenant_view(Role.AGENT)
def bot_try(request):
    """The "try it" box: retrieved chunks and the answer the bot would give (an HTMX partial,
    or the whole bot page without JavaScript)."""
    profile = profiles.ensure_default_profile()
    form = TryForm(request.POST)
    result = None
    if form.is_valid():
        result = pipeline.try_question(question=form.cleaned_data["question"], profile=profile)
    status = 200 if result is not None else 400
    if request.htmx:
        context = {"try_form": form, "result": result, "provider": _provider_label(profile)}
        return render(request, "channels_app/bot/_try.html", context, status=status)
    is_admin = request.membership.has_role(Role.ADMIN)
    return _bot_page(
        request,
        profile=profile,
        form=BotProfileForm(instance=profile) if is_admin else None,
        try_form=form,
        result=result,
        status=status,
    )


@tenant_view(Role.AGENT)
def bot_channel(request, channel_id: int):
    channel = get_object_or_404(Channel, pk=channel_id)
    override = profiles.channel_override(channel)
    form = None
    if request.method == "POST":
        _require_admin(request)
        here = {"tenant_slug": request.tenant.slug, "channel_id": channel.pk}
        names = {"name": channel.name}
        if override is None or request.POST.get("create"):
            profiles.create_channel_override(channel=channel)
            messages.success(request, _("%(name)s now has its own bot settings.") % names)
            return redirect("channels:bot_channel", **here)
        form = BotProfileForm(request.POST, instance=override)
        if _save_profile(request, override, form):
            messages.success(request, _("Bot settings for %(name)s saved.") % names)
            return redirect("channels:bot_channel", **here)
    elif override is not None and request.membership.has_role(Role.ADMIN):
        form = BotProfileForm(instance=override)
    return render(
        request,
        "channels_app/bot/channel.html",
        {
            "channel": channel,
            "override": override,
            "form": form,
            "provider": _provider_label(override or profiles.ensure_default_profile()),
        },
        status=400 if form is not None and form.errors else 200,
    )


@require_POST
@tenant_view(Role.ADMIN)
def bot_channel_delete(request, channel_id: int):
    channel = get_object_or_404(Channel, pk=channel_id)
    profiles.delete_channel_override(channel=channel)
    messages.success(
        request, _("%(name)s follows the business's bot settings again.") % {"name": channel.name}
    )
    return redirect("channels:bot", tenant_slug=request.tenant.slug)


@tenant_view(Role.AGENT)
def bot_usage(request):
    zone = request.tenant.zone
    month = metering.parse_month(request.GET.get("month"), zone=zone)
    usage = metering.monthly_usage(month=month, zone=zone)
    bars, top = metering.chart_bars(usage.days)
    return render(
        request,
        "channels_app/bot/usage.html",
        {
            "usage": usage,
            "bars": bars,
            "top": top,
            "chart": {
                "width": metering.CHART_WIDTH,
                "height": metering.CHART_HEIGHT,
                "base": metering.CHART_HEIGHT - metering.CHART_PADDING,
            },
            "status": bot_status(),
        },
    )


# --- Knowledge base -------------------------------------------------------------------------


def _knowledge_page(request, *, document_form=None, upload_form=None, status=200):
    return render(
        request,
        "channels_app/bot/knowledge.html",
        {
            "documents": KnowledgeDocument.objects.all(),
            "document_form": document_form or DocumentForm(),
            "upload_form": upload_form or UploadForm(),
        },
        status=status,
    )


@tenant_view(Role.AGENT)
def knowledge_base(request):
    if request.method != "POST":
        return _knowledge_page(request)
    _require_admin(request)
    if "file" in request.FILES or request.POST.get("upload"):
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            extracted = form.cleaned_data["extracted"]
            document = knowledge.add_document(
                title=form.cleaned_data["title"],
                content=extracted.text,
                kind=extracted.kind,
                source=request.FILES["file"].name,
                by=request.user,
            )
            messages.success(request, _("“%(title)s” was added.") % {"title": document.title})
            return redirect("channels:knowledge", tenant_slug=request.tenant.slug)
        return _knowledge_page(request, upload_form=form, status=400)
    form = DocumentForm(request.POST)
    if form.is_valid():
        try:
            document = knowledge.add_document(by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("“%(title)s” was added.") % {"title": document.title})
            return redirect("channels:knowledge", tenant_slug=request.tenant.slug)
    return _knowledge_page(request, document_form=form, status=400)


@tenant_view(Role.AGENT)
def knowledge_document(request, knowledge_document_id: int):
    document = get_object_or_404(KnowledgeDocument, pk=knowledge_document_id)
    form = EditDocumentForm(
        request.POST or None, initial={"title": document.title, "content": document.content}
    )
    status = 200
    if request.method == "POST":
        _require_admin(request)
        if form.is_valid():
            try:
                knowledge.update_document(document=document, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("“%(title)s” was saved.") % {"title": document.title})
                return redirect(
                    "channels:knowledge_document",
                    tenant_slug=request.tenant.slug,
                    knowledge_document_id=document.pk,
                )
        status = 400
    return render(
        request,
        "channels_app/bot/document.html",
        {"document": document, "form": form, "chunks": list(document.chunks.all())},
        status=status,
    )


@require_POST
@tenant_view(Role.ADMIN)
def knowledge_document_delete(request, knowledge_document_id: int):
    document = get_object_or_404(KnowledgeDocument, pk=knowledge_document_id)
    title = document.title
    knowledge.delete_document(document=document)
    messages.success(request, _("“%(title)s” was deleted.") % {"title": title})
    return redirect("channels:knowledge", tenant_slug=request.tenant.slug)


@require_POST
@tenant_view(Role.AGENT)
def bot_resume(request, conversation_id: int):
    """After a hand-off: let the bot answer this conversation's next messages again."""
    from channels_app.services.conversations import resume_bot

    conversation = get_object_or_404(Conversation, pk=conversation_id)
    resume_bot(conversation=conversation, by=request.user)
    messages.success(request, _("The bot answers this conversation again."))
    return redirect(
        "channels:inbox_thread", tenant_slug=request.tenant.slug, conversation_id=conversation.pk
    )
