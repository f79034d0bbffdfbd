"""Channels (connected senders), conversations, messages, delivery events and templates.

Provider wire formats never appear here: adapters in `channels_app.providers` turn webhooks
into normalised events and messages into provider calls.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from salesos.encryption import EncryptedTextField
from tenants.models import TenantOwned

# The WhatsApp customer-service window: free-form replies within 24 hours of the customer's
# last message; outside it only approved templates.
SERVICE_WINDOW = timedelta(hours=24)


def new_webhook_token() -> str:
    # 256 bits, URL-safe: the channel's webhook URLs are unguessable.
    return secrets.token_urlsafe(32)


class Medium(models.TextChoices):
    """How a message reaches the customer; consent is recorded per medium."""

    WHATSAPP = "whatsapp", _("WhatsApp")
    SMS = "sms", _("SMS")


class Channel(TenantOwned):
    class Kind(models.TextChoices):
        TWILIO_WHATSAPP = "twilio_whatsapp", _("WhatsApp via Twilio")
        TWILIO_SMS = "twilio_sms", _("SMS via Twilio")
        META_WHATSAPP = "meta_whatsapp", _("WhatsApp Cloud API (Meta)")
        SANDBOX = "sandbox", _("Sandbox (simulated phone)")

    # Messages per second each kind allows by default (providers' published limits; editable).
    DEFAULT_RATE_PER_SECOND = {
        Kind.TWILIO_WHATSAPP: 80,
        Kind.TWILIO_SMS: 1,  # a US long code; toll-free and short codes allow more
        Kind.META_WHATSAPP: 80,
        Kind.SANDBOX: 20,
    }

    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100)
    # What customers see as the sender, E.164 when it is a number.
    sender = models.CharField(_("sender"), max_length=64, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    webhook_token = models.CharField(
        max_length=64, unique=True, default=new_webhook_token, editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    # Twilio (WhatsApp and SMS)
    twilio_account_sid = models.CharField(_("account SID"), max_length=64, blank=True)
    twilio_auth_token = EncryptedTextField(_("auth token"), blank=True)
    twilio_from = models.CharField(
        _("sender number"), max_length=32, blank=True, help_text=_("E.164, e.g. +14155550123")
    )
    twilio_messaging_service_sid = models.CharField(
        _("messaging service SID"), max_length=64, blank=True
    )
    # Only for webhooks signed with a Twilio shared key (X-Twilio-Webhooks-Signature-Settings)
    # instead of the account's auth token.
    twilio_webhook_signing_secret = EncryptedTextField(_("webhook shared key"), blank=True)

    # Meta WhatsApp Cloud API
    meta_phone_number_id = models.CharField(_("phone number ID"), max_length=64, blank=True)
    meta_business_account_id = models.CharField(
        _("WhatsApp business account ID"), max_length=64, blank=True
    )
    meta_access_token = EncryptedTextField(_("access token"), blank=True)
    meta_app_secret = EncryptedTextField(_("app secret"), blank=True)
    meta_verify_token = EncryptedTextField(_("webhook verify token"), blank=True)

    # Sandbox: the simulator signs its webhooks with this key, like a provider would.
    sandbox_secret = EncryptedTextField(blank=True)

    # Twilio answers STOP on SMS numbers itself by default; then we record the opt-out but do
    # not send a second confirmation.
    provider_confirms_opt_out = models.BooleanField(
        _("the provider confirms opt-outs itself"), default=False
    )

    # Sending rate (token bucket shared by every worker).
    rate_limit_per_second = models.PositiveIntegerField(
        _("messages per second"),
        null=True,
        blank=True,
        help_text=_("Empty: the provider's published default for this kind of channel."),
    )

    # Health panel
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    rejected_signatures = models.PositiveIntegerField(default=0)
    rejected_malformed = models.PositiveIntegerField(default=0)
    last_rejection_at = models.DateTimeField(null=True, blank=True)
    last_rejection_reason = models.CharField(max_length=300, blank=True)
    connection_checked_at = models.DateTimeField(null=True, blank=True)
    connection_ok = models.BooleanField(null=True)
    connection_detail = models.TextField(blank=True)
    templates_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def medium(self) -> str:
        return Medium.SMS if self.kind == self.Kind.TWILIO_SMS else Medium.WHATSAPP

    @property
    def is_whatsapp(self) -> bool:
        return self.medium == Medium.WHATSAPP

    @property
    def effective_rate_per_second(self) -> int:
        return self.rate_limit_per_second or self.DEFAULT_RATE_PER_SECOND[self.Kind(self.kind)]


class Conversation(TenantOwned):
    """One thread per contact and channel; a new message reopens a resolved one."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending")
        RESOLVED = "resolved", _("Resolved")

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, related_name="conversations"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
    )
    bot_active = models.BooleanField(default=True)
    # Why the conversation waits for a person (bot handoff), shown to agents.
    handoff_reason = models.CharField(max_length=200, blank=True)
    # The customer's last message: opens the 24-hour window.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(default=timezone.now)
    last_message_preview = models.CharField(max_length=200, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "contact"], name="conversation_one_per_contact"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "-last_message_at", "-id"], name="conversation_recent"),
            models.Index(
                fields=["tenant", "assignee", "status", "-last_message_at"],
                name="conversation_assignee",
            ),
        ]

    def __str__(self):
        return f"{self.contact} on {self.channel}"

    def window_open(self, now=None) -> bool:
        if self.last_inbound_at is None:
            return False
        return (now or timezone.now()) - self.last_inbound_at < SERVICE_WINDOW

    def window_closes_at(self):
        return self.last_inbound_at + SERVICE_WINDOW if self.last_inbound_at else None


