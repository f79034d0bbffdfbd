"""The channels pages: connected senders, their health, setup and the opt-out wording.

Everyone in the business may look (agents need to know which numbers work); owners and admins
change things. The work is in channels_app.services.channels.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from channels_app.forms import FORM_FOR_KIND, MessagingPolicyForm, built_in_keywords
from channels_app.models import Channel, Conversation, Message, MessageTemplate
from channels_app.providers.base import ProviderError
from channels_app.services import channels as services
from privacy.keywords import ONLY_WHEN_OPTED_OUT
from privacy.services import messaging_policy as current_messaging_policy
from tenants.models import Role
from tenants.permissions import tenant_view

KIND_DESCRIPTIONS = {
    Channel.Kind.TWILIO_WHATSAPP: gettext_lazy(
        "Your WhatsApp sender on Twilio: account SID, auth token and the WhatsApp number "
        "or messaging service."
    ),
    Channel.Kind.TWILIO_SMS: gettext_lazy(
        "Text messages from a Twilio phone number or messaging service."
    ),
    Channel.Kind.META_WHATSAPP: gettext_lazy(
        "WhatsApp Cloud API straight from Meta: phone number ID, business account ID, a "
        "permanent access token and the app secret."
    ),
    Channel.Kind.SANDBOX: gettext_lazy(
        "A simulated phone in your browser: try the inbox and the opt-out with no provider account."
    ),
}


def _policy_languages(request) -> list[str]:
    return [request.tenant.language] if request.tenant.language else []


def _channel_or_404(channel_id: int) -> Channel:
    return get_object_or_404(Channel, pk=channel_id)


def _require_admin(request) -> None:
    if not request.membership.has_role(Role.ADMIN):
        raise PermissionDenied(_("Only owners and admins can change channels."))


def _to_detail(channel: Channel):
    return redirect("channels:channel", tenant_slug=channel.tenant.slug, channel_id=channel.pk)


def _render_channels(request, *, policy_form: MessagingPolicyForm | None = None):
    is_admin = request.membership.has_role(Role.ADMIN)
    languages = _policy_languages(request)
    if is_admin and policy_form is None:
        policy_form = MessagingPolicyForm(instance=current_messaging_policy(), languages=languages)
    built_in = built_in_keywords(languages)
    return render(
        request,
        "channels_app/channels/index.html",
        {
            "channels": list(Channel.objects.all()),
            "kinds": [(kind, kind.label, KIND_DESCRIPTIONS[kind]) for kind in Channel.Kind],
            "policy_form": policy_form,
            "built_in_opt_out": built_in["opt_out"],
            # (word, only from someone who opted out): "yes" is otherwise an ordinary answer.
            "built_in_opt_in": [(w, w in ONLY_WHEN_OPTED_OUT) for w in built_in["opt_in"]],
            "built_in_help": built_in["help"],
        },
    )


@tenant_view(Role.AGENT)
def channels(request):
    return _render_channels(request)


@require_POST
@tenant_view(Role.ADMIN)
def messaging_policy(request):
    policy = current_messaging_policy()
    form = MessagingPolicyForm(request.POST, instance=policy, languages=_policy_languages(request))
    if not form.is_valid():
        messages.error(request, _("The opt-out wording was not saved; see the errors below."))
        return _render_channels(request, policy_form=form)
    services.update_messaging_policy(
        policy=policy, **{name: form.cleaned_data[name] for name in form.changed_data}
    )
    messages.success(request, _("Opt-out wording saved."))
    return redirect(reverse("channels:channels", kwargs={"tenant_slug": request.tenant.slug}))


@tenant_view(Role.ADMIN)
def channel_add(request):
    kind = request.POST.get("kind") or request.GET.get("kind") or ""
    form_class = FORM_FOR_KIND.get(kind)
    if form_class is None:
        return render(
            request,
            "channels_app/channels/add_choose.html",
            {"kinds": [(k, k.label, KIND_DESCRIPTIONS[k]) for k in Channel.Kind]},
            status=400 if kind else 200,
        )
    kind = Channel.Kind(kind)
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        channel = services.create_channel(
            kind=kind, name=form.cleaned_data["name"], **form.channel_fields()
        )
        if kind == Channel.Kind.SANDBOX:
            text = _("%(name)s is ready. Open the simulator to write as a customer.")
        else:
            text = _(
                "%(name)s is connected. Paste the webhook addresses below into the provider's "
                "console, then test the connection."
            )
        messages.success(request, text % {"name": channel.name})
        return _to_detail(channel)
    return render(
        request,
        "channels_app/channels/add.html",
        {
            "form": form,
            "kind": kind,
            "kind_label": kind.label,
            "description": KIND_DESCRIPTIONS[kind],
        },
    )


@tenant_view(Role.AGENT)
def channel(request, channel_id: int):
    channel = _channel_or_404(channel_id)
    is_admin = request.membership.has_role(Role.ADMIN)
    form_class = FORM_FOR_KIND[channel.kind]
    form = None
    if request.method == "POST":
        _require_admin(request)
        form = form_class(request.POST, instance=channel)
        if form.is_valid():
            services.update_channel(
                channel=channel, name=form.cleaned_data["name"], **form.channel_fields()
            )
            messages.success(request, _("Channel saved."))
            return _to_detail(channel)
    elif is_admin:
        form = form_class(instance=channel)
    return render(
        request,
        "channels_app/channels/detail.html",
        {
            "channel": channel,
            "form": form,
            "webhook_urls": services.webhook_urls(channel) if is_admin else {},
            "templates": list(MessageTemplate.objects.filter(channel=channel)),
            "is_sandbox": channel.kind == Channel.Kind.SANDBOX,
            "is_meta": channel.kind == Channel.Kind.META_WHATSAPP,
            "is_twilio": channel.kind in (Channel.Kind.TWILIO_WHATSAPP, Channel.Kind.TWILIO_SMS),
            "default_rate": Channel.DEFAULT_RATE_PER_SECOND[Channel.Kind(channel.kind)],
        },
    )


@require_POST
@tenant_view(Role.ADMIN)
def channel_active(request, channel_id: int):
    channel = _channel_or_404(channel_id)
    active = request.POST.get("active") == "1"
    services.set_channel_active(channel=channel, active=active)
    if active:
        messages.success(request, _("%(name)s is active again.") % {"name": channel.name})
    else:
        messages.success(
            request,
            _(
                "%(name)s is switched off: nothing is sent through it. Messages customers write "
                "to it are still received."
            )
            % {"name": channel.name},
        )
    return _to_detail(channel)


@tenant_view(Role.ADMIN)
def channel_delete(request, channel_id: int):
    channel = _channel_or_404(channel_id)
    if request.method == "POST":
        name = channel.name
        services.delete_channel(channel=channel)
        messages.success(request, _("%(name)s was deleted.") % {"name": name})
        return redirect("channels:channels", tenant_slug=request.tenant.slug)
    return render(
        request,
        "channels_app/channels/delete.html",
        {
            "channel": channel,
            "conversations": Conversation.objects.filter(channel=channel).count(),
            "messages_count": Message.objects.filter(channel=channel).count(),
        },
    )


@require_POST
@tenant_view(Role.ADMIN)
def channel_rotate_webhook(request, channel_id: int):
    channel = _channel_or_404(channel_id)
    services.rotate_webhook_token(channel=channel)
    messages.warning(
        request,
        _(
            "The webhook addresses changed. Paste the new ones into the provider's console now: "
            "the old ones no longer work."
        ),
    )
    return _to_detail(channel)


@require_POST
@tenant_view(Role.ADMIN)
def channel_test(request, channel_id: int):
    channel = _channel_or_404(channel_id)
    result = services.check_connection(channel=channel)
    if result.ok:
        messages.success(request, _("Connection works: %(detail)s") % {"detail": result.detail})
    else:
        messages.error(request, _("Connection failed: %(detail)s") % {"detail": result.detail})
    return _to_detail(channel)


@require_POST
@tenant_view(Role.ADMIN)
def channel_sync_templates(request, channel_id: int):
    # Runs in the request: the owner waits for the answer (and the error in words). The
    # provider calls are paged and time out; the Celery task serves background refreshes.
    channel = _channel_or_404(channel_id)
    try:
        result = services.sync_templates(channel=channel)
    except ProviderError as exc:
        messages.error(
            request, _("Templates could not be synced: %(reason)s") % {"reason": exc.reason}
        )
    else:
        messages.success(
            request,
            _(
                "Templates synced: %(total)s at the provider (%(created)s new, %(updated)s "
                "changed); %(disabled)s no longer there and disabled."
            )
            % {
                "total": result.total,
                "created": result.created,
                "updated": result.updated,
                "disabled": result.disabled,
            },
        )
    return _to_detail(channel)
