"""Pipelines and stages: the default pipeline, renaming, ordering, won/lost, safe deletion."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm.models import Deal, DealStageChange, Pipeline, Stage
from crm.services import pipelines as services
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import DealFactory, PipelineFactory, StageFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


@pytest.fixture
def in_a(tenant_a):
    """Tenant A active for the test body (services and the scoped managers need it)."""
    with tenant_context(tenant_a):
        yield tenant_a


def url(name, tenant, **kwargs):
    return reverse(name, kwargs={"tenant_slug": tenant.slug, **kwargs})


def test_opening_the_deals_page_creates_the_default_sales_pipeline_once(owner_client, tenant_a):
    first = owner_client.get(url("crm:deals", tenant_a))
    second = owner_client.get(url("crm:deals", tenant_a))

    assert first.status_code == second.status_code == 200
    with tenant_context(tenant_a):
        pipeline = Pipeline.objects.get()
        stages = list(pipeline.stages.order_by("position"))
    assert pipeline.name == "Sales"
    assert [s.name for s in stages] == [
        "Lead",
        "Qualified",
        "Proposal",
        "Negotiation",
        "Won",
        "Lost",
    ]
    assert stages[-2].is_won and stages[-1].is_lost
    html = first.content.decode()
    for stage in stages:
        assert stage.name in html


def test_a_business_with_a_pipeline_gets_no_default_one(owner_client, tenant_a):
    existing = PipelineFactory(tenant=tenant_a, name="Renovations")
    StageFactory(tenant=tenant_a, pipeline=existing, name="Survey")

    html = owner_client.get(url("crm:deals", tenant_a)).content.decode()

    with tenant_context(tenant_a):
        assert list(Pipeline.objects.values_list("name", flat=True)) == ["Renovations"]
    assert "Survey" in html


def test_an_admin_creates_renames_and_adds_stages(owner_client, tenant_a):
    response = owner_client.post(url("crm:pipelines", tenant_a), {"name": "Partners"})
    with tenant_context(tenant_a):
        pipeline = Pipeline.objects.get(name="Partners")
    assert response.status_code == 302

    owner_client.post(url("crm:pipeline", tenant_a, pipeline_id=pipeline.pk), {"name": "Resellers"})
    owner_client.post(
        url("crm:stage_add", tenant_a, pipeline_id=pipeline.pk),
        {"name": "Signed", "outcome": "won"},
    )

    with tenant_context(tenant_a):
        pipeline.refresh_from_db()
        names = list(pipeline.stages.order_by("position").values_list("name", "is_won"))
    assert pipeline.name == "Resellers"
    assert names[-1] == ("Signed", True)


def test_an_empty_pipeline_name_is_a_form_error(owner_client, tenant_a):
    response = owner_client.post(url("crm:pipelines", tenant_a), {"name": "  "})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_an_agent_cannot_change_pipelines(client, tenant_a):
    agent = member(tenant_a, role=Role.AGENT)
    client.force_login(agent)
    pipeline = PipelineFactory(tenant=tenant_a)

    assert client.post(url("crm:pipelines", tenant_a), {"name": "Mine"}).status_code == 403
    assert (
        client.post(url("crm:pipeline_delete", tenant_a, pipeline_id=pipeline.pk)).status_code
        == 403
    )
    with tenant_context(tenant_a):
        assert Pipeline.objects.count() == 1


def test_stages_reorder_up_and_down(owner_client, tenant_a):
    pipeline = PipelineFactory(tenant=tenant_a)
    a, _b, c = (StageFactory(tenant=tenant_a, pipeline=pipeline, name=n) for n in "ABC")

    owner_client.post(url("crm:stage_edit", tenant_a, stage_id=c.pk), {"action": "up"})
    owner_client.post(url("crm:stage_edit", tenant_a, stage_id=a.pk), {"action": "down"})

    with tenant_context(tenant_a):
        order = list(pipeline.stages.order_by("position").values_list("name", flat=True))
    assert order == ["C", "A", "B"]  # C up: A C B; then A down: C A B


def test_moving_a_stage_earlier_then_another_later_gives_the_expected_order(in_a):
    pipeline = PipelineFactory(tenant=in_a)
    a, b, c = (StageFactory(tenant=in_a, pipeline=pipeline, name=n) for n in "ABC")

    services.move_stage(stage=c, offset=-1)  # A C B
    services.move_stage(stage=a, offset=1)  # C A B
    services.move_stage(stage=b, offset=1)  # at the end already: unchanged

    assert list(pipeline.stages.order_by("position").values_list("name", flat=True)) == [
        "C",
        "A",
        "B",
    ]


def test_a_stage_cannot_be_both_won_and_lost(in_a):
    stage = StageFactory(tenant=in_a)

    with pytest.raises(ValidationError):
        services.update_stage(stage=stage, name="Both", is_won=True, is_lost=True)
    with pytest.raises(ValidationError):
        services.add_stage(pipeline=stage.pipeline, name="Both", is_won=True, is_lost=True)


def test_a_stage_with_deals_is_not_deleted_unless_its_deals_move(owner_client, tenant_a, owner_a):
    pipeline = PipelineFactory(tenant=tenant_a)
    doomed = StageFactory(tenant=tenant_a, pipeline=pipeline, name="Doomed")
    keeper = StageFactory(tenant=tenant_a, pipeline=pipeline, name="Keeper")
    deal = DealFactory(tenant=tenant_a, stage=doomed)

    refused = owner_client.post(
        url("crm:stage_edit", tenant_a, stage_id=doomed.pk), {"action": "delete"}, follow=True
    )
    assert "still has 1 deal(s)" in refused.content.decode()
    with tenant_context(tenant_a):
        assert Stage.objects.filter(pk=doomed.pk).exists()

    owner_client.post(
        url("crm:stage_edit", tenant_a, stage_id=doomed.pk),
        {"action": "delete", "move_to": keeper.pk},
    )
    with tenant_context(tenant_a):
        assert not Stage.objects.filter(pk=doomed.pk).exists()
        deal.refresh_from_db()
        assert deal.stage == keeper
        change = DealStageChange.objects.filter(deal=deal).latest("id")
        assert change.to_stage == keeper and change.changed_by == owner_a


def test_a_stage_cannot_hand_its_deals_to_another_pipeline(in_a):
    stage = StageFactory(tenant=in_a)
    DealFactory(tenant=in_a, stage=stage)
    elsewhere = StageFactory(tenant=in_a)

    with pytest.raises(ValidationError):
        services.delete_stage(stage=stage, move_to=elsewhere)
    assert Stage.objects.filter(pk=stage.pk).exists()


def test_a_pipeline_with_deals_is_deleted_only_when_they_move(owner_client, tenant_a):
    old = PipelineFactory(tenant=tenant_a, name="Old")
    new = PipelineFactory(tenant=tenant_a, name="New")
    first_new = StageFactory(tenant=tenant_a, pipeline=new, name="Intake", position=0)
    StageFactory(tenant=tenant_a, pipeline=new, name="Later", position=1)
    deal = DealFactory(tenant=tenant_a, stage__pipeline=old)

    owner_client.post(url("crm:pipeline_delete", tenant_a, pipeline_id=old.pk))
    with tenant_context(tenant_a):
        assert Pipeline.objects.filter(pk=old.pk).exists()

    owner_client.post(url("crm:pipeline_delete", tenant_a, pipeline_id=old.pk), {"move_to": new.pk})
    with tenant_context(tenant_a):
        assert not Pipeline.objects.filter(pk=old.pk).exists()
        deal = Deal.objects.get(pk=deal.pk)
        assert (deal.pipeline, deal.stage) == (new, first_new)


def test_an_empty_pipeline_is_deleted(owner_client, tenant_a):
    pipeline = PipelineFactory(tenant=tenant_a)

    response = owner_client.post(url("crm:pipeline_delete", tenant_a, pipeline_id=pipeline.pk))

    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert not Pipeline.objects.exists()
