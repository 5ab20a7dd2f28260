"""The central's fleet console in Chromium, on PostgreSQL: a pharmacist signs in with a directory PIN (a wrong one
first, told how many attempts are left), sees both cabinets with their stock-outs and the link to each cabinet's
own console, finds ondansetron across the fleet (recalled in one cabinet, usable in the other), reads the pick
list at a 1280 px desk screen without it running off the side, and signs out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from controller.api.central.app import create_central_app
from controller.domain.clock import SystemClock
from controller.store.central import schema as central_schema
from controller.store.database import Database
from tests.api.rig import serve_in_thread
from tests.fleet.scene import build
from tests.store.test_inventory import FAST_HASHER
from tests.ui.conftest import Shots, log_in

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(90)]


@pytest.fixture
def fleet_url(postgres_schema_url: str, tmp_path: Path) -> Iterator[str]:
    db = Database.open(postgres_schema_url)
    central_schema.upgrade(db)
    build(db, tmp_path)
    try:
        with serve_in_thread(create_central_app(db, SystemClock(), FAST_HASHER)) as url:
            yield url
    finally:
        db.dispose()


def test_a_pharmacist_finds_stock_across_the_fleet_and_reads_the_pick_list(
    fleet_url: str, page: Page, shots: Shots
) -> None:
    page.goto(fleet_url)
    expect(page).to_have_url(f"{fleet_url}/fleet/")
    expect(page.locator("#login-badge")).to_have_count(0)  # the directory signs in by PIN only
    log_in(page, "PHARM1", "9999")
    expect(page.locator("#login-message")).to_contain_text("4 attempts left")
    shots("wrong-pin")
    log_in(page, "PHARM1", "1357")
    expect(page.locator("#who")).to_contain_text("Pat Lee, PharmD")

    rows = page.locator("#cabinet-rows tr")
    expect(rows).to_have_count(2)
    four_west = page.locator("#cabinet-rows tr[data-cabinet=CAB-4W]")
    expect(four_west).to_contain_text("4W cabinet")
    expect(four_west.locator("td").nth(6)).to_have_text("2")  # stock-outs
    expect(four_west.locator("a")).to_have_attribute("href", "http://cab-4w.example:8000/pharmacy/")
    expect(four_west.locator("td").nth(2)).to_have_text("Never heard")
    shots("cabinets")

    page.click("[data-section=find]")
    page.fill("#find-query", "ondansetron")
    page.keyboard.press("Enter")
    expect(page.locator("#find-summary")).to_contain_text("12 usable units in 1 cabinet(s)")
    five_east = page.locator("#find-rows tr[data-cabinet=CAB-5E]")
    expect(five_east).to_contain_text("2027-09-30")
    expect(page.locator("#find-rows tr[data-cabinet=CAB-4W]")).to_contain_text("Stock out")  # recalled lot
    shots("global-find")

    page.click("[data-section=picklist]")
    first = page.locator("#pick-rows tr").first
    expect(first).to_contain_text("D1-P01")
    expect(first).to_contain_text("Stock out")
    expect(page.locator("#pick-totals")).to_contain_text("acetaminophen 325 mg tab")
    overflow = page.evaluate(
        "() => document.querySelector('#panel').scrollWidth - document.querySelector('#panel').clientWidth"
    )
    assert overflow <= 0, f"the pick list runs {overflow} px off a 1280 px screen"
    shots("pick-list")

    page.click("#logout")
    expect(page.locator("#login-message")).to_contain_text("Signed out")
