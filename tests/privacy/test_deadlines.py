"""P7: every data request is due on a date counted on the business's calendar."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError

from privacy import deadlines, dsr
from privacy.models import DataRequest
from tenants.context import tenant_context
from tenants.models import Tenant
from tests.factories import DataRequestFactory, TenantFactory

MONDAY = datetime.date(2026, 11, 30)
FRIDAY = datetime.date(2026, 12, 4)


def test_seven_business_days_skip_the_weekend():
    # Received on a Monday: Tue..Fri (4), Mon..Wed (3) → Wednesday of the next week.
    assert deadlines.add_business_days(MONDAY, 7) == datetime.date(2026, 12, 9)


def test_a_request_on_friday_counts_from_monday():
    assert deadlines.add_business_days(FRIDAY, 1) == datetime.date(2026, 12, 7)
    assert deadlines.add_business_days(FRIDAY, 7) == datetime.date(2026, 12, 15)


def test_a_request_on_saturday_is_due_as_one_from_friday():
    saturday = datetime.date(2026, 12, 5)
    assert deadlines.add_business_days(saturday, 7) == datetime.date(2026, 12, 15)


def test_holidays_do_not_count():
    christmas = {datetime.date(2026, 12, 25), datetime.date(2026, 12, 28)}
    # Mon 21 Dec + 5 business days: 22, 23, 24, (25 holiday, weekend, 28 holiday) 29, 30.
    assert deadlines.add_business_days(
        datetime.date(2026, 12, 21), 5, holidays=christmas
    ) == datetime.date(2026, 12, 30)


def test_a_friday_saturday_weekend():
    # Thursday + 2 business days with Friday and Saturday off: Sunday, Monday.
    thursday = datetime.date(2026, 12, 3)
    assert deadlines.add_business_days(thursday, 2, weekend={4, 5}) == datetime.date(2026, 12, 7)


@pytest.mark.django_db
def test_the_business_settings_choose_the_calendar():
    tenant = TenantFactory()
    assert deadlines.due_date(tenant=tenant, received=MONDAY) == datetime.date(2026, 12, 9)

    tenant.request_deadline_kind = Tenant.DeadlineKind.CALENDAR_DAYS
    tenant.request_deadline_days = 30
    assert deadlines.due_date(tenant=tenant, received=MONDAY) == datetime.date(2026, 12, 30)

    tenant.request_deadline_kind = Tenant.DeadlineKind.BUSINESS_DAYS
    tenant.request_deadline_days = 2
    tenant.request_weekend_days = "4,5"
    tenant.request_holidays = "2026-12-01\n2026-12-02"
    # Mon 30 Nov + 2: Tue and Wed are holidays → Thu 3, (Fri, Sat off) Sun 6.
    assert deadlines.due_date(tenant=tenant, received=MONDAY) == datetime.date(2026, 12, 6)


@pytest.mark.django_db
def test_bad_calendar_settings_are_refused_with_a_reason():
    tenant = TenantFactory()
    tenant.request_weekend_days = "5,9"
    tenant.request_holidays = "25/12/2026"
    with pytest.raises(ValidationError) as caught:
        tenant.full_clean()
    assert set(caught.value.message_dict) == {"request_weekend_days", "request_holidays"}
    tenant.request_weekend_days = "0,1,2,3,4,5,6"
    tenant.request_holidays = ""
    with pytest.raises(ValidationError):
        tenant.full_clean()


@pytest.mark.django_db
def test_a_new_request_gets_its_due_date_and_is_overdue_after_it(tenant_a):
    with tenant_context(tenant_a):
        data_request = dsr.create_request(kind=DataRequest.Kind.EXPORT, phone="+14155550100")
        today = deadlines.today_for(tenant_a)
        assert data_request.due_date == deadlines.due_date(tenant=tenant_a, received=today)
        assert not data_request.is_overdue(today)
        assert data_request.is_overdue(data_request.due_date + datetime.timedelta(days=1))
        assert not data_request.is_overdue(data_request.due_date)


@pytest.mark.django_db
def test_overdue_counts_only_open_requests(tenant_a):
    yesterday = datetime.date.today() - datetime.timedelta(days=2)
    DataRequestFactory(tenant=tenant_a, due_date=yesterday)
    DataRequestFactory(tenant=tenant_a, due_date=yesterday, status=DataRequest.Status.DONE)
    DataRequestFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        summary = dsr.summary(tenant=tenant_a)
    assert summary["open"] == 2
    assert summary["overdue"] == 1
    assert summary["next_due"] == yesterday
