"""The sandbox simulator: a phone in the browser on which the owner plays a customer.

Nothing here writes a message itself. What the phone "sends" becomes a webhook signed with
the channel's sandbox key and goes through `receive_webhook`, exactly as a provider's would
(verified, parsed, persisted once, keywords, contact by phone); what the phone "displays" is
reported back as signed delivered/read status webhooks the same way.
"""

from __future__ import annotations

import secrets

from django import forms
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from channels_app.models import Channel, Conversation, Message
from crm.models import Contact
from crm.phones import InvalidPhoneNumber, format_phone, normalize_phone
from tenants.models import Role
from tenants.permissions import tenant_view

# Outbound messages the phone has "received" (the provider handed them over).
ON_THE_PHONE = (
    Message.Status.ACCEPTED,
    Message.Status.SENT,
    Message.Status.DELIVERED,
    Message.Status.READ,
)
SCREEN_MESSAGES = 60


class CustomerForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200, required=False)
    phone = forms.CharField(
        label=gettext_lazy("Phone number"),
        max_length=40,
        help_text=gettext_lazy("International format, e.g. +1 555 555 0123."),
    )

    def clean_phone(self):
        try:
            return normalize_phone(self.cleaned_data["phone"])
        except InvalidPhoneNumber as exc:
            raise forms.ValidationError(exc.messages) from exc


class PhoneMessageForm(CustomerForm):
    body = forms.CharField(
        label=gettext_lazy("Message"),
        max_length=4096,
        error_messages={"required": gettext_lazy("Type a message first.")},
    )


def _sandbox_channel_or_404(channel_id: int) -> Channel:
    channel = Channel.objects.filter(pk=channel_id, kind=Channel.Kind.SANDBOX).first()
    if channel is None:
        raise Http404(_("No such sandbox channel."))
    return channel


def _simulated_customers(channel: Channel) -> list[Contact]:
    """People who have written on this sandbox channel, most recent first."""
    return [
        conversation.contact
        for conversation in Conversation.objects.filter(channel=channel)
        .select_related("contact")
        .order_by("-last_message_at", "-id")[:20]
    ]


def suggested_phone(channel: Channel) -> str:
    """The first free number of the fictional range +1 555 555 0100 to 0199."""
    taken = set(
        Contact.objects.filter(phone__startswith="+155555501").values_list("phone", flat=True)
    )
    for suffix in range(100, 200):
        phone = f"+1555555{suffix:04d}"
        if phone not in taken:
            return phone
    return "+15555550100"


def _screen(channel: Channel, phone: str) -> dict:
    """What the phone shows: the customer's messages and the business's replies it received."""
    contact = Contact.objects.filter(phone=phone).first() if phone else None
    conversation = (
        Conversation.objects.filter(channel=channel, contact=contact).first() if contact else None
    )
    rows: list[Message] = []
    if conversation is not None:
        rows = list(
            Message.objects.filter(conversation=conversation)
            .filter(
                # Notes stay inside the business; queued or failed replies never reached it.
                Q(direction=Message.Direction.INBOUND)
                | Q(direction=Message.Direction.OUTBOUND, status__in=ON_THE_PHONE)
            )
            .order_by("-created_at", "-id")[:SCREEN_MESSAGES]
        )
        rows.reverse()
    return {"contact": contact, "conversation": conversation, "screen_messages": rows}


def _report_displayed(channel: Channel, shown: list[Message]) -> None:
    """The phone tells the business what it displayed: delivered first, read on the next look."""
    from channels_app.providers.sandbox import signed_request
    from channels_app.services.inbound import receive_webhook

    events = []
    for message in shown:
        if message.direction != Message.Direction.OUTBOUND or not message.provider_message_id:
            continue
        if message.status in (Message.Status.ACCEPTED, Message.Status.SENT):
            events.append(
                {"type": "status", "id": message.provider_message_id, "status": "delivered"}
            )
        elif message.status == Message.Status.DELIVERED:
            events.append({"type": "status", "id": message.provider_message_id, "status": "read"})
    if events:
        receive_webhook(channel=channel, request=signed_request(channel, events))


def _simulator_url(request, channel: Channel, **params) -> str:
    url = reverse(
        "channels:simulator",
        kwargs={"tenant_slug": request.tenant.slug, "channel_id": channel.pk},
    )
    params = {key: value for key, value in params.items() if value}
    return f"{url}?{urlencode(params)}" if params else url


@tenant_view(Role.ADMIN)
def simulator(request, channel_id: int):
    channel = _sandbox_channel_or_404(channel_id)
    customer_form = CustomerForm(request.GET or None)
    phone = name = ""
    if request.GET.get("phone") and customer_form.is_valid():
        phone = customer_form.cleaned_data["phone"]
        name = customer_form.cleaned_data["name"]
    elif not request.GET.get("phone"):
        customer_form = CustomerForm(initial={"phone": format_phone(suggested_phone(channel))})
    context = {
        "channel": channel,
        "customer_form": customer_form,
        "customers": _simulated_customers(channel),
        "phone": phone,
        "phone_display": format_phone(phone) if phone else "",
        "name": name,
        "message_form": PhoneMessageForm(initial={"phone": phone, "name": name}),
    }
    if phone:
        context |= _screen(channel, phone)
        if context["contact"] is not None and not name:
            context["name"] = context["contact"].name
    return render(request, "channels_app/simulator/index.html", context)


@require_POST
@tenant_view(Role.ADMIN)
def send(request, channel_id: int):
    """The simulated customer sends a message: a signed webhook into the inbound pipeline."""
    from channels_app.providers.base import WebhookRejected
    from channels_app.providers.sandbox import signed_request
    from channels_app.services.inbound import receive_webhook

    channel = _sandbox_channel_or_404(channel_id)
    form = PhoneMessageForm(request.POST)
    if form.is_valid():
        phone = form.cleaned_data["phone"]
        event = {
            "type": "message",
            "id": f"sbx-in-{secrets.token_hex(12)}",
            "from": phone,
            "name": form.cleaned_data["name"],
            "body": form.cleaned_data["body"],
        }
        try:
            receive_webhook(channel=channel, request=signed_request(channel, [event]))
        except WebhookRejected as exc:
            form.add_error(None, exc.reason)
    phone = form.cleaned_data.get("phone", "")
    name = request.POST.get("name", "")[:200]
    if not request.htmx and not form.errors:
        return redirect(_simulator_url(request, channel, phone=phone, name=name))
    context = {
        "channel": channel,
        "phone": phone,
        "phone_display": format_phone(phone) if phone else "",
        "name": name,
        # After a send, an empty message box; after a refusal, what was typed and why.
        "message_form": form if form.errors else PhoneMessageForm(initial={"name": name}),
        "screen_messages": [],
    }
    if phone:
        context |= _screen(channel, phone)
    if request.htmx:
        return render(request, "channels_app/simulator/_send_response.html", context)
    context |= {
        "customer_form": CustomerForm(initial={"phone": phone, "name": name}),
        "customers": _simulated_customers(channel),
    }
    return render(request, "channels_app/simulator/index.html", context, status=400)


@require_POST
@tenant_view(Role.ADMIN)
def screen(request, channel_id: int):
    """The phone's periodic look: shows the conversation and reports what it displayed."""
    channel = _sandbox_channel_or_404(channel_id)
    try:
        phone = normalize_phone(request.GET.get("phone", ""))
    except InvalidPhoneNumber:
        phone = ""
    context = {"channel": channel, "phone": phone}
    context |= _screen(channel, phone)
    _report_displayed(channel, context["screen_messages"])
    return render(request, "channels_app/simulator/_screen.html", context)
