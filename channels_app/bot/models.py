"""The AI bot's records. Imported by `channels_app.models`, so they belong to that app."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from salesos.encryption import EncryptedTextField
from tenants.models import TenantOwned


class BotProfile(TenantOwned):
    """How the bot behaves: one per business (`channel` empty) and optional overrides per
    channel. `channels_app.bot.profiles.effective_profile(channel)` picks the right one."""

    channel = models.OneToOneField(
        "channels_app.Channel",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="bot_profile",
    )
    enabled = models.BooleanField(_("bot answers customers"), default=False)
    instructions = models.TextField(_("instructions"), blank=True)
    tone = models.CharField(_("tone"), max_length=100, blank=True, default="friendly and brief")
    model = models.CharField(_("model"), max_length=100, blank=True)
    temperature = models.DecimalField(
        _("temperature"),
        max_digits=3,
        decimal_places=2,
        default=Decimal("0.30"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("2"))],
    )
    # Comma-separated language codes the bot answers in; empty = the customer's language.
    languages = models.CharField(_("languages"), max_length=100, blank=True)
    # Working hours in the business's time zone: {"mon": [["09:00", "18:00"]], ...};
    # empty = always.
    working_hours = models.JSONField(_("working hours"), default=dict, blank=True)
    # One phrase per line; a customer message containing one hands off to a person.
    handoff_phrases = models.TextField(
        _("hand-off phrases"), blank=True, default="operator\nhuman\nagent\nperson"
    )
    max_reply_chars = models.PositiveIntegerField(
        _("maximum reply length (characters)"),
        default=600,
        validators=[MinValueValidator(50), MaxValueValidator(4000)],
    )
    greeting = models.TextField(_("greeting for new conversations"), blank=True)
    # Sent to the customer when the bot hands the conversation to a person (empty: nothing is
    # sent, the customer just waits).
    handoff_message = models.TextField(
        _("message to the customer when handing over"),
        blank=True,
        default="Thanks! A member of our team will reply here shortly.",
    )
    mask_personal_data = models.BooleanField(
        _("mask phone numbers and e-mail addresses sent to the AI provider"), default=True
    )
    # Hand off after this many failed answers in a row.
    max_failures = models.PositiveSmallIntegerField(default=2)
    # Provider override (per business): any OpenAI-compatible server. Empty = the platform's.
    api_base_url = models.URLField(_("API base URL"), blank=True)
    api_key = EncryptedTextField(_("API key"), blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(channel__isnull=True),
                name="bot_profile_one_default_per_tenant",
            )
        ]

    def __str__(self):
        return f"Bot profile ({self.channel or 'default'})"


class KnowledgeDocument(TenantOwned):
    class Kind(models.TextChoices):
        TEXT = "text", _("text")
        MARKDOWN = "markdown", _("Markdown")
        FILE = "file", _("uploaded file")
        WEB_PAGE = "web_page", _("web page text")

    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.TEXT)
    # File name or page address the text came from.
    source = models.CharField(_("source"), max_length=500, blank=True)
    # The full text (extracted from a file when uploaded); chunks are made from it.
    content = models.TextField(_("content"))
    # Text search configuration language ("english", "spanish", "russian", "simple"...).
    language = models.CharField(max_length=32, default="english")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]

    def __str__(self):
        return self.title


class KnowledgeChunk(TenantOwned):
    document = models.ForeignKey(KnowledgeDocument, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    text = models.TextField()
    # PostgreSQL: the chunk's tsvector (title weighted A, text B) in the document's language,
    # with a GIN index; unused on SQLite.
    search_vector = SearchVectorField(null=True, editable=False)

    class Meta:
        ordering = ["document", "position"]
        constraints = [
            models.UniqueConstraint(fields=["document", "position"], name="chunk_position_unique")
        ]
        indexes = [GinIndex(fields=["search_vector"], name="knowledge_chunk_search")]


class KnowledgeTerm(TenantOwned):
    """How many of the business's chunks contain each search lexeme (PostgreSQL): retrieval
    searches by the question's telling words and leaves out those found nearly everywhere,
    so a large knowledge base is not ranked in full for every question. Kept in step with
    the chunks by `channels_app.bot.knowledge`."""

    # Row-level security keeps PostgreSQL from using the GIN index for `@@` (the operator is
    # not leakproof, so it may only run after the policy's check): the ids of the chunks
    # holding a word are kept here while they are few (POSTINGS_CAP), and retrieval fetches
    # its candidates by primary key. NULL: too many (or not known since a bulk change).
    POSTINGS_CAP = 2000

    lexeme = models.TextField()
    chunks = models.IntegerField(default=0)
    chunk_ids = ArrayField(models.BigIntegerField(), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "lexeme"], name="knowledge_term_unique")
        ]


class TokenBalance(TenantOwned):
    """The business's AI token balance; the bot stops at zero."""

    tokens_remaining = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="token_balance_one")]


class AIUsage(TenantOwned):
    """One metered AI call (or one local-responder answer, at zero cost)."""

    class Purpose(models.TextChoices):
        REPLY = "reply", _("reply to a customer")
        TRY_IT = "try_it", _("\u201ctry it\u201d box")

    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.REPLY)
    provider = models.CharField(max_length=32)  # "openai" (any compatible server) or "local"
    model = models.CharField(max_length=100)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    conversation = models.ForeignKey(
        "channels_app.Conversation", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "created_at"], name="ai_usage_tenant_time")]


class BotRun(TenantOwned):
    """What the bot did with one inbound message, and what it sent the AI provider (P5): ids
    and counts, never a second copy of the text."""

    class Outcome(models.TextChoices):
        ANSWERED = "answered", _("answered")
        HANDED_OFF = "handed_off", _("handed off to a person")
        SKIPPED = "skipped", _("did not answer")
        FAILED = "failed", _("failed")

    conversation = models.ForeignKey(
        "channels_app.Conversation", on_delete=models.CASCADE, related_name="bot_runs"
    )
    # The customer message that started the run (unique: a re-run is a no-op).
    inbound_message = models.OneToOneField(
        "channels_app.Message", on_delete=models.CASCADE, related_name="bot_run"
    )
    # The bot's answer, when it sent one.
    reply_message = models.OneToOneField(
        "channels_app.Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="answered_by_run",
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.CharField(max_length=200, blank=True)
    chunk_ids = models.JSONField(default=list, blank=True)
    context_message_ids = models.JSONField(default=list, blank=True)
    usage = models.ForeignKey(AIUsage, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
