"""Deals and the board: stages of the right pipeline only, history, closed_at, totals, moves."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm.models import Deal, DealStageChange
from crm.selectors.deals import board
from crm.services import deals as services
from tenants.context import tenant_context
from tests.factories import (
    ContactFactory,
    DealFactory,
    PipelineFactory,
    StageFactory,
    TenantFactory,
    member,
)

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


@pytest.fixture
def pipeline(tenant_a):
    pipeline = PipelineFactory(tenant=tenant_a, name="Sales")
    for position, (name, won, lost) in enumerate(
        [("Lead", False, False), ("Proposal", False, False), ("Won", True, False),
         ("Lost", False, True)]
    ):  # fmt: skip
        StageFactory(
            tenant=tenant_a, pipeline=pipeline, name=name, position=position, is_won=won,
            is_lost=lost,
        )  # fmt: skip
    return pipeline


def stage(pipeline, name):
    with tenant_context(pipeline.tenant):
        return pipeline.stages.get(name=name)


def deal_form(pipeline, stage_obj, **overrides):
    data = {
        "title": "New surgery chairs",
        "pipeline": pipeline.pk,
        "stage": stage_obj.pk,
        "value": "1250.50",
        "currency": "EUR",
    }
    data.update(overrides)
    return data


# --- Creating and editing ----------------------------------------------------------------------


def test_a_deal_is_created_from_the_form_with_its_first_history_row(
    owner_client, tenant_a, owner_a, pipeline
):
    contact = ContactFactory(tenant=tenant_a, name="Ana Lima")
    lead = stage(pipeline, "Lead")

    response = owner_client.post(
        url("crm:deal_new", tenant_a),
        deal_form(pipeline, lead, contact=contact.pk, owner=owner_a.pk),
    )

    assert response.status_code == 302
    with tenant_context(tenant_a):
        deal = Deal.objects.get()
        assert (deal.title, deal.value, deal.currency) == (
            "New surgery chairs",
            Decimal("1250.50"),
            "EUR",
        )
        assert deal.contact == contact and deal.owner == owner_a
        assert [(c.from_stage, c.to_stage) for c in deal.stage_changes.all()] == [(None, lead)]
    page = owner_client.get(response["Location"]).content.decode()
    assert "Created in Lead" in page and "Ana Lima" in page


def test_the_form_refuses_a_stage_of_another_pipeline(owner_client, tenant_a, pipeline):
    other = StageFactory(tenant=tenant_a, name="Elsewhere")

    response = owner_client.post(url("crm:deal_new", tenant_a), deal_form(pipeline, other))

    assert response.status_code == 400
    assert "is a stage of" in response.content.decode()
    with tenant_context(tenant_a):
        assert not Deal.objects.exists()


def test_the_form_refuses_a_stage_of_another_business(owner_client, tenant_a, pipeline):
    foreign = StageFactory(tenant=TenantFactory())

    response = owner_client.post(url("crm:deal_new", tenant_a), deal_form(pipeline, foreign))

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    with tenant_context(tenant_a):
        assert not Deal.objects.exists()


def test_the_form_refuses_a_negative_value_an_unknown_currency_and_a_non_member_owner(
    owner_client, tenant_a, pipeline
):
    outsider = member(TenantFactory())

    response = owner_client.post(
        url("crm:deal_new", tenant_a),
        deal_form(pipeline, stage(pipeline, "Lead"), value="-5", currency="XXX", owner=outsider.pk),
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "greater than or equal to 0" in html
    assert "Select a valid choice. XXX" in html
    assert html.count('class="errors"') >= 3
    with tenant_context(tenant_a):
        assert not Deal.objects.exists()


def test_the_service_refuses_a_stage_of_another_pipeline(in_a, pipeline):
    other = StageFactory(tenant=in_a)

    with pytest.raises(ValidationError) as refused:
        services.create_deal(pipeline=pipeline, stage=other, title="Chairs")
    assert "stage" in refused.value.message_dict

    deal = DealFactory(tenant=in_a, stage=stage(pipeline, "Lead"))
    with pytest.raises(ValidationError):
        services.move_deal(deal=deal, stage=other)
    with pytest.raises(ValidationError):
        services.update_deal(deal=deal, stage=other)
    deal.refresh_from_db()
    assert deal.stage.name == "Lead"


def test_the_service_refuses_a_negative_value(in_a, pipeline):
    with pytest.raises(ValidationError) as refused:
        services.create_deal(
            pipeline=pipeline, stage=stage(pipeline, "Lead"), title="Chairs", value=Decimal("-1")
        )
    assert "value" in refused.value.message_dict


def test_editing_a_deal_to_another_stage_records_the_move(owner_client, tenant_a, pipeline):
    deal = DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"), title="Chairs")
    proposal = stage(pipeline, "Proposal")

    response = owner_client.post(
        url("crm:deal_edit", tenant_a, deal_id=deal.pk),
        deal_form(pipeline, proposal, title="Chairs and lamps", value="99"),
    )

    assert response.status_code == 302
    with tenant_context(tenant_a):
        deal.refresh_from_db()
        assert (deal.title, deal.stage, deal.value) == ("Chairs and lamps", proposal, Decimal(99))
        assert deal.stage_changes.get().to_stage == proposal


# --- Moving: history, closed_at, idempotence ---------------------------------------------------


def test_moving_records_who_when_from_and_to_and_sets_then_clears_closed_at(
    in_a, owner_a, pipeline
):
    lead, won, lost = (stage(pipeline, n) for n in ("Lead", "Won", "Lost"))
    deal = services.create_deal(pipeline=pipeline, stage=lead, title="Chairs", by=owner_a)
    assert deal.closed_at is None

    deal = services.move_deal(deal=deal, stage=won, by=owner_a)
    assert deal.closed_at is not None
    won_at = deal.closed_at

    deal = services.move_deal(deal=deal, stage=lost, by=owner_a)
    assert deal.closed_at is not None and deal.closed_at >= won_at

    deal = services.move_deal(deal=deal, stage=lead, by=owner_a)
    assert deal.closed_at is None

    changes = list(DealStageChange.objects.filter(deal=deal).order_by("id"))
    assert [(c.from_stage, c.to_stage) for c in changes] == [
        (None, lead),
        (lead, won),
        (won, lost),
        (lost, lead),
    ]
    assert all(c.changed_by == owner_a and c.changed_at for c in changes)


def test_moving_to_the_current_stage_changes_nothing(in_a, pipeline):
    deal = services.create_deal(pipeline=pipeline, stage=stage(pipeline, "Lead"), title="Chairs")

    services.move_deal(deal=deal, stage=stage(pipeline, "Lead"))
    services.move_deal(deal=deal, stage=stage(pipeline, "Lead"))

    assert DealStageChange.objects.filter(deal=deal).count() == 1


# --- The board ---------------------------------------------------------------------------------


def test_board_totals_are_per_currency_and_per_stage(in_a, pipeline):
    lead = stage(pipeline, "Lead")
    for value, currency in [("100", "USD"), ("250.25", "USD"), ("80", "EUR")]:
        DealFactory(tenant=in_a, stage=lead, value=Decimal(value), currency=currency)
    DealFactory(tenant=in_a, stage=stage(pipeline, "Won"), value=Decimal(500), currency="GBP")

    columns = {column.stage.name: column for column in board(pipeline=pipeline)}

    assert columns["Lead"].count == 3
    assert columns["Lead"].totals == [("EUR", Decimal("80.00")), ("USD", Decimal("350.25"))]
    assert columns["Won"].totals == [("GBP", Decimal("500.00"))]
    assert columns["Proposal"].count == 0 and columns["Proposal"].totals == []


def test_the_board_page_shows_counts_totals_and_distinct_won_and_lost_columns(
    owner_client, tenant_a, pipeline
):
    DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"), value=1500, currency="USD")
    DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"), value=20, currency="EUR")

    html = owner_client.get(url("crm:pipeline_board", tenant_a, pipeline_id=pipeline.pk)).content
    html = html.decode()

    assert "1,500.00 USD" in html and "20.00 EUR" in html
    assert "board-column-won" in html and "board-column-lost" in html
    assert 'draggable="true"' in html
    assert 'src="/static/js/board.js"' in html


def test_the_board_filters_by_owner(owner_client, tenant_a, owner_a, pipeline):
    colleague = member(tenant_a)
    DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"), title="Mine", owner=owner_a)
    DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"), title="Theirs", owner=colleague)
    board_url = url("crm:pipeline_board", tenant_a, pipeline_id=pipeline.pk)

    mine = owner_client.get(board_url, {"owner": "me"}).content.decode()
    theirs = owner_client.get(board_url, {"owner": colleague.pk}).content.decode()

    assert "Mine" in mine and "Theirs" not in mine
    assert "Theirs" in theirs and ">Mine<" not in theirs


def test_the_no_js_move_form_moves_the_card_and_redirects_to_the_board(
    owner_client, tenant_a, owner_a, pipeline
):
    deal = DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"), title="Chairs")
    proposal = stage(pipeline, "Proposal")

    response = owner_client.post(
        url("crm:deal_move", tenant_a, deal_id=deal.pk), {"stage": proposal.pk, "owner": "me"}
    )

    assert response.status_code == 302
    assert response["Location"].endswith(
        url("crm:pipeline_board", tenant_a, pipeline_id=pipeline.pk) + "?owner=me"
    )
    with tenant_context(tenant_a):
        deal.refresh_from_db()
        assert deal.stage == proposal
        assert deal.stage_changes.get().changed_by == owner_a


def test_the_next_and_previous_buttons_step_through_the_stages(owner_client, tenant_a, pipeline):
    deal = DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"))
    move = url("crm:deal_move", tenant_a, deal_id=deal.pk)

    owner_client.post(move, {"step": "next"})
    owner_client.post(move, {"step": "next"})
    owner_client.post(move, {"step": "prev"})
    with tenant_context(tenant_a):
        deal.refresh_from_db()
        assert deal.stage.name == "Proposal"

    owner_client.post(move, {"step": "prev"})
    refused = owner_client.post(move, {"step": "prev"}, follow=True)
    assert "already in the first stage" in refused.content.decode()


def test_the_htmx_move_answers_the_re_rendered_columns_in_the_dropped_order(
    owner_client, tenant_a, pipeline
):
    proposal = stage(pipeline, "Proposal")
    first = DealFactory(tenant=tenant_a, stage=proposal, title="First", position=0)
    second = DealFactory(tenant=tenant_a, stage=proposal, title="Second", position=1)
    dragged = DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"), title="Dragged")

    response = owner_client.post(
        url("crm:deal_move", tenant_a, deal_id=dragged.pk),
        {"stage": proposal.pk, "position": "1"},
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="board-columns"')
    assert "<html" not in html
    assert html.index(">First<") < html.index(">Dragged<") < html.index(">Second<")
    with tenant_context(tenant_a):
        order = list(Deal.objects.filter(stage=proposal).order_by("position"))
    assert order == [first, dragged, second]


def test_an_htmx_move_within_a_column_reorders_without_history(owner_client, tenant_a, pipeline):
    lead = stage(pipeline, "Lead")
    a = DealFactory(tenant=tenant_a, stage=lead, position=0)
    b = DealFactory(tenant=tenant_a, stage=lead, position=1)

    owner_client.post(
        url("crm:deal_move", tenant_a, deal_id=b.pk),
        {"stage": lead.pk, "position": "0"},
        headers={"HX-Request": "true"},
    )

    with tenant_context(tenant_a):
        assert list(Deal.objects.filter(stage=lead).order_by("position")) == [b, a]
        assert not DealStageChange.objects.exists()


def test_an_htmx_move_to_a_stage_of_another_pipeline_is_a_400_with_a_reason(
    owner_client, tenant_a, pipeline
):
    deal = DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"))
    other = StageFactory(tenant=tenant_a)

    response = owner_client.post(
        url("crm:deal_move", tenant_a, deal_id=deal.pk),
        {"stage": other.pk},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 400
    assert response.json() == {"error": "This stage belongs to another pipeline."}
    with tenant_context(tenant_a):
        deal.refresh_from_db()
        assert deal.stage.name == "Lead"


def test_a_stage_id_of_another_business_is_refused(owner_client, tenant_a, pipeline):
    deal = DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"))
    foreign = StageFactory(tenant=TenantFactory())

    response = owner_client.post(
        url("crm:deal_move", tenant_a, deal_id=deal.pk),
        {"stage": foreign.pk},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 400
    with tenant_context(tenant_a):
        deal.refresh_from_db()
        assert deal.stage.name == "Lead"


# --- Demo data -----------------------------------------------------------------------------


def test_the_demo_seeds_a_board_and_this_weeks_appointments_once():
    import io

    from django.core.management import call_command

    from crm.models import Appointment, Pipeline
    from tenants.models import Tenant

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())

    with tenant_context(Tenant.objects.get(slug="demo")):
        assert Pipeline.objects.count() == 1
        assert Deal.objects.count() == 6
        assert len({deal.currency for deal in Deal.objects.all()}) > 1
        assert Appointment.objects.count() == 4
        assert DealStageChange.objects.count() == 6


def test_every_deals_page_highlights_deals_in_the_navigation(owner_client, tenant_a, pipeline):
    deal = DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"))
    deals_link = f'href="{url("crm:deals", tenant_a)}" aria-current="page"'

    for page in (
        url("crm:pipeline_board", tenant_a, pipeline_id=pipeline.pk),
        url("crm:deal", tenant_a, deal_id=deal.pk),
        url("crm:pipelines", tenant_a),
    ):
        assert deals_link in owner_client.get(page).content.decode(), page


def test_an_admin_deletes_a_deal_and_an_agent_cannot(client, owner_client, tenant_a, pipeline):
    from tenants.models import Role

    deal = DealFactory(tenant=tenant_a, stage=stage(pipeline, "Lead"))
    delete = url("crm:deal_delete", tenant_a, deal_id=deal.pk)
    agent_client = client.__class__()
    agent_client.force_login(member(tenant_a, role=Role.AGENT))

    assert agent_client.post(delete).status_code == 403
    response = owner_client.post(delete)

    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert not Deal.objects.filter(pk=deal.pk).exists()
