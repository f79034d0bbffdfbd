"""P11: a member of business B never reaches business A's objects through any URL.

The test walks the URL configuration instead of listing views, so every future view under
/app/<tenant-slug>/ that takes an object id is covered the day it is added. Convention the
walk relies on (and enforces): an object id in a URL is named `<model_name>_id`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import factory_for, member

TENANT_PREFIX = "app/<slug:tenant_slug>/"


@dataclass(frozen=True)
class TenantRoute:
    name: str  # namespaced, for reverse()
    route: str
    id_kwargs: tuple[str, ...]
    callback: object


def _walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}{entry.namespace}:"
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), namespace, entry


def tenant_routes() -> list[TenantRoute]:
    routes = []
    for route, namespace, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith(TENANT_PREFIX):
            continue
        kwargs = tuple(name for name in _converter_names(route) if name != "tenant_slug")
        routes.append(
            TenantRoute(
                name=f"{namespace}{pattern.name}" if pattern.name else "",
                route=route,
                id_kwargs=kwargs,
                callback=pattern.callback,
            )
        )
    return routes


def _converter_names(route: str) -> list[str]:
    return re.findall(r"<(?:\w+:)?(\w+)>", route)


def model_for_kwarg(kwarg: str):
    assert kwarg.endswith("_id"), (
        f"URL kwarg {kwarg!r} does not follow the `<model_name>_id` convention, so the "
        "isolation test cannot tell which object it names."
    )
    model_name = kwarg[: -len("_id")].replace("_", "")
    matches = [m for m in apps.get_models() if m._meta.model_name == model_name]
    assert len(matches) == 1, f"URL kwarg {kwarg!r} names no single model ({matches})."
    return matches[0]


ROUTES = tenant_routes()
ID_ROUTES = [r for r in ROUTES if r.id_kwargs]


def test_the_walk_finds_the_tenant_urls():
    # Guards the guard: if the walk found nothing, every test below would pass vacuously.
    names = {r.name for r in ROUTES}
    assert {"tenant:home", "tenant:members", "tenant:member_role"} <= names
    assert len(ID_ROUTES) >= 3


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name or r.route)
def test_every_tenant_view_uses_the_permission_helper(route):
    assert getattr(route.callback, "tenant_role", None), (
        f"{route.route} is not wrapped in tenants.permissions.tenant_view(); every view "
        "under /app/<tenant-slug>/ must declare the role it needs."
    )


def _objects_in(tenant, route):
    kwargs = {}
    for kwarg in route.id_kwargs:
        model = model_for_kwarg(kwarg)
        factory = factory_for(model)
        assert factory is not None, f"tests/factories.py has no factory for {model.__name__}"
        kwargs[kwarg] = factory(tenant=tenant).pk
    return kwargs


@pytest.mark.django_db
@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: r.name)
def test_member_of_b_gets_404_for_objects_of_a(client, tenant_a, tenant_b, route):
    owner_b = member(tenant_b)  # the strongest role: the denial must come from isolation
    ids_of_a = _objects_in(tenant_a, route)
    client.force_login(owner_b)

    for slug in (tenant_b.slug, tenant_a.slug):
        url = reverse(route.name, kwargs={"tenant_slug": slug, **ids_of_a})
        statuses = {method: getattr(client, method)(url).status_code for method in ("get", "post")}
        # 405 (a method the view never accepts) reveals nothing; anything else must be a 404.
        assert set(statuses.values()) <= {404, 405} and 404 in statuses.values(), (
            f"{url} as a member of {tenant_b.slug} answered {statuses}, not 404"
        )

    # The same URL works for A's own owner, so the 404s above are isolation, not a broken URL.
    owner_a = member(tenant_a)
    client.force_login(owner_a)
    url = reverse(route.name, kwargs={"tenant_slug": tenant_a.slug, **ids_of_a})
    statuses = {client.get(url).status_code, client.post(url).status_code}
    assert statuses - {404}, f"{url} answers 404 even to the owner of {tenant_a.slug}"


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in ROUTES if not r.id_kwargs], ids=lambda r: r.name)
def test_non_members_get_404_on_every_page_of_a_business(client, tenant_a, tenant_b, route):
    client.force_login(member(tenant_b))
    url = reverse(route.name, kwargs={"tenant_slug": tenant_a.slug})
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404


@pytest.mark.django_db
def test_unknown_business_and_member_of_none_get_404(client, tenant_a):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert client.get("/app/alpha-dental/").status_code == 404
    assert client.get("/app/no-such-business/").status_code == 404


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(client, tenant_a):
    response = client.get(f"/app/{tenant_a.slug}/settings/members/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
