"""The pharmacy console in Chromium: a technician restocks a pocket by scan (the scanner simulator presents GS1
DataMatrix packages, one of them the wrong product, refused on screen; the last one presented by the page's own
simulator button); a pharmacist resolves a discrepancy with a witness and is refused its review, which another
pharmacist then does; and the refrigerator chart shows an excursion the cabinet recorded, with its lots held, one of
which the pharmacist releases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.api.test_pharmacy_flow import gs1
from tests.ui.conftest import Shots, UiCabinet, log_in, press

POCKET, ITEM, NDC = "D1-P02", "ONDANSETRON-2MG-ML-INJ", "70860-776-02"
HEPARIN_10000 = "0409-1316-32"  # not the pocket's item: the scan must be refused


def within_the_screen(page: Page, locator: Locator) -> bool:
    box = locator.bounding_box()
    viewport = page.viewport_size
    assert box is not None and viewport is not None
    return box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]


@pytest.mark.timeout(60)
def test_a_technician_restocks_a_pocket_by_scan(cabinet: UiCabinet, page: Page, shots: Shots) -> None:
    before = cabinet.on_hand(POCKET)
    page.goto(f"{cabinet.url}/pharmacy/")
    log_in(page, "TECH1", "4444")
    expect(page.locator("#inventory-table")).to_contain_text(POCKET)
    expect(page.locator("[data-section=discrepancies]")).to_have_count(0)  # a technician does not resolve
    shots("inventory")
    restock = page.locator(f"#inventory-table tr[data-pocket={POCKET}] button")
    assert within_the_screen(page, restock), "the Restock button lies off the 1280 px screen"
    restock.click()  # Restock this pocket
    expect(page.locator("#restock-pocket")).to_have_value(POCKET)
    page.fill("#restock-quantity", "2")
    page.click("#restock-start")
    expect(page.locator("#flow-message")).to_contain_text("D1 unlocked")
    cabinet.sims.act("io_board", "open_drawer", drawer=1)
    press(page, "#restock-flow", str(before))
    page.click("#restock-flow .key-submit")
    expect(page.locator("#restock-progress")).to_contain_text("scanned 0 of 2")
    expect(page.locator("#restock-finish")).to_be_disabled()

    cabinet.sims.act("scanner", "present", barcode_text=gs1(NDC, "ON77", "280131", "S1"), symbology="]d2")
    page.click("#scan-package")
    expect(page.locator("#flow-message")).to_contain_text("Package accepted: lot ON77")
    expect(page.locator("#restock-progress")).to_contain_text("scanned 1 of 2")
    cabinet.sims.act("scanner", "present", barcode_text=gs1(HEPARIN_10000, "HX1", "281231", "W1"), symbology="]d2")
    page.click("#scan-package")
    refusal = page.locator("#flow-message")
    expect(refusal).to_have_attribute("data-code", "inventory.item_mismatch")
    expect(refusal).to_contain_text("is not ondansetron")
    shots("wrong-package-refused")
    page.click("[data-sim=present]")  # the page's simulator button: a package of this pocket's item
    expect(page.locator("#sim-message")).to_contain_text("Present a package of this item: done")
    page.click("#scan-package")
    expect(page.locator("#restock-progress")).to_contain_text("scanned 2 of 2")
    page.click("#restock-finish")
    expect(page.locator("#flow-message")).to_contain_text(f"Restocked {POCKET}: 2 added")
    shots("restocked")
    cabinet.sims.act("io_board", "close_drawer", drawer=1)

    assert cabinet.on_hand(POCKET) == before + 2
    restocked = cabinet.ledger(event_type="stock.restocked")
    assert sorted((e["actor_id"], e["item_id"], e["lot_number"], e["quantity_change"]) for e in restocked) == [
        ("TECH1", ITEM, "ON77", 1),
        ("TECH1", ITEM, "SIMLOT1", 1),
    ]
    [refused] = [e for e in cabinet.ledger(event_type="input.refused") if e["pocket_id"] == POCKET]
    assert refused["actor_id"] == "TECH1"


@pytest.mark.timeout(60)
def test_a_pharmacist_resolves_a_discrepancy_with_a_witness_and_another_reviews_it(
    cabinet: UiCabinet, page: Page, shots: Shots
) -> None:
    # The scene, over HTTP: a nurse's blind count of 99 raises a discrepancy; an administrator adds a second
    # pharmacist (the demo has one, and the resolver may not review their own resolution).
    nurse = cabinet.login("NURSE1")
    pull_id = cabinet.http.post("/api/v1/pulls", json={"patient_id": "MRN100003"}, headers=nurse).json()["data"][
        "pull"
    ]["pull_id"]
    assert cabinet.http.post(f"/api/v1/pulls/{pull_id}/item", json={"order_id": "ORD9007"}, headers=nurse).is_success
    assert cabinet.http.post(f"/api/v1/pulls/{pull_id}/count", json={"count": 99}, headers=nurse).is_success
    assert cabinet.http.post(f"/api/v1/pulls/{pull_id}/cancel", headers=nurse).is_success
    cabinet.logout(nurse)
    admin = cabinet.login("ADMIN1")
    user = {"user_id": "PHARM2", "display_name": "Dana Wu, PharmD", "roles": ["pharmacist"], "pin": "3434"}
    assert cabinet.http.post("/api/v1/admin/users", json=user, headers=admin).status_code == 201
    cabinet.logout(admin)

    page.goto(f"{cabinet.url}/pharmacy/")
    log_in(page, "PHARM1", "3333")
    page.click("[data-section=discrepancies]")
    row = page.locator("#discrepancy-table tbody tr").first
    expect(row).to_contain_text("D2-P01")
    expect(row).to_contain_text("morphine 4 mg/mL inj")  # the item's name, not its id
    expect(row).to_contain_text("10 / 99")  # expected against counted
    expect(row).to_have_attribute("data-state", "open")
    target = row.get_attribute("data-discrepancy")
    assert within_the_screen(page, row.locator("[data-resolve]")), "the Resolve button lies off the 1280 px screen"
    row.locator("[data-resolve]").click()
    page.select_option("#resolve-reason", "miscount_current")
    page.fill("#resolve-note", "recounted: matches the record")
    page.click("#resolve-submit")
    expect(page.locator("#witness-dialog")).to_be_visible()
    page.fill("#witness-user", "NURSE2")
    press(page, "#witness-dialog", "2222")
    shots("witness")
    page.click("#witness-dialog .key-submit")
    message = page.locator("#discrepancy-message")
    expect(message).to_contain_text(f"Discrepancy {target} resolved by PHARM1, witnessed by NURSE2")
    expect(page.locator(f"tr[data-discrepancy='{target}']")).to_have_attribute("data-state", "resolved")
    page.click(f"[data-review='{target}']")
    page.click("#review-submit")
    expect(message).to_have_attribute("data-code", "workflow.reviewer_conflict")
    shots("own-review-refused")
    page.click("#logout")

    log_in(page, "PHARM2", "3434")
    page.click("[data-section=discrepancies]")
    page.click(f"[data-review='{target}']")
    page.fill("#review-note", "reviewed with the count history")
    page.click("#review-submit")
    expect(page.locator("#discrepancy-message")).to_contain_text(f"Discrepancy {target} reviewed and closed")
    expect(page.locator(f"tr[data-discrepancy='{target}']")).to_have_count(0)
    shots("reviewed")

    [resolved] = cabinet.ledger(event_type="discrepancy.resolved")
    assert (resolved["actor_id"], resolved["witness_id"], resolved["reason_code"]) == (
        "PHARM1",
        "NURSE2",
        "miscount_current",
    )
    [reviewed] = cabinet.ledger(event_type="discrepancy.reviewed")
    assert reviewed["actor_id"] == "PHARM2"


@pytest.mark.timeout(60)
def test_the_refrigerator_chart_marks_a_recorded_excursion(cabinet: UiCabinet, page: Page, shots: Shots) -> None:
    cabinet.sims.act("io_board", "set_fridge_temperature", celsius=9.5)
    page.goto(f"{cabinet.url}/pharmacy/")
    log_in(page, "PHARM1", "3333")
    page.click("[data-section=devices]")
    chart = page.locator("#chart-D5")
    expect(chart.locator(".chart-now")).to_contain_text("9.5 °C OUT OF RANGE")
    expect(chart.locator("path.series.out").first).to_be_attached()
    expect(chart).to_contain_text("Temperature (°C)")
    expect(chart.locator(".excursion-mark")).to_have_count(0)  # out of range, not yet for 30 minutes
    cabinet.wait_for_fridge_check(out_of_range=True)
    cabinet.clock.advance(timedelta(minutes=31))  # the cabinet's clock; the idle console is logged off too
    expect(page.locator("#login-message")).to_contain_text("logged off")
    log_in(page, "PHARM1", "3333")
    page.click("[data-section=devices]")
    expect(chart.locator(".excursion-mark")).to_have_count(1)
    expect(chart.locator(".excursion-label")).to_contain_text("excursion 31 min")
    shots("excursion")
    page.click("[data-section=stock]")
    held = page.locator("#quarantine-table tbody tr")
    expect(held).to_have_count(5)  # every lot in the refrigerator
    expect(held.first).to_contain_text("Temperature excursion")
    shots("quarantined")
    held.first.locator("[data-decide]").click()  # the maker's stability data covers it: back into service
    expect(page.locator("#hold-reason")).to_have_value("within_stability_data")
    page.fill("#hold-note", "stability data: 9.5 °C for 31 min is within the label")
    page.click("#hold-submit")
    expect(page.locator("#stock-message")).to_have_attribute("data-code", "quarantine.excursion_ongoing")
    cabinet.sims.act("io_board", "set_fridge_temperature", celsius=5.0)
    cabinet.wait_for_fridge_check(out_of_range=False)
    page.click("#hold-submit")
    expect(page.locator("#stock-message")).to_contain_text("released")
    expect(held).to_have_count(4)
    shots("one-released")
    [excursion] = cabinet.ledger(event_type="environment.temperature_excursion")
    assert excursion["details"]["minutes"] == 31
    [decided] = cabinet.ledger(event_type="stock.quarantine_reviewed")
    assert (decided["actor_id"], decided["reason_code"]) == ("PHARM1", "within_stability_data")


@pytest.mark.timeout(60)
def test_an_administrator_clears_a_lockout_from_the_console(cabinet: UiCabinet, page: Page, shots: Shots) -> None:
    for _ in range(5):  # policy.toml: max_failed_logins = 5
        answer = cabinet.http.post("/api/v1/cabinet/session", json={"user_id": "NURSE2", "pin": "0000"})
        assert answer.status_code == 401, answer.text
    assert cabinet.http.post("/api/v1/cabinet/session", json={"user_id": "NURSE2", "pin": "2222"}).status_code == 423

    page.goto(f"{cabinet.url}/pharmacy/")
    log_in(page, "ADMIN1", "6666")
    page.click("[data-section=users]")
    row = page.locator("#users-table tr[data-user='NURSE2']")
    expect(row).to_have_attribute("data-locked", "true")
    expect(row).to_contain_text("locked out")
    row.locator("[data-clear]").click()
    page.click("#lockout-submit")  # no reason yet: said on screen, nothing sent
    expect(page.locator("#users-message")).to_contain_text("Say why")
    page.fill("#lockout-reason", "identity confirmed by the charge nurse")
    shots("reason")
    page.click("#lockout-submit")
    expect(page.locator("#users-message")).to_contain_text("Lockout of NURSE2 cleared")
    expect(row).to_have_attribute("data-locked", "false")
    shots("cleared")
    page.click("#logout")

    nurse = cabinet.login("NURSE2")  # at once, not after the lockout's 15 minutes
    cabinet.logout(nurse)
    [cleared] = cabinet.ledger(event_type="session.lockout_cleared")
    assert (cleared["actor_id"], cleared["note"], cleared["details"]["cleared_user_id"]) == (
        "ADMIN1",
        "identity confirmed by the charge nurse",
        "NURSE2",
    )
