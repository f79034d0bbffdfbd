"""Privacy writes: the consent ledger and opt-out handling (P1, P2).

`record_consent` is the one way consent changes: it appends to the ledger and updates the
derived state the gate reads, in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from privacy.gate import COMPLIANCE, consent_states
from privacy.keywords import Keyword, classify, keyword_table, normalise, split_extra
from privacy.models import (
    ConsentAction,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    MessagingPolicy,
    Purpose,
)

# Default replies in the business's language; a business can write its own.
DEFAULT_REPLIES = {
    "en": {
        Keyword.OPT_OUT: "You have been unsubscribed from {business} and will receive no more "
        "messages. Reply START to subscribe again.",
        Keyword.OPT_IN: "You are subscribed to messages from {business} again. "
        "Reply STOP to unsubscribe.",
        Keyword.HELP: "{business}: reply to this message to reach our team. "
        "Reply STOP to unsubscribe.",
    },
    "es": {
        Keyword.OPT_OUT: "Te has dado de baja de {business} y no recibirás más mensajes. "
        "Responde ALTA para volver a suscribirte.",
        Keyword.OPT_IN: "Vuelves a recibir mensajes de {business}. Responde BAJA para darte de "
        "baja.",
        Keyword.HELP: "{business}: responde a este mensaje para hablar con nuestro equipo. "
        "Responde BAJA para darte de baja.",
    },
    "pt": {
        Keyword.OPT_OUT: "Você cancelou a inscrição em {business} e não receberá mais "
        "mensagens. Responda INICIAR para voltar.",
        Keyword.OPT_IN: "Você voltou a receber mensagens de {business}. Responda SAIR para "
        "cancelar.",
        Keyword.HELP: "{business}: responda esta mensagem para falar com nossa equipe. "
        "Responda SAIR para cancelar.",
    },
    "ru": {
        Keyword.OPT_OUT: "Вы отписались от сообщений {business} и больше их не получите. "
        "Ответьте СТАРТ, чтобы подписаться снова.",
        Keyword.OPT_IN: "Вы снова подписаны на сообщения {business}. Ответьте СТОП, чтобы "
        "отписаться.",
        Keyword.HELP: "{business}: ответьте на это сообщение, чтобы связаться с нами. "
        "Ответьте СТОП, чтобы отписаться.",
    },
}

ALL_MEDIA_OPT_OUTS = frozenset({normalise("STOPALL")})


def messaging_policy() -> MessagingPolicy:
    """The active business's opt-out wording (created with defaults on first use)."""
    policy, _ = MessagingPolicy.objects.get_or_create()
    return policy


@transaction.atomic
def record_consent(
    *,
    contact,
    media: Iterable[str],
    purposes: Iterable[str],
    action: str,
    source: str,
    evidence: str = "",
    channel=None,
    message=None,
    recorded_by=None,
) -> list[ConsentEvent]:
    """Append one event per medium and purpose and update the derived state."""
    now = timezone.now()
    events = []
    for medium in media:
        for purpose in purposes:
            event = ConsentEvent.objects.create(
                contact=contact,
                medium=medium,
                purpose=purpose,
                action=action,
                source=source,
                evidence=evidence[:2000],
                channel=channel,
                message=message,
                recorded_by=recorded_by,
                created_at=now,
            )
            _derive_state(event)
            events.append(event)
    return events


def _derive_state(event: ConsentEvent) -> ConsentState:
    """The state for the event's contact, medium and purpose is the latest event's."""
    state, _ = ConsentState.objects.update_or_create(
        contact=event.contact,
        medium=event.medium,
        purpose=event.purpose,
        defaults={
            "action": event.action,
            "source": event.source,
            "last_event": event,
            "changed_at": event.created_at,
        },
    )
    return state


@transaction.atomic
def rederive_consent_states(*, contact) -> list[ConsentState]:
    """Rebuild a contact's derived consent from its whole ledger (after two contacts' ledgers
    were merged): per medium and purpose, the latest event decides."""
    latest: dict[tuple[str, str], ConsentEvent] = {}
    for event in ConsentEvent.objects.filter(contact=contact).order_by("created_at", "id"):
        latest[(event.medium, event.purpose)] = event
    ConsentState.objects.filter(contact=contact).exclude(
        pk__in=[
            state.pk
            for state in ConsentState.objects.filter(contact=contact)
            if (state.medium, state.purpose) in latest
        ]
    ).delete()
    return [_derive_state(event) for event in latest.values()]


