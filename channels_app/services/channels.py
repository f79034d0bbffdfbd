"""Channel setup: connect, edit, switch off, delete, test the connection, sync templates.

Every change to a channel's settings goes through these functions (views, tasks and the admin
call them). They write only the columns they change (`update_fields`): the inbound pipeline and
delivery update the health counters of the same row concurrently, and a full `save()` from a
settings form would put stale counters back.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app.models import Channel, MessageTemplate, new_webhook_token
from channels_app.providers.base import ConnectionCheck, ProviderError, provider_for

logger = logging.getLogger(__name__)

Kind = Channel.Kind

# The encrypted credentials of each kind: never rendered back, empty on edit means "keep".
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    Kind.TWILIO_WHATSAPP: ("twilio_auth_token", "twilio_webhook_signing_secret"),
    Kind.TWILIO_SMS: ("twilio_auth_token", "twilio_webhook_signing_secret"),
    Kind.META_WHATSAPP: ("meta_access_token", "meta_app_secret", "meta_verify_token"),
    Kind.SANDBOX: (),
}

# The plain settings each kind may change (besides name, activity and rate limit).
SETTING_FIELDS: dict[str, tuple[str, ...]] = {
    Kind.TWILIO_WHATSAPP: ("twilio_account_sid", "twilio_from", "twilio_messaging_service_sid"),
    Kind.TWILIO_SMS: (
        "twilio_account_sid",
        "twilio_from",
        "twilio_messaging_service_sid",
        "provider_confirms_opt_out",
    ),
    Kind.META_WHATSAPP: ("meta_phone_number_id", "meta_business_account_id", "sender"),
    Kind.SANDBOX: (),
}

COMMON_FIELDS = ("name", "is_active", "rate_limit_per_second")


class ChannelSetupError(ValueError):
    """A field does not belong to this kind of channel (a programming error, not user input)."""


def new_verify_token() -> str:
    """A verify token to paste into Meta's webhook settings (Meta echoes it in its handshake)."""
    return secrets.token_urlsafe(24)


def _allowed_fields(kind: str) -> set[str]:
    return {*COMMON_FIELDS, *SETTING_FIELDS[kind], *SECRET_FIELDS[kind]}


def _check_fields(kind: str, fields: dict) -> None:
    unknown = set(fields) - _allowed_fields(kind)
    if unknown:
        raise ChannelSetupError(f"{kind} channels have no {', '.join(sorted(unknown))}")


def _sender_of(channel: Channel) -> str:
    """What customers see as the sender (the list of channels shows it)."""
    if channel.kind in (Kind.TWILIO_WHATSAPP, Kind.TWILIO_SMS):
        return channel.twilio_from or channel.twilio_messaging_service_sid
    if channel.kind == Kind.SANDBOX:
        return ""
    return channel.sender


def create_channel(*, kind: str, name: str, **fields) -> Channel:
    """Connect a new channel of `kind` with its settings and credentials (already validated)."""
    kind = Kind(kind)
    _check_fields(kind, fields)
    channel = Channel(kind=kind, name=name.strip())
    if kind == Kind.TWILIO_SMS:
        # Twilio answers STOP on SMS numbers itself unless the account turned it off.
        channel.provider_confirms_opt_out = True
    for field, value in fields.items():
        setattr(channel, field, value)
    if kind == Kind.SANDBOX:
        # The simulator signs its webhooks with this key, as a provider would.
        channel.sandbox_secret = secrets.token_urlsafe(32)
    if kind == Kind.META_WHATSAPP and not channel.meta_verify_token:
        channel.meta_verify_token = new_verify_token()
    channel.sender = _sender_of(channel)
    channel.save()
    logger.info("channel %s (%s) connected", channel.pk, kind)
    return channel


def update_channel(*, channel: Channel, **changes) -> Channel:
    """Change settings; a secret passed as "" or None keeps its current value."""
    _check_fields(channel.kind, changes)
    changed = []
    for field, value in changes.items():
        if field in SECRET_FIELDS[channel.kind] and not value:
            continue
        if field == "name":
            value = value.strip()
        if getattr(channel, field) != value:
            setattr(channel, field, value)
            changed.append(field)
    sender = _sender_of(channel)
    if sender != channel.sender:
        channel.sender = sender
        changed.append("sender")
    credentials = set(SECRET_FIELDS[channel.kind]) | set(SETTING_FIELDS[channel.kind])
    if credentials & set(changed):
        # The last check was made with other credentials: it no longer says anything.
        channel.connection_ok = None
        channel.connection_detail = ""
        channel.connection_checked_at = None
        changed += ["connection_ok", "connection_detail", "connection_checked_at"]
    if changed:
        channel.save(update_fields=sorted(set(changed)))
    return channel


def set_channel_active(*, channel: Channel, active: bool) -> Channel:
    """Switch a channel off (nothing is sent through it; inbound is still received) or on."""
    if channel.is_active != active:
        channel.is_active = active
        channel.save(update_fields=["is_active"])
    return channel


def delete_channel(*, channel: Channel) -> None:
    """Delete the channel with its conversations, messages and templates."""
    logger.info("channel %s (%s) deleted", channel.pk, channel.kind)
    channel.delete()


def rotate_webhook_token(*, channel: Channel) -> Channel:
    """Give the channel new webhook URLs; the old ones answer 404 from now on."""
    channel.webhook_token = new_webhook_token()
    channel.save(update_fields=["webhook_token"])
    return channel


