"""Every route carries its access rule: a route added without one fails here. Only liveness, readiness, metrics,
the token endpoint, the login itself, the docs and the static pages are open."""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount

from controller.api.access import Access
from controller.api.app import ROUTERS, create_app
from controller.settings import Settings

OPEN = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("POST", "/oauth/token"),
    ("POST", "/api/v1/cabinet/session"),  # the login: it is how a token is obtained
    ("GET", "/fhir/metadata"),  # the CapabilityStatement: how a FHIR client discovers the server
}
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect"}


def access_rules(dependant: Dependant) -> list[Access]:
    found: list[Access] = []
    for sub in dependant.dependencies:
        if isinstance(sub.call, Access):
            found.append(sub.call)
        found.extend(access_rules(sub))
    return found


def routes() -> list[Any]:
    """Every route as declared by its router (the app includes each router whole, with no extra rules)."""
    return [route for module in ROUTERS for route in module.router.routes]


def test_every_route_but_the_open_ones_has_exactly_one_access_rule() -> None:
    unguarded, doubled, checked = [], [], 0
    for route in routes():
        if isinstance(route, Mount) or getattr(route, "path", None) in DOCS:
            continue
        assert isinstance(route, APIRoute | APIWebSocketRoute), route
        methods = sorted(route.methods or ()) if isinstance(route, APIRoute) else ["WEBSOCKET"]
        for method in methods:
            rules = access_rules(route.dependant)
            if (method, route.path) in OPEN:
                assert not rules, f"{method} {route.path} is meant to be open"
            elif not rules:
                unguarded.append(f"{method} {route.path}")
            elif len(rules) > 1:
                doubled.append(f"{method} {route.path}")
            checked += 1
    assert unguarded == []
    assert doubled == []
    assert checked > 60


def test_the_static_pages_are_mounted_last_so_they_shadow_no_route() -> None:
    found = list(create_app(Settings()).routes)
    mounts = [i for i, route in enumerate(found) if isinstance(route, Mount)]
    assert mounts == [len(found) - 1]
