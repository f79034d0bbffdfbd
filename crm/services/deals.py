"""Deals: create, edit and move between stages, with the stage history kept.

Every move goes through `move_deal`: it records who moved the deal, when, from and to; it sets
`closed_at` on entering a won or lost stage and clears it on leaving one; moving a deal to the
stage and place it already has changes nothing (a retried request, a double click).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.currencies import is_currency
from crm.models import Deal, DealStageChange, Pipeline, Stage
from tenants.context import require_current_tenant
from tenants.models import User

EDITABLE = (
    "title",
    "value",
    "currency",
    "contact",
    "company",
    "owner",
    "expected_close_date",
)
MAX_VALUE = Decimal("999999999999.99")


def _check(*, pipeline: Pipeline, stage: Stage, fields: dict) -> dict:
    errors: dict[str, str] = {}
    if stage.pipeline_id != pipeline.pk:
        errors["stage"] = _("This stage belongs to another pipeline.")
    if "title" in fields:
        fields["title"] = (fields["title"] or "").strip()
        if not fields["title"]:
            errors["title"] = _("Give the deal a title.")
    if "value" in fields:
        try:
            value = Decimal(str(fields["value"] if fields["value"] is not None else "0"))
        except InvalidOperation:
            errors["value"] = _("Enter an amount.")
        else:
            if not value.is_finite() or value < 0:
                errors["value"] = _("The value cannot be negative.")
            elif value > MAX_VALUE:
                errors["value"] = _("The value is too large.")
            else:
                fields["value"] = value.quantize(Decimal("0.01"))
    if "currency" in fields:
        fields["currency"] = (fields["currency"] or "").upper()
        if not is_currency(fields["currency"]):
            errors["currency"] = _("Choose a currency from the list.")
    owner = fields.get("owner")
    if owner is not None and not _is_member(owner):
        errors["owner"] = _("The owner must be a member of this business.")
    if errors:
        raise ValidationError(errors)
    return fields


def _is_member(user: User) -> bool:
    return user.memberships.filter(tenant=require_current_tenant()).exists()


def _end_position(stage: Stage, *, excluding: Deal | None = None) -> int:
    deals = Deal.objects.filter(stage=stage)
    if excluding is not None:
        deals = deals.exclude(pk=excluding.pk)
    last = deals.aggregate(last=Max("position"))["last"]
    return 0 if last is None else last + 1


@transaction.atomic
def create_deal(*, pipeline: Pipeline, stage: Stage, by=None, **fields) -> Deal:
    """A new deal at the end of its stage's column; its history starts with this stage."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"unknown deal fields: {sorted(unknown)}")
    fields.setdefault("value", Decimal("0"))
    fields.setdefault("currency", "USD")
    fields.setdefault("title", "")
    fields = _check(pipeline=pipeline, stage=stage, fields=fields)
    deal = Deal(
        pipeline=pipeline,
        stage=stage,
        position=_end_position(stage),
        closed_at=timezone.now() if stage.is_closed else None,
        **fields,
    )
    deal.save()
    DealStageChange.objects.create(deal=deal, from_stage=None, to_stage=stage, changed_by=by)
    return deal


@transaction.atomic
def update_deal(*, deal: Deal, by=None, pipeline: Pipeline | None = None, stage=None, **fields):
    """Change a deal's fields; a new stage (or pipeline and stage) is a move, recorded."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"unknown deal fields: {sorted(unknown)}")
    deal = Deal.objects.select_for_update().select_related("stage").get(pk=deal.pk)
    pipeline = pipeline or deal.pipeline
    stage = stage or deal.stage
    fields = _check(pipeline=pipeline, stage=stage, fields=fields)
    for name, value in fields.items():
        setattr(deal, name, value)
    deal.save()
    if stage.pk != deal.stage_id:
        if pipeline.pk != deal.pipeline_id:
            return move_deal_to_pipeline(deal=deal, stage=stage, by=by)
        return move_deal(deal=deal, stage=stage, by=by)
    return deal


@transaction.atomic
def move_deal(*, deal: Deal, stage: Stage, by=None, position: int | None = None) -> Deal:
    """Move a deal to `stage` of its own pipeline, at `position` in the column (the end when
    None). Returns the deal; nothing changes when it is already there."""
    deal = Deal.objects.select_for_update().select_related("stage").get(pk=deal.pk)
    if stage.pipeline_id != deal.pipeline_id:
        raise ValidationError({"stage": _("This stage belongs to another pipeline.")})
    return _move(deal=deal, stage=stage, by=by, position=position)


@transaction.atomic
def move_deal_to_pipeline(*, deal: Deal, stage: Stage, by=None) -> Deal:
    """Move a deal into another pipeline (at `stage`, which must be one of its stages)."""
    deal = Deal.objects.select_for_update().select_related("stage").get(pk=deal.pk)
    deal.pipeline = stage.pipeline
    return _move(deal=deal, stage=stage, by=by, position=None, fields=["pipeline"])


def _move(*, deal: Deal, stage: Stage, by, position: int | None, fields=()) -> Deal:
    previous = deal.stage
    if previous.pk == stage.pk:
        if position is not None:
            _place(deal=deal, stage=stage, position=position)
        return deal
    deal.stage = stage
    if stage.is_closed and not previous.is_closed:
        deal.closed_at = timezone.now()
    elif stage.is_closed and (stage.is_won != previous.is_won):
        deal.closed_at = timezone.now()  # won → lost or lost → won: closed again, now
    elif not stage.is_closed:
        deal.closed_at = None
    deal.position = _end_position(stage, excluding=deal)
    deal.save(update_fields=["stage", "closed_at", "position", "updated_at", *fields])
    DealStageChange.objects.create(deal=deal, from_stage=previous, to_stage=stage, changed_by=by)
    if position is not None:
        _place(deal=deal, stage=stage, position=position)
    return deal


def _place(*, deal: Deal, stage: Stage, position: int) -> None:
    """Put `deal` at index `position` of its column and number the column 0, 1, 2…"""
    column = list(
        Deal.objects.select_for_update()
        .filter(stage=stage)
        .exclude(pk=deal.pk)
        .order_by("position", "id")
    )
    position = max(0, min(len(column), position))
    column.insert(position, deal)
    changed = []
    for index, item in enumerate(column):
        if item.position != index:
            item.position = index
            changed.append(item)
    if changed:
        Deal.objects.bulk_update(changed, ["position"])
    deal.position = position


def adjacent_stage(*, deal: Deal, step: int) -> Stage | None:
    """The stage before (-1) or after (+1) the deal's, or None at an end."""
    stages = list(deal.pipeline.stages.order_by("position", "id"))
    index = next(i for i, s in enumerate(stages) if s.pk == deal.stage_id)
    target = index + step
    if 0 <= target < len(stages):
        return stages[target]
    return None


def delete_deal(*, deal: Deal) -> None:
    """Delete a deal entered by mistake, with its history (a lost deal belongs in a lost stage)."""
    Deal.objects.filter(pk=deal.pk).delete()
