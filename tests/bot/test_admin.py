"""The platform admin for the bot: every business's rows, the API key never shown, staff can
top a balance up."""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels_app.bot.models import AIUsage, BotProfile, BotRun, TokenBalance
from tenants.context import platform_access
from tests.factories import (
    AIUsageFactory,
    BotProfileFactory,
    BotRunFactory,
    TokenBalanceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def changelist(model):
    return reverse(f"admin:channels_app_{model._meta.model_name}_changelist")


def change(obj):
    return reverse(f"admin:channels_app_{obj._meta.model_name}_change", args=[obj.pk])


def test_every_bot_model_is_listed_for_every_business(staff_client, tenant_a, tenant_b):
    BotProfileFactory(tenant=tenant_a, api_key="sk-never-in-the-admin")
    TokenBalanceFactory(tenant=tenant_b)
    AIUsageFactory(tenant=tenant_a)
    BotRunFactory(tenant=tenant_b)

    for model in (BotProfile, TokenBalance, AIUsage, BotRun):
        response = staff_client.get(changelist(model))
        assert response.status_code == 200, model
        assert "sk-never-in-the-admin" not in response.content.decode()


def test_the_profile_page_says_whether_a_key_is_set_without_showing_it(staff_client, tenant_a):
    profile = BotProfileFactory(tenant=tenant_a, api_key="sk-never-in-the-admin")

    html = staff_client.get(change(profile)).content.decode()

    assert "sk-never-in-the-admin" not in html
    assert "api_key" not in html


def test_staff_top_a_balance_up(staff_client, tenant_a):
    balance = TokenBalanceFactory(tenant=tenant_a, tokens_remaining=0)

    response = staff_client.post(change(balance), {"tokens_remaining": "250000"})

    assert response.status_code == 302
    with platform_access():
        assert TokenBalance.unscoped.get(pk=balance.pk).tokens_remaining == 250_000
