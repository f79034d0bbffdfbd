"""A business's opt-out wording: extra keywords in its languages and its own replies (P2)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_app.forms import MessagingPolicyForm
from channels_app.models import Message
from privacy.keywords import Keyword
from privacy.models import MessagingPolicy
from privacy.services import handle_inbound_keyword
from tenants.context import tenant_context
from tests.factories import ChannelFactory, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db

EMPTY = {
    "extra_opt_out_keywords": "",
    "extra_opt_in_keywords": "",
    "extra_help_keywords": "",
    "opt_out_reply": "",
    "opt_in_reply": "",
    "help_reply": "",
}


def policy_url(tenant):
    return reverse("channels:messaging_policy", kwargs={"tenant_slug": tenant.slug})


def channels_url(tenant):
    return reverse("channels:channels", kwargs={"tenant_slug": tenant.slug})


@pytest.fixture
def form(tenant_a):
    """A bound form for tenant A's policy, validated inside the tenant (as the view does)."""

    def bind(languages=("en",), **data):
        with tenant_context(tenant_a):
            bound = MessagingPolicyForm(
                {**EMPTY, **data},
                instance=MessagingPolicy.objects.get_or_create()[0],
                languages=list(languages),
            )
            bound.is_valid()
        return bound

    return bind


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


def test_an_owner_saves_extra_keywords_and_replies(owner_client, tenant_a):
    response = owner_client.post(
        policy_url(tenant_a),
        {
            **EMPTY,
            "extra_opt_out_keywords": "BASTA, no more\nAUS",
            "extra_help_keywords": "HILFE",
            "opt_out_reply": "Alpha Dental: you will not hear from us again.",
        },
    )

    assert response.status_code == 302
    with tenant_context(tenant_a):
        policy = MessagingPolicy.objects.get()
    assert policy.extra_opt_out_keywords == "BASTA, no more\nAUS"
    assert policy.extra_help_keywords == "HILFE"
    assert policy.opt_out_reply == "Alpha Dental: you will not hear from us again."


def test_saved_keywords_and_reply_take_effect_on_the_next_message(owner_client, tenant_a):
    owner_client.post(
        policy_url(tenant_a),
        {**EMPTY, "extra_opt_out_keywords": "basta", "opt_out_reply": "Done, no more messages."},
    )
    channel = ChannelFactory(tenant=tenant_a)
    conversation = ConversationFactory(
        tenant=tenant_a, channel=channel, last_inbound_at=timezone.now()
    )
    message = MessageFactory(tenant=tenant_a, conversation=conversation, body="  Basta! ")

    with tenant_context(tenant_a):
        keyword = handle_inbound_keyword(message, contact=conversation.contact, channel=channel)
        reply = Message.objects.get(conversation=conversation, direction="outbound")

    assert keyword == Keyword.OPT_OUT
    assert reply.body == "Done, no more messages."


def test_the_same_word_as_opt_out_and_opt_in_is_refused(owner_client, tenant_a):
    response = owner_client.post(
        policy_url(tenant_a),
        {**EMPTY, "extra_opt_out_keywords": "BASTA", "extra_opt_in_keywords": "basta!"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "is already an opt-out keyword; a word can mean only one thing" in html
    assert "The opt-out wording was not saved" in html
    with tenant_context(tenant_a):
        assert not MessagingPolicy.objects.filter(extra_opt_out_keywords="BASTA").exists()


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"extra_opt_in_keywords": "STOP"}, "extra_opt_in_keywords", "built in as an opt-out"),
        ({"extra_help_keywords": "start"}, "extra_help_keywords", "built in as an opt-in"),
        ({"extra_opt_out_keywords": "Help"}, "extra_opt_out_keywords", "built in as a help"),
        ({"extra_help_keywords": "yes"}, "extra_help_keywords", "built in as an opt-in"),
        (
            {"extra_opt_out_keywords": "AUS", "extra_help_keywords": "a-u-s"},
            "extra_help_keywords",
            "already an opt-out keyword",
        ),
        ({"extra_opt_out_keywords": "!!!"}, "extra_opt_out_keywords", "no letters or digits"),
        ({"extra_opt_out_keywords": "x" * 41}, "extra_opt_out_keywords", "too long"),
        ({"help_reply": "x" * 1001}, "help_reply", "under 1000"),
    ],
    ids=[
        "stop-as-opt-in",
        "start-as-help",
        "help-as-opt-out",
        "yes-as-help",
        "extra-vs-extra",
        "punctuation-only",
        "too-long",
        "long-reply",
    ],
)
def test_keyword_errors(form, data, field, words):
    bound = form(**data)

    assert not bound.is_valid()
    assert words in " ".join(bound.errors[field])


def test_built_ins_of_the_business_language_count_too(form):
    assert "built in as an opt-in" in " ".join(
        form(languages=["es"], extra_opt_out_keywords="ALTA").errors["extra_opt_out_keywords"]
    )
    # In an English-only business "ALTA" means nothing yet.
    assert form(languages=["en"], extra_opt_out_keywords="ALTA").is_valid()


def test_repeating_a_built_in_keyword_of_the_same_kind_is_harmless(form):
    assert form(extra_opt_out_keywords="STOP, unsubscribe", extra_help_keywords="info").is_valid()


def test_the_page_lists_the_built_in_keywords_of_the_business_language(owner_client, tenant_a):
    tenant_a.language = "es"
    tenant_a.save(update_fields=["language"])

    html = owner_client.get(channels_url(tenant_a)).content.decode()

    for word in ("STOP", "UNSUBSCRIBE", "START", "HELP", "BAJA", "ALTA", "AYUDA"):
        assert f'<span class="tag">{word}</span>' in html
    assert "СТОП" not in html  # Russian is not the business's language


def test_an_agent_sees_the_keywords_but_not_the_form(client, tenant_a):
    from tenants.models import Role
    from tests.factories import member

    client.force_login(member(tenant_a, role=Role.AGENT))

    html = client.get(channels_url(tenant_a)).content.decode()

    assert '<span class="tag">STOP</span>' in html
    assert policy_url(tenant_a) not in html
    assert client.post(policy_url(tenant_a), EMPTY).status_code == 403