class MessageTemplate(TenantOwned):
    """A WhatsApp template as the provider approved it, synced from Meta or Twilio's Content API."""

    class Status(models.TextChoices):
        APPROVED = "approved", _("Approved")
        PENDING = "pending", _("Pending approval")
        REJECTED = "rejected", _("Rejected")
        PAUSED = "paused", _("Paused")
        DISABLED = "disabled", _("Disabled")

    class Category(models.TextChoices):
        MARKETING = "marketing", _("Marketing")
        UTILITY = "utility", _("Utility")
        AUTHENTICATION = "authentication", _("Authentication")

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=16, choices=Category.choices, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # The body with its placeholders ({{1}}, {{2}} or {{name}}), and the variables' names in order.
    body = models.TextField(blank=True)
    variables = models.JSONField(default=list, blank=True)
    # Twilio Content SID (HX…) or Meta template id.
    provider_template_id = models.CharField(max_length=128, blank=True)
    # Provider-specific structure needed to send it (Meta components), kept as received.
    components = models.JSONField(default=list, blank=True)
    rejection_reason = models.CharField(max_length=300, blank=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "name", "language"], name="template_unique_name"
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.language})"

    @property
    def is_approved(self) -> bool:
        return self.status == self.Status.APPROVED

    @property
    def category_purpose(self) -> str:
        """The consent purpose sending this template needs (marketing templates: marketing)."""
        return "marketing" if self.category == self.Category.MARKETING else "transactional"


class Message(TenantOwned):
    class Direction(models.TextChoices):
        INBOUND = "inbound", _("from the customer")
        OUTBOUND = "outbound", _("to the customer")
        NOTE = "note", _("internal note")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        ACCEPTED = "accepted", _("Accepted by the provider")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        UNDELIVERED = "undelivered", _("Undelivered")
        CANCELED = "canceled", _("Canceled")

    # Statuses only move forward: a late "sent" never undoes "delivered"; terminal ones stay.
    STATUS_RANK = {
        Status.RECEIVED: 0,
        Status.QUEUED: 10,
        Status.SENDING: 20,
        Status.ACCEPTED: 30,
        Status.SENT: 40,
        Status.DELIVERED: 50,
        Status.READ: 60,
    }
    TERMINAL_STATUSES = frozenset({Status.FAILED, Status.UNDELIVERED, Status.CANCELED})

    class SenderKind(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        AGENT = "agent", _("Agent")
        BOT = "bot", _("Bot")
        CAMPAIGN = "campaign", _("Campaign")
        AUTOMATION = "automation", _("Automation")
        API = "api", _("API")
        SYSTEM = "system", _("System")  # opt-out confirmations, HELP replies

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    sender_kind = models.CharField(max_length=16, choices=SenderKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    body = models.TextField(blank=True)
    # [{"provider_media_id"|"url", "content_type", "filename", "size"}]; bytes are fetched
    # through the provider, with its credentials, when someone opens them.
    media = models.JSONField(default=list, blank=True)
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    template_variables = models.JSONField(default=dict, blank=True)
    # transactional / marketing / compliance: what the consent gate was asked for.
    purpose = models.CharField(max_length=16, blank=True)

    provider_message_id = models.CharField(max_length=128, blank=True)
    idempotency_key = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=32, blank=True)
    error_reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # A provider retrying its webhook cannot store the message twice.
            models.UniqueConstraint(
                fields=["tenant", "channel", "provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="message_unique_provider_id",
            ),
            # A caller retrying a send cannot queue it twice.
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="message_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "conversation", "created_at", "id"], name="message_thread"
            ),
            # The recovery job looks for outbound messages stuck before the provider every
            # minute; only those few rows are in this index.
            models.Index(
                fields=["status", "status_changed_at"],
                condition=models.Q(status__in=["queued", "sending"]),
                name="message_pending_delivery",
            ),
        ]

    def __str__(self):
        return f"{self.direction} {self.status}: {self.body[:40]}"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL_STATUSES

    def can_move_to(self, status: str) -> bool:
        """Forward-only: terminal statuses never change; others only move up the ranking."""
        if self.status in self.TERMINAL_STATUSES or status == self.status:
            return False
        if status in self.TERMINAL_STATUSES:
            return True
        return self.STATUS_RANK.get(status, -1) > self.STATUS_RANK.get(self.status, -1)


class MessageStatusEvent(TenantOwned):
    """Every delivery status a provider reported, kept even when it did not change the message.

    An event can arrive before the send that produced its message id was recorded (the provider
    is faster than our status write): it is kept with no message and applied when the id is.
    """

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="status_events"
    )
    provider_message_id = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=Message.Status.choices)
    provider_status = models.CharField(max_length=32)
    error_code = models.CharField(max_length=32, blank=True)
    error_reason = models.TextField(blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    applied = models.BooleanField(default=False)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            # The same report delivered twice is one event.
            models.UniqueConstraint(
                fields=["tenant", "channel", "provider_message_id", "provider_status"],
                name="status_event_unique",
            )
        ]
        indexes = [
            models.Index(
                fields=["tenant", "channel", "provider_message_id"], name="status_event_lookup"
            )
        ]


class InboundWebhook(TenantOwned):
    """The raw body of an accepted webhook carrying customer messages (status callbacks are
    kept as MessageStatusEvent rows only), for troubleshooting; purged after the tenant's
    `webhook_payload_retention_days` and included in erasure."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    received_at = models.DateTimeField(default=timezone.now)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.TextField()
    events = models.PositiveSmallIntegerField(default=0)
    duplicates = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["tenant", "received_at"], name="webhook_received")]


# The bot's models live beside its code; importing them here makes them this app's models.
from channels_app.bot.models import (  # noqa: E402, F401
    AIUsage,
    BotProfile,
    BotRun,
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeTerm,
    TokenBalance,
)
