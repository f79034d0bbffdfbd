"""The dashboard shell: every page renders, navigation works, no third-party code (P4)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import RequestFactory
from django.urls import reverse

from tenants import views
from tenants.models import Role
from tests.factories import MembershipFactory, member

pytestmark = pytest.mark.django_db

NAV_TARGETS = [
    "tenant:home",
    "channels:inbox",
    "crm:contacts",
    "crm:companies",
    "crm:tasks",
    "crm:deals",
    "crm:calendar",
    "crm:campaigns",
    "channels:bot",
    "channels:channels",
    "privacy:centre",
    "tenant:members",
    "tenant:settings",
]
PLACEHOLDERS = [
    "crm:campaigns",
]


def url(name, tenant):
    return reverse(name, kwargs={"tenant_slug": tenant.slug})


class Page(HTMLParser):
    """The bits of a page the tests look at: scripts, style attributes, external resources."""

    def __init__(self, html: str):
        super().__init__()
        self.scripts: list[dict] = []
        self.style_attributes: list[str] = []
        self.style_elements = 0
        self.resources: list[str] = []
        self.links: list[str] = []
        self.current_links: list[str] = []
        self._in_script: dict | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs:
            self.style_attributes.append(tag)
        if any(name.startswith("on") for name in attrs):
            self.style_attributes.append(f"{tag} event handler")
        if tag == "script":
            self._in_script = {"src": attrs.get("src"), "body": ""}
            self.scripts.append(self._in_script)
        if tag == "style":
            self.style_elements += 1
        for attribute in ("src", "srcset", "poster", "data"):
            if attrs.get(attribute):
                self.resources.append(attrs[attribute])
        if tag == "link" and attrs.get("href"):
            self.resources.append(attrs["href"])
        if tag == "use" and attrs.get("href"):
            self.resources.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
            if attrs.get("aria-current") == "page":
                self.current_links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script["body"] += data


def assert_no_third_party_code(html: str, where: str) -> None:
    page = Page(html)
    for script in page.scripts:
        if script["src"] is None:
            assert not script["body"].strip(), f"inline <script> on {where}"
        else:
            assert script["src"].startswith("/static/"), f"{script['src']} on {where}"
    for resource in page.resources:
        assert resource.startswith("/") and not resource.startswith("//"), (
            f"resource {resource} on {where} is not ours"
        )
    assert not page.style_attributes, f"inline style/handler on {where}: {page.style_attributes}"
    assert page.style_elements == 0, f"inline <style> on {where}"


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


# --- The shell ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAV_TARGETS)
def test_every_nav_target_renders_for_an_owner(owner_client, tenant_a, name):
    response = owner_client.get(url(name, tenant_a))

    assert response.status_code == 200
    assert b'id="app-nav"' in response.content


def test_the_navigation_links_every_section(owner_client, tenant_a):
    page = Page(owner_client.get(url("tenant:home", tenant_a)).content.decode())

    for name in NAV_TARGETS:
        assert url(name, tenant_a) in page.links, name


def test_the_current_section_is_highlighted(owner_client, tenant_a):
    page = Page(owner_client.get(url("crm:deals", tenant_a)).content.decode())

    assert page.current_links == [url("crm:deals", tenant_a)]


def test_an_agent_sees_no_settings_link_and_cannot_open_settings(client, tenant_a):
    agent = member(tenant_a, role=Role.AGENT)
    client.force_login(agent)

    home = client.get(url("tenant:home", tenant_a))
    settings_page = client.get(url("tenant:settings", tenant_a))

    assert url("tenant:settings", tenant_a) not in Page(home.content.decode()).links
    assert url("channels:inbox", tenant_a) in Page(home.content.decode()).links
    assert settings_page.status_code == 403
    assert "You do not have access to this page" in settings_page.content.decode()


def test_the_shell_has_a_skip_link_user_menu_and_business_switcher(client, tenant_a, tenant_b):
    user = member(tenant_a, email="both@example.com")
    MembershipFactory(tenant=tenant_b, user=user, role=Role.AGENT)
    client.force_login(user)

    html = client.get(url("tenant:home", tenant_a)).content.decode()
    page = Page(html)

    assert 'href="#main"' in html and 'id="main"' in html
    assert "both@example.com" in html
    assert reverse("mfa_index") in page.links
    assert reverse("account_change_password") in page.links
    assert f'action="{reverse("account_logout")}"' in html
    assert url("tenant:home", tenant_b) in page.links
    assert reverse("tenants:new") in page.links


def test_section_placeholders_say_they_are_not_available_yet(owner_client, tenant_a):
    for name in PLACEHOLDERS:
        html = owner_client.get(url(name, tenant_a)).content.decode()

        assert "This section is not available yet" in html, name
        assert "issue" not in html.lower(), name


def test_flash_messages_show_and_can_be_dismissed(owner_client, tenant_a):
    from tenants.forms import TenantSettingsForm

    form = TenantSettingsForm(instance=tenant_a)
    data = {name: value for name, value in form.initial.items() if name in form.fields}
    data["name"] = "Alpha Dental Care"

    response = owner_client.post(url("tenant:settings", tenant_a), data, follow=True)
    html = response.content.decode()

    assert 'class="message message-success"' in html
    assert "data-dismiss" in html


# --- Tenant home -------------------------------------------------------------------------------


def test_home_welcomes_and_lists_getting_started_team_and_sections(owner_client, tenant_a):
    member(tenant_a, role=Role.AGENT, email="colleague@example.com")

    html = owner_client.get(url("tenant:home", tenant_a)).content.decode()

    assert "Alpha Dental" in html
    assert "Getting started" in html
    assert url("tenant:members", tenant_a) in html
    assert url("channels:channels", tenant_a) in html
    assert "colleague@example.com" in html
    assert "Coming soon" in html
    for title in ("Inbox", "Contacts", "Deals", "Calendar", "Campaigns", "Bot", "Privacy"):
        assert title in html


def test_the_team_card_refreshes_through_htmx(owner_client, tenant_a):
    member(tenant_a, role=Role.AGENT, email="newcomer@example.com")

    response = owner_client.get(
        url("tenant:home", tenant_a),
        headers={"HX-Request": "true", "HX-Target": "team-card"},
    )
    html = response.content.decode()

    assert response.status_code == 200
    assert html.lstrip().startswith("<section")
    assert 'id="team-card"' in html
    assert "newcomer@example.com" in html
    assert "<html" not in html
    assert "HX-Request" in response["Vary"]


def test_htmx_requests_carry_the_csrf_token(owner_client, tenant_a):
    html = owner_client.get(url("tenant:home", tenant_a)).content.decode()

    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert 'src="/static/js/htmx.min.js"' in html


# --- Landing page ------------------------------------------------------------------------------


def test_landing_explains_the_product_and_offers_login_and_signup(client):
    response = client.get(reverse("landing"))
    page = Page(response.content.decode())

    assert response.status_code == 200
    assert "Sales OS" in response.content.decode()
    assert reverse("account_login") in page.links
    assert reverse("account_signup") in page.links


def test_landing_sends_signed_in_people_to_their_business(owner_client, tenant_a):
    response = owner_client.get(reverse("landing"))

    assert response.status_code == 302


# --- P4: no third-party code, CSP on --------------------------------------------------------


def test_pages_carry_no_third_party_scripts(client, tenant_a, owner_a):
    anonymous = ["landing", "account_login", "account_signup"]
    for name in anonymous:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert_no_third_party_code(response.content.decode(), name)

    client.force_login(owner_a)
    for name in NAV_TARGETS:
        response = client.get(url(name, tenant_a))
        assert response.status_code == 200, name
        assert_no_third_party_code(response.content.decode(), name)
    response = client.get(reverse("tenants:new"))
    assert_no_third_party_code(response.content.decode(), "tenants:new")


def test_every_page_is_served_with_a_strict_content_security_policy(owner_client, tenant_a):
    for path in (reverse("account_login"), url("tenant:home", tenant_a), "/no-such-page/"):
        policy = owner_client.get(path)["Content-Security-Policy"]

        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "unsafe-inline" not in policy


# --- Error pages -------------------------------------------------------------------------------


def test_an_unknown_address_gets_the_friendly_404_page(client):
    response = client.get("/there/is/nothing/here/")
    html = response.content.decode()

    assert response.status_code == 404
    assert "We could not find that page" in html
    assert 'href="/"' in html
    assert_no_third_party_code(html, "404")


def test_a_non_member_gets_the_same_404_page(client, tenant_a, owner_b):
    client.force_login(owner_b)

    response = client.get(url("tenant:home", tenant_a))

    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


@pytest.mark.parametrize(
    ("handler", "status", "text"),
    [
        (views.bad_request, 400, "did not make sense"),
        (views.permission_denied, 403, "do not have access"),
        (views.page_not_found, 404, "could not find that page"),
    ],
)
def test_error_handlers_render_without_request_context(handler, status, text):
    response = handler(RequestFactory().get("/"), Exception("boom"))

    assert response.status_code == status
    assert text in response.content.decode()


def test_the_500_handler_renders_a_friendly_page():
    response = views.server_error(RequestFactory().get("/"))
    html = response.content.decode()

    assert response.status_code == 500
    assert "Something went wrong on our side" in html
    assert "/static/css/app.css" in html
