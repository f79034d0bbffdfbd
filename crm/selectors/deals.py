"""Reads for the deals board and deal pages."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum

from crm.models import Deal, DealStageChange, Pipeline, Stage
from tenants.context import require_current_tenant
from tenants.models import User

# Owner filter values besides a user id.
OWNER_ME = "me"
OWNER_NONE = "none"


@dataclass
class Column:
    stage: Stage
    deals: list[Deal] = field(default_factory=list)
    # (currency, total) sorted by currency: deals in several currencies are never added up.
    totals: list[tuple[str, Decimal]] = field(default_factory=list)
    previous: Stage | None = None
    next: Stage | None = None

    @property
    def count(self) -> int:
        return len(self.deals)


def pipelines() -> list[Pipeline]:
    return list(Pipeline.objects.annotate(deal_count=Count("deals")).order_by("position", "id"))


def filter_by_owner(deals, *, owner: str, user) -> tuple:
    """`deals` narrowed by the board's owner filter ("me", "none", a member's id or "")."""
    if owner == OWNER_ME:
        return deals.filter(owner=user)
    if owner == OWNER_NONE:
        return deals.filter(owner__isnull=True)
    if owner.isdigit():
        return deals.filter(owner_id=int(owner))
    return deals


def board(*, pipeline: Pipeline, owner: str = "", user=None) -> list[Column]:
    """The pipeline's stages in order, each with its deals (in card order) and totals."""
    stages = list(pipeline.stages.order_by("position", "id"))
    columns = {stage.pk: Column(stage=stage) for stage in stages}
    for index, stage in enumerate(stages):
        column = columns[stage.pk]
        column.previous = stages[index - 1] if index > 0 else None
        column.next = stages[index + 1] if index + 1 < len(stages) else None
    deals = filter_by_owner(
        Deal.objects.filter(pipeline=pipeline).select_related("contact", "company", "owner"),
        owner=owner,
        user=user,
    ).order_by("position", "id")
    for deal in deals:
        if deal.stage_id in columns:
            columns[deal.stage_id].deals.append(deal)
    totals: dict[int, dict[str, Decimal]] = defaultdict(dict)
    rows = (
        filter_by_owner(Deal.objects.filter(pipeline=pipeline), owner=owner, user=user)
        .values("stage_id", "currency")
        .annotate(total=Sum("value"))
        .order_by("stage_id", "currency")
    )
    for row in rows:
        totals[row["stage_id"]][row["currency"]] = row["total"] or Decimal("0")
    for stage_id, by_currency in totals.items():
        if stage_id in columns:
            columns[stage_id].totals = sorted(by_currency.items())
    return [columns[stage.pk] for stage in stages]


def stages_with_counts(*, pipeline: Pipeline) -> list[Stage]:
    """The pipeline's stages in order, each with `deal_count`."""
    return list(pipeline.stages.annotate(deal_count=Count("deals")).order_by("position", "id"))


def members() -> list[User]:
    """The business's members, who can own deals and appointments."""
    tenant = require_current_tenant()
    return list(
        User.objects.filter(memberships__tenant=tenant).order_by("full_name", "email").distinct()
    )


def history(*, deal: Deal) -> list[DealStageChange]:
    return list(
        DealStageChange.objects.filter(deal=deal)
        .select_related("from_stage", "to_stage", "changed_by")
        .order_by("changed_at", "id")
    )