@transaction.atomic
def record_consent_bulk(
    *,
    contact_ids: Iterable[int],
    media: Iterable[str],
    purposes: Iterable[str],
    action: str,
    source: str,
    evidence: str = "",
    recorded_by=None,
    keep_withdrawals: bool = False,
) -> int:
    """`record_consent` for many contacts at once (imports): the same events and the same
    derived state, written with a few bulk queries instead of two per event.

    With `keep_withdrawals`, a (contact, medium, purpose) whose current state is a withdrawal
    gets no event: an attestation by the business never overrides the customer's own
    opt-out. Returns the number of events written.
    """
    contact_ids = list(dict.fromkeys(contact_ids))
    media, purposes = list(media), list(purposes)
    if not contact_ids or not media or not purposes:
        return 0
    from tenants.context import require_current_tenant

    tenant = require_current_tenant()
    now = timezone.now()
    states = {
        (state.contact_id, state.medium, state.purpose): state
        for state in ConsentState.objects.filter(
            contact_id__in=contact_ids, medium__in=media, purpose__in=purposes
        )
    }
    events = []
    for contact_id in contact_ids:
        for medium in media:
            for purpose in purposes:
                state = states.get((contact_id, medium, purpose))
                if (
                    keep_withdrawals
                    and state is not None
                    and state.action == ConsentAction.WITHDRAWN
                ):
                    continue
                events.append(
                    ConsentEvent(
                        tenant=tenant,
                        contact_id=contact_id,
                        medium=medium,
                        purpose=purpose,
                        action=action,
                        source=source,
                        evidence=evidence[:2000],
                        recorded_by=recorded_by,
                        created_at=now,
                    )
                )
    ConsentEvent.objects.bulk_create(events)
    new_states, changed_states = [], []
    for event in events:
        key = (event.contact_id, event.medium, event.purpose)
        state = states.get(key)
        if state is None:
            new_states.append(
                ConsentState(
                    tenant=tenant,
                    contact_id=event.contact_id,
                    medium=event.medium,
                    purpose=event.purpose,
                    action=action,
                    source=source,
                    last_event=event,
                    changed_at=now,
                )
            )
        else:
            state.action, state.source = action, source
            state.last_event, state.changed_at = event, now
            changed_states.append(state)
    ConsentState.objects.bulk_create(new_states)
    ConsentState.objects.bulk_update(
        changed_states, ["action", "source", "last_event", "changed_at"]
    )
    return len(events)


def is_opted_out(contact, medium: str) -> bool:
    state = consent_states(contact, medium).get(Purpose.TRANSACTIONAL)
    return state is not None and state.action == ConsentAction.WITHDRAWN


def _marketing_was_stopped_by_keyword(contact, medium: str) -> bool:
    """Did the last opt-out keyword take away a marketing consent the customer had given?"""
    last_two = list(
        ConsentEvent.objects.filter(
            contact=contact, medium=medium, purpose=Purpose.MARKETING
        ).order_by("-created_at", "-id")[:2]
    )
    return (
        len(last_two) == 2
        and last_two[0].action == ConsentAction.WITHDRAWN
        and last_two[0].source == ConsentSource.KEYWORD
        and last_two[1].action == ConsentAction.GRANTED
    )


# `classify` never takes a longer normalised text for a keyword, whatever the business added.
LONGEST_KEYWORD = 40


def keyword_of(message, *, contact, channel) -> Keyword | None:
    """What an inbound message means for consent, if anything."""
    from tenants.context import require_current_tenant

    # Every inbound message passes here, and most are sentences: those cannot be a keyword,
    # so neither the business's policy nor the contact's consent needs reading for them.
    word = normalise(message.body)
    if not word or len(word) > LONGEST_KEYWORD:
        return None
    policy = messaging_policy()
    tenant = require_current_tenant()
    languages = [lang for lang in (tenant.language, contact.language) if lang]
    extra = {
        Keyword.OPT_OUT: split_extra(policy.extra_opt_out_keywords),
        Keyword.OPT_IN: split_extra(policy.extra_opt_in_keywords),
        Keyword.HELP: split_extra(policy.extra_help_keywords),
    }
    # The consent state only decides for words such as "yes" (a keyword only for someone
    # who opted out), so it is read only for them.
    found = keyword_table(languages=languages, extra=extra).get(word)
    if found is None:
        return None
    _meaning, only_when_opted_out = found
    return classify(
        message.body,
        languages=languages,
        extra=extra,
        opted_out=only_when_opted_out and is_opted_out(contact, channel.medium),
    )


