"""The consent gate (P1): `can_message` is the only way to decide whether a message may go.

Every send path (agent, bot, campaign, automation, API) reaches it through
`channels_app.services.sending.send_message`. The decision explains itself with a reason code
and words an agent can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext as _

from privacy.models import ConsentAction, ConsentState, Purpose

# A third purpose, used only by the opt-out machinery itself: the one confirmation of STOP,
# START or HELP, in reply to the customer's own keyword.
COMPLIANCE = "compliance"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # a stable code: tests, the API and the UI switch on it
    detail: str  # in words, for the agent

    def __bool__(self) -> bool:
        return self.allowed


def _deny(reason: str, detail: str) -> Decision:
    return Decision(False, reason, detail)


def _allow(reason: str, detail: str) -> Decision:
    return Decision(True, reason, detail)


# Senders a restriction of processing stops (P6): the person's data is kept, but nothing
# automatic acts on it. Agents can still answer them.
AUTOMATED_SENDERS = frozenset({"bot", "campaign", "automation"})


def automation_allowed(contact) -> Decision:
    """May the bot, a campaign or an automation act on this contact at all? The bot asks this
    before it reads the conversation; `can_message` asks it for every automated send."""
    if contact.processing_restricted_at is not None:
        return _deny(
            "processing_restricted",
            _(
                "The customer asked to restrict processing of their data (%(when)s): no bot, "
                "campaigns or automations."
            )
            % {"when": _when(contact.processing_restricted_at)},
        )
    return _allow("not_restricted", _("Processing is not restricted."))


def consent_states(contact, medium: str) -> dict[str, ConsentState]:
    return {
        state.purpose: state
        for state in ConsentState.objects.filter(contact=contact, medium=medium)
    }


def can_message(contact, channel, purpose: str, *, now=None, sender_kind: str = "") -> Decision:
    """May `channel` send `contact` a message for `purpose` (transactional or marketing)?

    - an opt-out (STOP, a provider's "unsubscribed" error, a withdrawal) always wins;
    - marketing needs recorded marketing consent, whatever the conversation;
    - transactional needs recorded consent (either purpose) or a message from the customer on
      this channel within the last 24 hours: writing to a business is consent to its reply,
      never to marketing;
    - a contact whose processing is restricted gets nothing from the bot, campaigns or
      automations (`sender_kind`), whatever the consent.
    """
    from channels_app.models import SERVICE_WINDOW, Conversation
    from tenants.context import get_current_tenant

    business = get_current_tenant()
    if business is not None and business.is_locked:
        return _deny("business_locked", _("This business is scheduled for deletion."))
    if not channel.is_active:
        return _deny("channel_inactive", _("This channel is switched off."))
    if not contact.phone:
        return _deny("no_phone", _("The contact has no phone number."))

    states = consent_states(contact, channel.medium)
    transactional = states.get(Purpose.TRANSACTIONAL)
    marketing = states.get(Purpose.MARKETING)

    if purpose == COMPLIANCE:
        return _allow("compliance_reply", _("A reply to the customer's own keyword."))

    if sender_kind in AUTOMATED_SENDERS:
        restriction = automation_allowed(contact)
        if not restriction.allowed:
            return restriction

    if transactional is not None and transactional.action == ConsentAction.WITHDRAWN:
        return _deny(
            "opted_out",
            _("The customer opted out of messages on %(medium)s (%(when)s).")
            % {"medium": channel.get_kind_display(), "when": _when(transactional.changed_at)},
        )

    if purpose == Purpose.MARKETING:
        if marketing is not None and marketing.action == ConsentAction.GRANTED:
            return _allow("marketing_consent", _("The customer agreed to marketing messages."))
        if marketing is not None and marketing.action == ConsentAction.WITHDRAWN:
            return _deny(
                "marketing_withdrawn",
                _("The customer stopped marketing messages (%(when)s).")
                % {"when": _when(marketing.changed_at)},
            )
        return _deny(
            "no_marketing_consent",
            _("There is no record that the customer agreed to marketing messages."),
        )

    if purpose != Purpose.TRANSACTIONAL:
        raise ValueError(f"unknown purpose {purpose!r}")

    if any(state.action == ConsentAction.GRANTED for state in states.values()):
        return _allow("consent", _("The customer agreed to messages from the business."))
    last_inbound_at = (
        Conversation.objects.filter(contact=contact, channel=channel)
        .values_list("last_inbound_at", flat=True)
        .first()
    )
    now = now or timezone.now()
    if last_inbound_at is not None and now - last_inbound_at < SERVICE_WINDOW:
        return _allow("reply_window", _("A reply to the customer's message of the last 24 hours."))
    return _deny(
        "no_consent",
        _(
            "The customer has not written in the last 24 hours and there is no record that "
            "they agreed to messages. Record their consent first."
        ),
    )


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
