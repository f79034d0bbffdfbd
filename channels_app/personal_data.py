"""Personal data held by messaging and the bot (see privacy/registry.py)."""

from channels_app import models as channels
from privacy.registry import Erasure, Retention, Unmatched, declare

declare(
    channels.Conversation,
    fields=("last_message_preview", "handoff_reason"),
    subject_path="contact",
    erasure=Erasure.DELETE,
    retention=Retention.MESSAGES,
    expires_by="resolved_at",
    note="Removed with its last message, once resolved for the retention period.",
)
declare(
    channels.Message,
    fields=("body", "media", "template_variables"),
    subject_path="conversation__contact",
    erasure=Erasure.DELETE,
    retention=Retention.MESSAGES,
    expires_by="conversation__resolved_at",
    # The thread index (tenant, conversation, created_at, id): the purge reads the business's
    # messages in slices of it, never the other businesses' rows between them.
    purge_walk=("conversation_id", "created_at", "id"),
)
declare(
    channels.MessageStatusEvent,
    fields=("error_reason",),
    subject_path="message__conversation__contact",
    erasure=Erasure.DELETE,
    retention=Retention.MESSAGES,
    expires_by="message__conversation__resolved_at",
    # The index of its uniqueness (tenant, channel, provider id, provider status).
    purge_walk=("channel_id", "provider_message_id", "provider_status"),
    # A status for a message we never matched is raw provider data: kept as long as payloads.
    unmatched=Unmatched(
        key="message", retention=Retention.WEBHOOK_PAYLOADS, expires_by="received_at"
    ),
)
declare(
    channels.InboundWebhook,
    fields=("body",),
    erasure=Erasure.SCAN_AND_DELETE,
    retention=Retention.WEBHOOK_PAYLOADS,
    expires_by="received_at",
    note="Raw provider payloads: the sender's number and the message text, as received.",
)
declare(
    channels.BotRun,
    subject_path="conversation__contact",
    erasure=Erasure.DELETE,
    retention=Retention.MESSAGES,
    expires_by="conversation__resolved_at",
    note="Ids and counts of what went to the AI provider; no text.",
)
declare(
    channels.AIUsage,
    fields=(),
    subject_path="conversation__contact",
    erasure=Erasure.ANONYMISE,
    retention=Retention.BUSINESS,
    note="Token counts and cost stay for billing; the link to the conversation goes.",
)
declare(
    channels.KnowledgeDocument,
    fields=("content",),
    erasure=Erasure.SCAN_AND_DELETE,
    retention=Retention.BUSINESS,
    note="The business's own knowledge base; scanned in case a customer's words were pasted in.",
)
declare(
    channels.KnowledgeChunk,
    fields=("text",),
    erasure=Erasure.SCAN_AND_DELETE,
    retention=Retention.BUSINESS,
    note="Chunks and their search vectors, derived from the documents.",
)
declare(
    channels.KnowledgeTerm,
    fields=("lexeme",),
    erasure=Erasure.SCAN_AND_DELETE,
    retention=Retention.BUSINESS,
    note="Word counts of the knowledge base's chunks, for search.",
)
for model in (
    channels.Channel,
    channels.MessageTemplate,
    channels.BotProfile,
    channels.TokenBalance,
):
    declare(model, erasure=Erasure.NOT_CUSTOMER_DATA, retention=Retention.BUSINESS)
