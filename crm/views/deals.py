"""Pipelines, the deals board and deal pages. The work is in crm.services.deals/pipelines."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.shortcuts import render as render_page
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.deal_forms import DealForm, PipelineForm, StageForm
from crm.models import Deal, Pipeline, Stage
from crm.selectors import deals as selectors
from crm.services import deals as deal_services
from crm.services import pipelines as pipeline_services
from tenants.models import Role
from tenants.permissions import tenant_view


def render(request, template, context=None, status=200):
    """A page of this section: the navigation highlights "Deals" on all of them."""
    return render_page(
        request, template, {"nav_section": "crm:deals", **(context or {})}, status=status
    )


def _messages_of(error: ValidationError) -> list[str]:
    return [str(message) for message in error.messages]


def _require_admin(request) -> None:
    if not request.membership.has_role(Role.ADMIN):
        raise PermissionDenied(_("Only owners and admins can change pipelines."))


def _board_url(request, pipeline: Pipeline, owner: str = "") -> str:
    url = reverse(
        "crm:pipeline_board",
        kwargs={"tenant_slug": request.tenant.slug, "pipeline_id": pipeline.pk},
    )
    return f"{url}?{urlencode({'owner': owner})}" if owner else url


def _owner_filter(request) -> str:
    value = (request.POST.get("owner") or request.GET.get("owner") or "").strip()
    return value if value in (selectors.OWNER_ME, selectors.OWNER_NONE) or value.isdigit() else ""


def _render_board(request, pipeline: Pipeline):
    owner = _owner_filter(request)
    context = {
        "pipeline": pipeline,
        "pipelines": selectors.pipelines(),
        "columns": selectors.board(pipeline=pipeline, owner=owner, user=request.user),
        "owner_filter": owner,
        "members": selectors.members(),
        "can_manage": request.membership.has_role(Role.ADMIN),
    }
    return render(request, "crm/deals/board.html", context)


@tenant_view(Role.AGENT)
def deals(request):
    pipeline = pipeline_services.ensure_default_pipeline()
    return _render_board(request, pipeline)


@tenant_view(Role.AGENT)
def pipeline_board(request, pipeline_id):
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    return _render_board(request, pipeline)


# --- Deals ----------------------------------------------------------------------------------


@tenant_view(Role.AGENT)
def deal_new(request):
    default = pipeline_services.ensure_default_pipeline()
    pipeline = default
    requested = request.GET.get("pipeline", "")
    if requested.isdigit():
        pipeline = Pipeline.objects.filter(pk=int(requested)).first() or default
    initial = {
        "pipeline": pipeline,
        "stage": pipeline.stages.order_by("position", "id").first(),
        "owner": request.user,
        "currency": "USD",
    }
    form = DealForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            deal = deal_services.create_deal(
                pipeline=form.cleaned_data["pipeline"],
                stage=form.cleaned_data["stage"],
                by=request.user,
                **form.deal_fields(),
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Deal “%(title)s” created.") % {"title": deal.title})
            return redirect("crm:deal", tenant_slug=request.tenant.slug, deal_id=deal.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "crm/deals/form.html", {"form": form, "deal": None}, status=status)


def _add_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@tenant_view(Role.AGENT)
def deal_detail(request, deal_id):
    deal = get_object_or_404(
        Deal.objects.select_related("stage", "pipeline", "contact", "company", "owner"),
        pk=deal_id,
    )
    return render(
        request,
        "crm/deals/detail.html",
        {
            "deal": deal,
            "history": selectors.history(deal=deal),
            "stages": list(deal.pipeline.stages.order_by("position", "id")),
        },
    )


@tenant_view(Role.AGENT)
def deal_edit(request, deal_id):
    deal = get_object_or_404(Deal.objects.select_related("stage", "pipeline"), pk=deal_id)
    initial = {
        "title": deal.title,
        "pipeline": deal.pipeline,
        "stage": deal.stage,
        "value": deal.value,
        "currency": deal.currency,
        "contact": deal.contact,
        "company": deal.company,
        "owner": deal.owner,
        "expected_close_date": deal.expected_close_date,
    }
    form = DealForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            deal_services.update_deal(
                deal=deal,
                by=request.user,
                pipeline=form.cleaned_data["pipeline"],
                stage=form.cleaned_data["stage"],
                **form.deal_fields(),
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Deal saved."))
            return redirect("crm:deal", tenant_slug=request.tenant.slug, deal_id=deal.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "crm/deals/form.html",
        {"form": form, "deal": deal, "can_delete": request.membership.has_role(Role.ADMIN)},
        status=status,
    )


@require_POST
@tenant_view(Role.ADMIN)
def deal_delete(request, deal_id):
    deal = get_object_or_404(Deal, pk=deal_id)
    pipeline = deal.pipeline
    deal_services.delete_deal(deal=deal)
    messages.success(request, _("Deal “%(title)s” deleted.") % {"title": deal.title})
    return redirect(_board_url(request, pipeline))


@require_POST
@tenant_view(Role.AGENT)
def deal_move(request, deal_id):
    """Move a card: from the board's drag and drop (HTMX: answers the re-rendered columns) or
    from the card's own form, which works without JavaScript (answers a redirect)."""
    deal = get_object_or_404(Deal.objects.select_related("stage", "pipeline"), pk=deal_id)
    owner = _owner_filter(request)
    step = request.POST.get("step", "")
    position = request.POST.get("position", "")
    stage = None
    error = None
    if step in ("prev", "next"):
        stage = deal_services.adjacent_stage(deal=deal, step=-1 if step == "prev" else 1)
        if stage is None:
            error = (
                _("The deal is already in the first stage.")
                if step == "prev"
                else _("The deal is already in the last stage.")
            )
    else:
        stage_id = request.POST.get("stage", "")
        stage = Stage.objects.filter(pk=int(stage_id)).first() if stage_id.isdigit() else None
        if stage is None:
            error = _("Choose a stage of this pipeline.")
    if position and not position.isdigit():
        error = _("The position must be a whole number.")
    if error is None:
        try:
            deal = deal_services.move_deal(
                deal=deal,
                stage=stage,
                by=request.user,
                position=int(position) if position else None,
            )
        except ValidationError as exc:
            error = " ".join(_messages_of(exc))
    if request.htmx:
        if error:
            return JsonResponse({"error": error}, status=400)
        return render(
            request,
            "crm/deals/_columns.html",
            {
                "pipeline": deal.pipeline,
                "columns": selectors.board(pipeline=deal.pipeline, owner=owner, user=request.user),
                "owner_filter": owner,
                "moved": deal,
            },
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request,
            _("“%(title)s” is now in %(stage)s.") % {"title": deal.title, "stage": deal.stage.name},
        )
    if request.POST.get("next") == "deal":
        return redirect("crm:deal", tenant_slug=request.tenant.slug, deal_id=deal.pk)
    return redirect(_board_url(request, deal.pipeline, owner))