# --- Webhook URLs -------------------------------------------------------------------------


def _public(name: str, channel: Channel) -> str:
    return settings.PUBLIC_BASE_URL + reverse(name, kwargs={"token": channel.webhook_token})


def webhook_urls(channel: Channel) -> dict[str, str]:
    """What to paste into the provider's console, by label."""
    if channel.kind in (Kind.TWILIO_WHATSAPP, Kind.TWILIO_SMS):
        return {
            _("When a message comes in (inbound webhook)"): _public("hook_twilio_inbound", channel),
            _("Status callback URL"): _public("hook_twilio_status", channel),
        }
    if channel.kind == Kind.META_WHATSAPP:
        return {_("Callback URL"): _public("hook_meta", channel)}
    return {_("Simulator webhook"): _public("hook_sandbox", channel)}


# --- Connection check ---------------------------------------------------------------------


def check_connection(*, channel: Channel) -> ConnectionCheck:
    """Ask the provider whether the credentials work; the answer is kept for the health panel."""
    try:
        result = provider_for(channel).test_connection()
    except ProviderError as exc:
        result = ConnectionCheck(ok=False, detail=exc.reason)
    except Exception:  # the owner needs an answer in words, not a server error
        logger.exception("connection check of channel %s failed", channel.pk)
        result = ConnectionCheck(
            ok=False, detail=_("The check failed unexpectedly; try again in a minute.")
        )
    channel.connection_ok = result.ok
    channel.connection_detail = result.detail[:2000]
    channel.connection_checked_at = timezone.now()
    channel.save(update_fields=["connection_ok", "connection_detail", "connection_checked_at"])
    return result


# --- Templates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateSync:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    disabled: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


TEMPLATE_FIELDS = (
    "category",
    "status",
    "body",
    "variables",
    "provider_template_id",
    "components",
    "rejection_reason",
)
GONE_REASON = "No longer at the provider."


def _template_values(data) -> dict:
    status = data.status if data.status in MessageTemplate.Status.values else "pending"
    category = data.category if data.category in MessageTemplate.Category.values else ""
    return {
        "category": category,
        "status": status,
        "body": data.body or "",
        "variables": [str(v) for v in data.variables],
        "provider_template_id": (data.provider_template_id or "")[:128],
        "components": list(data.components or []),
        "rejection_reason": (data.rejection_reason or "")[:300],
    }


def sync_templates(*, channel: Channel) -> TemplateSync:
    """Bring the channel's templates in line with the provider's.

    Templates are keyed by name and language. Ones the provider no longer has are marked
    disabled, never deleted: sent messages point at them. Safe to run twice, and two syncs of
    the same channel at once take turns (the channel row is locked). Raises ProviderError.
    """
    fetched = provider_for(channel).fetch_templates()  # outside the transaction: network
    now = timezone.now()
    incoming: dict[tuple[str, str], dict] = {}
    for data in fetched:
        key = (str(data.name)[:512], str(data.language)[:16])
        if not key[0]:
            continue
        # Two provider items with one name and language cannot both be kept; the first wins.
        incoming.setdefault(key, _template_values(data))

    created = updated = unchanged = disabled = 0
    with transaction.atomic():
        Channel.objects.select_for_update().filter(pk=channel.pk).first()
        existing = {
            (t.name, t.language): t for t in MessageTemplate.objects.filter(channel=channel)
        }
        for key, values in incoming.items():
            template = existing.pop(key, None)
            if template is None:
                MessageTemplate.objects.create(
                    channel=channel, name=key[0], language=key[1], synced_at=now, **values
                )
                created += 1
                continue
            changed = [f for f in TEMPLATE_FIELDS if getattr(template, f) != values[f]]
            for field in changed:
                setattr(template, field, values[field])
            template.synced_at = now
            template.save(update_fields=[*changed, "synced_at"])
            if changed:
                updated += 1
            else:
                unchanged += 1
        for template in existing.values():
            if template.status != MessageTemplate.Status.DISABLED:
                template.status = MessageTemplate.Status.DISABLED
                template.rejection_reason = GONE_REASON
                template.synced_at = now
                template.save(update_fields=["status", "rejection_reason", "synced_at"])
                disabled += 1
        channel.templates_synced_at = now
        channel.save(update_fields=["templates_synced_at"])
    return TemplateSync(created=created, updated=updated, unchanged=unchanged, disabled=disabled)


def record_sync_failure(*, channel: Channel, reason: str) -> None:
    """A background sync failed: say so on the channel's health panel."""
    now = timezone.now()
    Channel.objects.filter(pk=channel.pk).update(
        last_error=_("Template sync failed: %(reason)s") % {"reason": reason}, last_error_at=now
    )


# --- Opt-out wording ----------------------------------------------------------------------

POLICY_FIELDS = (
    "extra_opt_out_keywords",
    "extra_opt_in_keywords",
    "extra_help_keywords",
    "opt_out_reply",
    "opt_in_reply",
    "help_reply",
)


def update_messaging_policy(*, policy, **changes):
    """Save the business's extra keywords and replies (validated by the form: no word means
    two things)."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ChannelSetupError(f"the messaging policy has no {', '.join(sorted(unknown))}")
    for field, value in changes.items():
        setattr(policy, field, value.strip())
    if changes:
        policy.save(update_fields=sorted(changes))
    return policy
