"""Pipelines and their ordered stages: create, rename, reorder, delete (never losing a deal)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import Deal, Pipeline, Stage
from tenants.context import require_current_tenant
from tenants.models import Tenant

# The pipeline a business starts with: (name, won, lost).
DEFAULT_PIPELINE_NAME = gettext_lazy("Sales")
DEFAULT_STAGES = (
    (gettext_lazy("Lead"), False, False),
    (gettext_lazy("Qualified"), False, False),
    (gettext_lazy("Proposal"), False, False),
    (gettext_lazy("Negotiation"), False, False),
    (gettext_lazy("Won"), True, False),
    (gettext_lazy("Lost"), False, True),
)


def _clean_name(name: str, *, field: str = "name") -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({field: _("Give it a name.")})
    if len(name) > 100:
        raise ValidationError({field: _("At most 100 characters.")})
    return name


def _check_flags(*, is_won: bool, is_lost: bool) -> None:
    if is_won and is_lost:
        raise ValidationError(_("A stage cannot be both won and lost."))


def ensure_default_pipeline() -> Pipeline:
    """The business's first pipeline, creating "Sales" with its stages when it has none.

    Safe to call on every page view and from two requests at once (the tenant row is locked).
    """
    existing = Pipeline.objects.order_by("position", "id").first()
    if existing is not None:
        return existing
    tenant = require_current_tenant()
    with transaction.atomic():
        Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        existing = Pipeline.objects.order_by("position", "id").first()
        if existing is not None:
            return existing
        return create_pipeline(
            name=str(DEFAULT_PIPELINE_NAME),
            stages=[(str(name), won, lost) for name, won, lost in DEFAULT_STAGES],
        )


@transaction.atomic
def create_pipeline(*, name: str, stages=None) -> Pipeline:
    """A new pipeline, last in order; `stages` is a list of (name, won, lost)."""
    name = _clean_name(name)
    last = Pipeline.objects.aggregate(last=Max("position"))["last"]
    pipeline = Pipeline.objects.create(name=name, position=0 if last is None else last + 1)
    if stages is None:
        stages = [(_("New"), False, False), (_("Won"), True, False), (_("Lost"), False, True)]
    for stage_name, won, lost in stages:
        add_stage(pipeline=pipeline, name=stage_name, is_won=won, is_lost=lost)
    return pipeline


def rename_pipeline(*, pipeline: Pipeline, name: str) -> Pipeline:
    pipeline.name = _clean_name(name)
    pipeline.save(update_fields=["name"])
    return pipeline


@transaction.atomic
def delete_pipeline(*, pipeline: Pipeline, move_to: Pipeline | None = None, by=None) -> None:
    """Delete a pipeline. Its deals are refused unless `move_to` names another pipeline, whose
    first stage then receives them (each move recorded in the deal's history)."""
    from crm.services.deals import move_deal_to_pipeline

    deals = list(Deal.objects.filter(pipeline=pipeline).select_related("stage"))
    if deals:
        if move_to is None:
            raise ValidationError(
                _(
                    "“%(name)s” still has %(count)d deal(s). Choose a pipeline to move them to, "
                    "or delete the deals first."
                )
                % {"name": pipeline.name, "count": len(deals)}
            )
        if move_to.pk == pipeline.pk:
            raise ValidationError(_("Choose another pipeline to move the deals to."))
        target = move_to.stages.order_by("position", "id").first()
        if target is None:
            raise ValidationError(
                _("“%(name)s” has no stage to receive the deals.") % {"name": move_to.name}
            )
        for deal in deals:
            move_deal_to_pipeline(deal=deal, stage=target, by=by)
    pipeline.delete()


@transaction.atomic
def add_stage(*, pipeline: Pipeline, name: str, is_won: bool = False, is_lost: bool = False):
    """A new stage at the end of `pipeline`."""
    name = _clean_name(name)
    _check_flags(is_won=is_won, is_lost=is_lost)
    last = pipeline.stages.aggregate(last=Max("position"))["last"]
    return Stage.objects.create(
        pipeline=pipeline,
        name=name,
        position=0 if last is None else last + 1,
        is_won=is_won,
        is_lost=is_lost,
    )


def update_stage(*, stage: Stage, name: str, is_won: bool, is_lost: bool) -> Stage:
    """Rename a stage and set its won/lost flag (not both)."""
    stage.name = _clean_name(name)
    _check_flags(is_won=is_won, is_lost=is_lost)
    stage.is_won, stage.is_lost = is_won, is_lost
    stage.save(update_fields=["name", "is_won", "is_lost"])
    return stage


@transaction.atomic
def move_stage(*, stage: Stage, offset: int) -> Stage:
    """Move a stage earlier (offset -1) or later (+1) in its pipeline; at an end, nothing."""
    stages = list(stage.pipeline.stages.select_for_update().order_by("position", "id"))
    index = next(i for i, s in enumerate(stages) if s.pk == stage.pk)
    new_index = max(0, min(len(stages) - 1, index + offset))
    if new_index != index:
        stages.insert(new_index, stages.pop(index))
    _renumber(stages)
    return next(s for s in stages if s.pk == stage.pk)


def _renumber(stages: list[Stage]) -> None:
    changed = []
    for position, item in enumerate(stages):
        if item.position != position:
            item.position = position
            changed.append(item)
    if changed:
        Stage.objects.bulk_update(changed, ["position"])


@transaction.atomic
def delete_stage(*, stage: Stage, move_to: Stage | None = None, by=None) -> None:
    """Delete a stage. Its deals are refused unless `move_to` is another stage of the same
    pipeline, which then receives them (recorded in their history)."""
    from crm.services.deals import move_deal

    deals = list(Deal.objects.filter(stage=stage))
    if deals:
        if move_to is None:
            raise ValidationError(
                _("“%(name)s” still has %(count)d deal(s). Choose a stage to move them to first.")
                % {"name": stage.name, "count": len(deals)}
            )
        if move_to.pk == stage.pk or move_to.pipeline_id != stage.pipeline_id:
            raise ValidationError(_("Choose another stage of the same pipeline."))
        for deal in deals:
            move_deal(deal=deal, stage=move_to, by=by)
    pipeline = stage.pipeline
    stage.delete()
    _renumber(list(pipeline.stages.order_by("position", "id")))