# --- Pipelines and stages -------------------------------------------------------------------


@tenant_view(Role.AGENT)
def pipelines(request):
    pipeline_services.ensure_default_pipeline()
    form = PipelineForm(request.POST or None)
    if request.method == "POST":
        _require_admin(request)
        if form.is_valid():
            try:
                pipeline = pipeline_services.create_pipeline(name=form.cleaned_data["name"])
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, _("Pipeline created. Add its stages below."))
                return redirect(
                    "crm:pipeline", tenant_slug=request.tenant.slug, pipeline_id=pipeline.pk
                )
    return render(
        request,
        "crm/deals/pipelines.html",
        {
            "pipelines": selectors.pipelines(),
            "form": form,
            "can_manage": request.membership.has_role(Role.ADMIN),
        },
        status=400 if request.method == "POST" else 200,
    )


def _render_pipeline(request, pipeline, *, rename_form=None, stage_form=None, status=200):
    stages = selectors.stages_with_counts(pipeline=pipeline)
    return render(
        request,
        "crm/deals/pipeline.html",
        {
            "pipeline": pipeline,
            "stages": stages,
            "other_pipelines": [p for p in selectors.pipelines() if p.pk != pipeline.pk],
            "rename_form": rename_form or PipelineForm(initial={"name": pipeline.name}),
            "stage_form": stage_form or StageForm(),
            "deal_count": sum(stage.deal_count for stage in stages),
            "can_manage": request.membership.has_role(Role.ADMIN),
        },
        status=status,
    )


@tenant_view(Role.AGENT)
def pipeline(request, pipeline_id):
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    if request.method != "POST":
        return _render_pipeline(request, pipeline)
    _require_admin(request)
    form = PipelineForm(request.POST)
    if form.is_valid():
        try:
            pipeline_services.rename_pipeline(pipeline=pipeline, name=form.cleaned_data["name"])
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Pipeline renamed."))
            return redirect(
                "crm:pipeline", tenant_slug=request.tenant.slug, pipeline_id=pipeline.pk
            )
    return _render_pipeline(request, pipeline, rename_form=form, status=400)


@require_POST
@tenant_view(Role.ADMIN)
def pipeline_delete(request, pipeline_id):
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    move_to_id = request.POST.get("move_to", "")
    move_to = None
    if move_to_id.isdigit():
        move_to = Pipeline.objects.filter(pk=int(move_to_id)).first()
    try:
        pipeline_services.delete_pipeline(pipeline=pipeline, move_to=move_to, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(_messages_of(error)))
        return redirect("crm:pipeline", tenant_slug=request.tenant.slug, pipeline_id=pipeline.pk)
    messages.success(request, _("Pipeline deleted."))
    return redirect("crm:pipelines", tenant_slug=request.tenant.slug)


@require_POST
@tenant_view(Role.ADMIN)
def stage_add(request, pipeline_id):
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    form = StageForm(request.POST)
    if form.is_valid():
        try:
            pipeline_services.add_stage(
                pipeline=pipeline, name=form.cleaned_data["name"], **form.flags()
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Stage added."))
            return redirect(
                "crm:pipeline", tenant_slug=request.tenant.slug, pipeline_id=pipeline.pk
            )
    return _render_pipeline(request, pipeline, stage_form=form, status=400)


@require_POST
@tenant_view(Role.ADMIN)
def stage_edit(request, stage_id):
    stage = get_object_or_404(Stage.objects.select_related("pipeline"), pk=stage_id)
    back = redirect("crm:pipeline", tenant_slug=request.tenant.slug, pipeline_id=stage.pipeline_id)
    action = request.POST.get("action", "save")
    try:
        if action in ("up", "down"):
            pipeline_services.move_stage(stage=stage, offset=-1 if action == "up" else 1)
            return back
        if action == "delete":
            move_to_id = request.POST.get("move_to", "")
            move_to = (
                Stage.objects.filter(pk=int(move_to_id)).first() if move_to_id.isdigit() else None
            )
            pipeline_services.delete_stage(stage=stage, move_to=move_to, by=request.user)
            messages.success(request, _("Stage deleted."))
            return back
        form = StageForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("The stage was not saved: give it a name."))
            return back
        pipeline_services.update_stage(stage=stage, name=form.cleaned_data["name"], **form.flags())
    except ValidationError as error:
        messages.error(request, " ".join(_messages_of(error)))
        return back
    messages.success(request, _("Stage saved."))
    return back