def handle_inbound_keyword(message, *, contact, channel) -> Keyword | None:
    """Act on STOP / START / HELP before anything else sees the message.

    - opt-out: consent for every purpose on this medium (every medium for STOPALL) is
      withdrawn at once, and exactly one confirmation is sent — none from us when the provider
      sends its own (Twilio's default STOP handling on SMS numbers);
    - opt-in: transactional consent is granted again, marketing too if the opt-out had taken it
      away; one confirmation;
    - help: the business's help text.
    Returns the keyword so the pipeline keeps the bot and automations away from it.
    """
    from channels_app.models import Medium

    keyword = keyword_of(message, contact=contact, channel=channel)
    if keyword is None:
        return None
    evidence = f"Inbound message {message.provider_message_id or message.pk}: {message.body!r}"
    if keyword == Keyword.OPT_OUT:
        media = (
            [m.value for m in Medium]
            if normalise(message.body) in ALL_MEDIA_OPT_OUTS
            else [channel.medium]
        )
        record_consent(
            contact=contact,
            media=media,
            purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
            action=ConsentAction.WITHDRAWN,
            source=ConsentSource.KEYWORD,
            evidence=evidence,
            channel=channel,
            message=message,
        )
        if channel.provider_confirms_opt_out:
            return keyword
    elif keyword == Keyword.OPT_IN:
        purposes = [Purpose.TRANSACTIONAL]
        if _marketing_was_stopped_by_keyword(contact, channel.medium):
            purposes.append(Purpose.MARKETING)
        record_consent(
            contact=contact,
            media=[channel.medium],
            purposes=purposes,
            action=ConsentAction.GRANTED,
            source=ConsentSource.KEYWORD,
            evidence=evidence,
            channel=channel,
            message=message,
        )
    _send_keyword_reply(keyword, message=message, contact=contact)
    return keyword


def keyword_reply_text(keyword: Keyword, *, contact) -> str:
    from tenants.context import require_current_tenant

    policy = messaging_policy()
    custom = {
        Keyword.OPT_OUT: policy.opt_out_reply,
        Keyword.OPT_IN: policy.opt_in_reply,
        Keyword.HELP: policy.help_reply,
    }[keyword]
    if custom.strip():
        return custom.strip()
    tenant = require_current_tenant()
    language = contact.language or tenant.language
    replies = DEFAULT_REPLIES.get(language, DEFAULT_REPLIES["en"])
    return replies[keyword].format(business=tenant.name)


def _send_keyword_reply(keyword: Keyword, *, message, contact) -> None:
    from channels_app.models import Message
    from channels_app.services.sending import send_message

    send_message(
        conversation=message.conversation,
        body=keyword_reply_text(keyword, contact=contact),
        purpose=COMPLIANCE,
        sender_kind=Message.SenderKind.SYSTEM,
        # One reply per keyword message, however often the webhook or the task repeats.
        idempotency_key=f"keyword-reply:{message.pk}",
    )


def record_provider_opt_out(*, contact, channel, message, code: str, reason: str) -> None:
    """A provider said the recipient unsubscribed (Twilio 21610): record the opt-out."""
    record_consent(
        contact=contact,
        media=[channel.medium],
        purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
        action=ConsentAction.WITHDRAWN,
        source=ConsentSource.PROVIDER,
        evidence=f"Provider error {code} sending message {message.pk}: {reason}",
        channel=channel,
        message=message,
    )


def record_provider_marketing_opt_out(*, contact, channel, message, code: str, reason: str):
    """The customer stopped marketing messages on WhatsApp (Meta 131050): marketing only."""
    record_consent(
        contact=contact,
        media=[channel.medium],
        purposes=[Purpose.MARKETING],
        action=ConsentAction.WITHDRAWN,
        source=ConsentSource.PROVIDER,
        evidence=f"Provider error {code} sending message {message.pk}: {reason}",
        channel=channel,
        message=message,
    )
