"""Business settings (admins and owners) and creating another business."""

import pytest

from tenants.models import Membership, Role, Tenant
from tests.factories import TenantFactory, UserFactory, member

pytestmark = pytest.mark.django_db

SETTINGS_URL = "/app/alpha-dental/settings/"


def settings_data(**overrides):
    data = {
        "name": "Alpha Dental Clinic",
        "time_zone": "Europe/Lisbon",
        "language": "pt",
        "request_deadline_days": "10",
        "request_deadline_kind": "calendar",
        "message_retention_days": "60",
        "webhook_payload_retention_days": "3",
        "access_log_retention_days": "400",
        "export_file_retention_days": "2",
    }
    data.update(overrides)
    return data


def test_an_owner_updates_the_settings(tenant_a, owner_a, client):
    client.force_login(owner_a)
    page = client.get(SETTINGS_URL)
    assert page.status_code == 200
    assert "style=" not in page.content.decode()

    response = client.post(SETTINGS_URL, settings_data(), follow=True)

    assert "Settings saved." in response.content.decode()
    tenant_a.refresh_from_db()
    assert tenant_a.name == "Alpha Dental Clinic"
    assert tenant_a.time_zone == "Europe/Lisbon"
    assert tenant_a.language == "pt"
    assert tenant_a.request_deadline_days == 10
    assert tenant_a.request_deadline_kind == "calendar"
    assert tenant_a.message_retention_days == 60
    assert tenant_a.webhook_payload_retention_days == 3
    assert tenant_a.access_log_retention_days == 400
    assert tenant_a.export_file_retention_days == 2
    assert tenant_a.slug == "alpha-dental"


def test_an_admin_may_too(tenant_a, owner_a, client):
    client.force_login(member(tenant_a, role=Role.ADMIN))

    client.post(SETTINGS_URL, settings_data(name="Renamed"))

    tenant_a.refresh_from_db()
    assert tenant_a.name == "Renamed"


def test_an_agent_may_not(tenant_a, owner_a, client):
    client.force_login(member(tenant_a, role=Role.AGENT))

    assert client.get(SETTINGS_URL).status_code == 403
    assert client.post(SETTINGS_URL, settings_data(name="Hijacked")).status_code == 403
    tenant_a.refresh_from_db()
    assert tenant_a.name == "Alpha Dental"


def test_a_non_member_gets_404(tenant_a, owner_b, client):
    client.force_login(owner_b)

    assert client.get(SETTINGS_URL).status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_zone", "Mars/Olympus_Mons"),
        ("request_deadline_days", "0"),
        ("request_deadline_days", "-3"),
        ("message_retention_days", "-1"),
        ("export_file_retention_days", "0"),  # export archives are never kept for ever
        ("language", "xx"),
        ("request_deadline_kind", "fortnights"),
        ("name", ""),
    ],
)
def test_bad_values_are_refused_with_a_message(tenant_a, owner_a, client, field, value):
    client.force_login(owner_a)

    response = client.post(SETTINGS_URL, settings_data(**{field: value}))

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert 'class="errors"' in response.content.decode()
    tenant_a.refresh_from_db()
    assert tenant_a.name == "Alpha Dental"
    assert tenant_a.time_zone == "UTC"
    assert tenant_a.request_deadline_days == 7


def test_a_rejected_name_does_not_leak_into_the_page(tenant_a, owner_a, client):
    client.force_login(owner_a)

    response = client.post(SETTINGS_URL, settings_data(name="", request_deadline_days="0"))

    assert response.context["tenant"].name == "Alpha Dental"


# --- Another business -------------------------------------------------------------------------


def test_creating_another_business(tenant_a, owner_a, client):
    client.force_login(owner_a)
    assert client.get("/app/new/").status_code == 200

    response = client.post(
        "/app/new/", {"name": "Second Shop", "slug": "second-shop", "time_zone": "Europe/Madrid"}
    )

    assert response["Location"] == "/app/second-shop/"
    tenant = Tenant.objects.get(slug="second-shop")
    assert tenant.time_zone == "Europe/Madrid"
    assert Membership.objects.get(user=owner_a, tenant=tenant).role == Role.OWNER
    assert client.get("/app/second-shop/").status_code == 200


def test_the_address_is_derived_from_the_name_when_left_empty(client):
    client.force_login(UserFactory())

    response = client.post("/app/new/", {"name": "Café Olé", "slug": "", "time_zone": "UTC"})

    assert response["Location"] == "/app/cafe-ole/"


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("Not A Slug!", "Use 3 to 50 lowercase letters"),
        ("ab", "Use 3 to 50 lowercase letters"),
        ("-edge", "Use 3 to 50 lowercase letters"),
        ("admin", "is reserved; choose another."),
        ("taken-one", "That address is taken; choose another."),
    ],
)
def test_a_bad_or_taken_address_is_refused(client, slug, message):
    TenantFactory(slug="taken-one")
    user = UserFactory()
    client.force_login(user)

    response = client.post("/app/new/", {"name": "Shop", "slug": slug, "time_zone": "UTC"})

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["slug"])
    assert message.split(";")[0].split("“")[0] in response.content.decode()
    assert not Membership.objects.filter(user=user).exists()


def test_a_business_needs_a_name_and_a_known_time_zone(client):
    client.force_login(UserFactory())

    response = client.post("/app/new/", {"name": "  ", "slug": "", "time_zone": "Nowhere/City"})

    assert set(response.context["form"].errors) == {"name", "time_zone"}
    assert not Tenant.objects.exists()


def test_creating_a_business_needs_a_login(client):
    response = client.get("/app/new/")

    assert response["Location"].startswith("/accounts/login/")
