"""State changes of a conversation made by the team: assignment, status, notes, reading, and
consent recorded from the contact panel. One function per change; views call these only."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app.models import Conversation, Message
from privacy.models import ConsentAction, ConsentSource, Purpose

MAX_NOTE_LENGTH = 4000


def _save(conversation: Conversation, **changes) -> Conversation:
    # Writes only the fields that change, so a concurrent inbound message's updates of
    # last_message_at / unread_count are never overwritten with stale values.
    for name, value in changes.items():
        setattr(conversation, name, value)
    Conversation.objects.filter(pk=conversation.pk).update(**changes)
    return conversation


def assign(*, conversation: Conversation, assignee, by=None) -> Conversation:
    """Give the conversation to `assignee` (a member of the business), or to nobody (None)."""
    if assignee is not None:
        from tenants.models import Membership

        if not Membership.objects.filter(tenant_id=conversation.tenant_id, user=assignee).exists():
            raise ValidationError(
                _("%(person)s is not a member of this business.") % {"person": assignee},
                code="not_a_member",
            )
    if conversation.assignee_id == (assignee.pk if assignee else None):
        return conversation
    return _save(conversation, assignee=assignee)


def resolve(*, conversation: Conversation, by=None) -> Conversation:
    """Done for now; the customer's next message reopens it (the inbound pipeline does that)."""
    if conversation.status == Conversation.Status.RESOLVED:
        return conversation
    return _save(conversation, status=Conversation.Status.RESOLVED, resolved_at=timezone.now())


def reopen(*, conversation: Conversation, by=None) -> Conversation:
    if conversation.status == Conversation.Status.OPEN:
        return conversation
    return _save(conversation, status=Conversation.Status.OPEN, resolved_at=None)


def mark_pending(*, conversation: Conversation, by=None) -> Conversation:
    """Waiting on the customer or on someone else; stays out of the way but not resolved."""
    if conversation.status == Conversation.Status.PENDING:
        return conversation
    return _save(conversation, status=Conversation.Status.PENDING, resolved_at=None)


def set_status(*, conversation: Conversation, status: str, by=None) -> Conversation:
    """The status picker: the one of resolve / reopen / mark_pending that `status` names."""
    actions = {
        Conversation.Status.OPEN: reopen,
        Conversation.Status.PENDING: mark_pending,
        Conversation.Status.RESOLVED: resolve,
    }
    if status not in actions:
        raise ValidationError(_("Choose open, pending or resolved."), code="bad_status")
    return actions[status](conversation=conversation, by=by)


def hand_off(*, conversation: Conversation, reason: str) -> Conversation:
    """The bot steps back: the conversation waits, unassigned and open, for a person, and
    agents see `reason`. The bot stays quiet in it until someone lets it answer again."""
    return _save(
        conversation,
        assignee=None,
        status=Conversation.Status.OPEN,
        resolved_at=None,
        bot_active=False,
        handoff_reason=(reason or "")[:200],
    )


def resume_bot(*, conversation: Conversation, by=None) -> Conversation:
    """Let the bot answer this conversation again (after a hand-off)."""
    if conversation.bot_active and not conversation.handoff_reason:
        return conversation
    return _save(conversation, bot_active=True, handoff_reason="")


def mark_read(*, conversation: Conversation) -> Conversation:
    """Someone opened the thread: nothing in it is unread any more."""
    if conversation.unread_count == 0:
        return conversation
    # Conditional: a read of an already-read conversation costs no write.
    Conversation.objects.filter(pk=conversation.pk, unread_count__gt=0).update(unread_count=0)
    conversation.unread_count = 0
    return conversation


def add_note(*, conversation: Conversation, body: str, author) -> Message:
    """An internal note: visible to the team in the thread, never sent to the customer."""
    body = (body or "").strip()
    if not body:
        raise ValidationError(_("Write the note first."), code="empty")
    if len(body) > MAX_NOTE_LENGTH:
        raise ValidationError(
            _("A note can be at most %(limit)d characters.") % {"limit": MAX_NOTE_LENGTH},
            code="too_long",
        )
    return Message.objects.create(
        conversation=conversation,
        channel=conversation.channel,
        direction=Message.Direction.NOTE,
        sender_kind=Message.SenderKind.AGENT,
        author=author,
        body=body,
        # Notes never leave: "received" is the first status, which no delivery path picks up.
        status=Message.Status.RECEIVED,
    )


CONSENT_PURPOSES = {
    "transactional": [Purpose.TRANSACTIONAL],
    "marketing": [Purpose.MARKETING],
    "both": [Purpose.TRANSACTIONAL, Purpose.MARKETING],
}


@transaction.atomic
def record_contact_consent(
    *,
    contact,
    medium: str,
    purposes: str,
    action: str,
    evidence: str,
    recorded_by,
    channel=None,
):
    """Consent the team learned of (on the phone, on paper): appended to the ledger with who
    recorded it and the evidence they give. `purposes` is transactional, marketing or both."""
    from channels_app.models import Medium
    from privacy.services import record_consent

    errors = {}
    if medium not in Medium.values:
        errors["medium"] = _("Choose WhatsApp or SMS.")
    if purposes not in CONSENT_PURPOSES:
        errors["purposes"] = _("Choose what the consent covers.")
    if action not in ConsentAction.values:
        errors["action"] = _("Choose whether consent was given or withdrawn.")
    evidence = (evidence or "").strip()
    if not evidence:
        errors["evidence"] = _(
            "Say how you know, e.g. “Agreed on the phone on 3 May, call with Dana”."
        )
    if errors:
        raise ValidationError(errors)
    return record_consent(
        contact=contact,
        media=[medium],
        purposes=CONSENT_PURPOSES[purposes],
        action=action,
        source=ConsentSource.AGENT,
        evidence=evidence,
        channel=channel,
        recorded_by=recorded_by,
    )
