"""Metering: every AI call is recorded (tokens in and out, model, cost) and taken from the
business's token balance; at zero the bot stops. The monthly usage page reads from here."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from channels_app.bot.models import AIUsage, TokenBalance

THOUSAND = Decimal(1000)


@lru_cache(maxsize=8)
def _price_table(prices: str, default: str) -> tuple[dict[str, tuple[Decimal, Decimal]], tuple]:
    def pair(text: str) -> tuple[Decimal, Decimal]:
        given, _colon, taken = text.partition(":")
        return Decimal(given.strip() or "0"), Decimal(taken.strip() or given.strip() or "0")

    table = {}
    for entry in prices.split(","):
        model, equals, price = entry.partition("=")
        if equals and model.strip():
            table[model.strip()] = pair(price)
    return table, pair(default)


def price_per_thousand(model: str) -> tuple[Decimal, Decimal]:
    """(input, output) price per 1,000 tokens of `model`, from settings.OPENAI_PRICES."""
    table, default = _price_table(settings.OPENAI_PRICES, settings.OPENAI_DEFAULT_PRICE)
    return table.get(model, default)


def cost_of(*, model: str, tokens_in: int, tokens_out: int) -> Decimal:
    price_in, price_out = price_per_thousand(model)
    return (price_in * tokens_in + price_out * tokens_out) / THOUSAND


def balance() -> TokenBalance:
    """The active business's balance; a business that never used the bot starts with
    settings.BOT_STARTING_TOKENS."""
    found = TokenBalance.objects.first()
    if found is not None:
        return found
    found, _created = TokenBalance.objects.get_or_create(
        defaults={"tokens_remaining": settings.BOT_STARTING_TOKENS}
    )
    return found


def has_tokens() -> bool:
    return balance().tokens_remaining > 0


@transaction.atomic
def record_usage(
    *,
    purpose: str,
    provider: str,
    model: str,
    tokens_in: int,
    tokens_out: int,
    conversation=None,
) -> AIUsage:
    """One metered call: stored with its cost, and its tokens taken from the balance (which
    stops at zero)."""
    tokens_in, tokens_out = max(0, int(tokens_in or 0)), max(0, int(tokens_out or 0))
    usage = AIUsage.objects.create(
        purpose=purpose,
        provider=provider,
        model=model[:100],
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost=cost_of(model=model, tokens_in=tokens_in, tokens_out=tokens_out)
        if provider != "local"
        else Decimal("0"),
        conversation=conversation,
    )
    spent = tokens_in + tokens_out
    if spent:
        taken = TokenBalance.objects.update(
            tokens_remaining=Greatest(F("tokens_remaining") - spent, Value(0))
        )
        if not taken:  # the business's first call: its starting balance, less this one
            balance()
            TokenBalance.objects.update(
                tokens_remaining=Greatest(F("tokens_remaining") - spent, Value(0))
            )
    return usage


@transaction.atomic
def add_tokens(*, tokens: int) -> TokenBalance:
    """Top the balance up (a purchase, or the platform's grant)."""
    if tokens <= 0:
        raise ValueError("add a positive number of tokens")
    current = balance()
    TokenBalance.objects.filter(pk=current.pk).update(
        tokens_remaining=F("tokens_remaining") + tokens
    )
    current.refresh_from_db()
    return current


# --- The monthly usage page -----------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: date
    tokens_in: int
    tokens_out: int
    calls: int

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass(frozen=True)
class MonthUsage:
    month: date  # the first day
    days: list[Day]
    by_model: list[dict]
    tokens_in: int
    tokens_out: int
    cost: Decimal
    calls: int

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def previous(self) -> date:
        return (self.month - timedelta(days=1)).replace(day=1)

    @property
    def next(self) -> date:
        return (self.month + timedelta(days=32)).replace(day=1)


def parse_month(value: str | None, *, zone) -> date:
    """ "2026-11" into date(2026, 11, 1); anything else is this month (in the business's zone)."""
    try:
        year, month = (int(part) for part in (value or "").split("-"))
        return date(year, month, 1)
    except (TypeError, ValueError):
        return timezone.localdate(timezone=zone).replace(day=1)


def monthly_usage(*, month: date, zone) -> MonthUsage:
    """Calls, tokens and cost of `month`, per day (in the business's time zone) and per model."""
    start = datetime(month.year, month.month, 1, tzinfo=zone)
    last_day = calendar.monthrange(month.year, month.month)[1]
    end = start + timedelta(days=last_day)
    usage = AIUsage.objects.filter(created_at__gte=start, created_at__lt=end)
    per_day: dict[date, list[int]] = {}
    for created_at, tokens_in, tokens_out in usage.values_list(
        "created_at", "tokens_in", "tokens_out"
    ).order_by():
        entry = per_day.setdefault(timezone.localtime(created_at, zone).date(), [0, 0, 0])
        entry[0] += tokens_in
        entry[1] += tokens_out
        entry[2] += 1
    days = [
        Day(day, *per_day.get(day, [0, 0, 0]))
        for day in (month.replace(day=number) for number in range(1, last_day + 1))
    ]
    by_model = list(
        usage.values("provider", "model")
        .annotate(
            calls=Count("id"),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            cost=Sum("cost"),
        )
        .order_by("-calls", "model")
    )
    return MonthUsage(
        month=month,
        days=days,
        by_model=by_model,
        tokens_in=sum(d.tokens_in for d in days),
        tokens_out=sum(d.tokens_out for d in days),
        cost=sum((row["cost"] or Decimal("0") for row in by_model), Decimal("0")),
        calls=sum(d.calls for d in days),
    )


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


CHART_WIDTH = 620
CHART_HEIGHT = 180
CHART_PADDING = 24


def chart_bars(days: list[Day]) -> tuple[list[Bar], int]:
    """Bars of tokens per day for the server-rendered SVG chart, and the scale's maximum."""
    top = max((day.tokens for day in days), default=0) or 1
    inner = CHART_HEIGHT - CHART_PADDING
    step = CHART_WIDTH / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        height = inner * day.tokens / top
        bars.append(
            Bar(
                x=round(index * step + step * 0.15, 2),
                y=round(inner - height, 2),
                width=round(step * 0.7, 2),
                height=round(height, 2),
                label=str(day.day.day),
                value=day.tokens,
            )
        )
    return bars, top
