"""Browser tests: the real app under uvicorn on a loopback port, the device simulators on their real transports,
and Debian's Chromium driven headless by Playwright's Python package (never ``playwright install``).

Without ``/usr/bin/chromium`` the tests skip, unless ``ADC_REQUIRE_BROWSER`` is set (``scripts/test.sh`` sets it and
installs the browser), so CI cannot skip them silently. Every test leaves screenshots in its pytest tmp dir and in
``test-artifacts/ui/<test>/``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from controller.api.api_clients import add_client
from controller.api.app import create_app
from controller.api.settings import ApiSettings
from controller.domain.clock import FixedClock
from controller.store.database import Database
from tests.api.rig import (
    PINS,
    START,
    Simulators,
    cabinet_settings,
    running_simulators,
    seed_demo,
    serve_in_thread,
)
from tests.store.test_inventory import FAST_HASHER

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KIOSK: ViewportSize = {"width": 1280, "height": 800}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"

expect.set_options(timeout=10_000)


@dataclass
class UiCabinet:
    """The served cabinet: its URL, the simulators (the physical world), the clock the app runs on, and an
    integrator's HTTP client for what a test checks behind the page (the ledger, the stock)."""

    url: str
    sims: Simulators
    clock: FixedClock
    database_url: str
    http: httpx.Client
    app: Any
    _integrator: dict[str, str] = field(default_factory=dict)

    def integrator(self) -> dict[str, str]:
        """Bearer headers of an integrator reading the ledger and stock (no cabinet session: the page keeps its)."""
        if not self._integrator:
            db = Database.open(self.database_url)
            try:
                secret = add_client(
                    db, FAST_HASHER, "ui-tests", frozenset({"ledger:read", "inventory:read"}), now=datetime.now(UTC)
                )
            finally:
                db.dispose()
            answer = self.http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "client_id": "ui-tests", "client_secret": secret},
            )
            assert answer.status_code == 200, answer.text
            self._integrator = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        return self._integrator

    def ledger(self, **query: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/v1/ledger", params={"limit": "500", **query}, headers=self.integrator())
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()["data"]["entries"]
        return entries

    def on_hand(self, pocket_id: str) -> int:
        answer = self.http.get("/api/v1/inventory/pockets", headers=self.integrator())
        assert answer.status_code == 200, answer.text
        quantity: int = next(p["quantity"] for p in answer.json()["data"] if p["pocket_id"] == pocket_id)
        return quantity

    def wait_for_fridge_check(self, *, out_of_range: bool) -> None:
        """Until the running loop's refrigerator check (each second) has seen the temperature out of the 2-8 °C range
        (or back in it)."""
        health = self.app.state.runtime.runner.health
        deadline = time.monotonic() + 10
        while not (
            health.last_environment is not None and health.last_environment.data.get("excursion") == out_of_range
        ):
            assert time.monotonic() < deadline, "the refrigerator check never saw the change"
            time.sleep(0.05)

    def login(self, user_id: str, pin: str | None = None) -> dict[str, str]:
        """A cabinet session over HTTP, for setting a scene before the browser logs in."""
        answer = self.http.post("/api/v1/cabinet/session", json={"user_id": user_id, "pin": pin or PINS[user_id]})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['data']['token']}"}

    def logout(self, headers: dict[str, str]) -> None:
        assert self.http.delete("/api/v1/cabinet/session", headers=headers).status_code == 200


@contextmanager
def served_cabinet(tmp_path: Path) -> Iterator[UiCabinet]:
    clock = FixedClock(START)
    database_url = f"sqlite:///{tmp_path / 'adc.db'}"
    seed_demo(database_url, clock)
    with running_simulators() as sims:
        app = create_app(cabinet_settings(tmp_path, sims), ApiSettings(sim_control=sims.control_url), clock=clock)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=15) as http:
            cabinet = UiCabinet(url, sims, clock, database_url, http, app)
            deadline = time.monotonic() + 20
            while http.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, "the cabinet did not become ready"
                time.sleep(0.05)
            yield cabinet


@pytest.fixture
def cabinet(tmp_path: Path) -> Iterator[UiCabinet]:
    with served_cabinet(tmp_path) as served:
        yield served


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("ADC_REQUIRE_BROWSER"):
            pytest.fail(f"{reason}, and ADC_REQUIRE_BROWSER is set")
        pytest.skip(f"{reason}; set ADC_REQUIRE_BROWSER=1 to make this an error")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Shots:
    """Screenshots kept in the test's tmp dir and under test-artifacts/ui/<test>/."""

    def __init__(self, page: Page, tmp_path: Path, test_name: str) -> None:
        self.page = page
        self.places = [tmp_path / "screenshots", ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name)]
        for place in self.places:
            place.mkdir(parents=True, exist_ok=True)
        self.taken = 0

    def __call__(self, name: str) -> None:
        self.taken += 1
        self.save(f"{self.taken:02d}-{name}.png")

    def save(self, filename: str) -> None:
        image = self.page.screenshot()
        for place in self.places:
            (place / filename).write_bytes(image)


@pytest.fixture
def page(browser: Browser, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=KIOSK)
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    Shots(opened, tmp_path, request.node.name).save("99-final.png")  # how the page was left, pass or fail
    context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


@pytest.fixture
def shots(page: Page, tmp_path: Path, request: pytest.FixtureRequest) -> Shots:
    return Shots(page, tmp_path, request.node.name)


def press(page: Page, scope: str, digits: str) -> None:
    """Touch the keys of the keypad inside ``scope``."""
    for digit in digits:
        label = "decimal point" if digit == "." else digit
        page.click(f"{scope} .key[aria-label='{label}']")


def log_in(page: Page, user_id: str, pin: str) -> None:
    page.fill("#login-user", user_id)
    press(page, "#login", pin)
    page.click("#login .key-submit")


def fits_without_scrolling(page: Page, selector: str) -> bool:
    return bool(
        page.evaluate(
            """(selector) => {
                const box = document.querySelector(selector);
                const root = document.scrollingElement;
                return box.scrollHeight <= box.clientHeight && root.scrollHeight <= root.clientHeight;
            }""",
            selector,
        )
    )
