"""The cabinet touchscreen in Chromium at 1280 x 800: a nurse pulls a schedule II dose with a blind count (the
drawer and lid opened through the page's simulator panel, closed by a person over the simulators' control socket),
wastes half with a witness after cancelling the witness step once (the page says the waste went to the pending
list, and it did); a wrong PIN is refused with the cabinet's code; search needs five characters and says so; the
inactivity warning and logoff come from the cabinet's own clock."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Shots, UiCabinet, fits_without_scrolling, log_in, press

PATIENT, ORDER, ITEM, POCKET = "MRN100001", "ORD9001", "HYDROMORPHONE-1MG-ML-SYR", "D2-P02"


@pytest.mark.timeout(60)
def test_a_nurse_pulls_a_schedule_ii_dose_and_wastes_half_with_a_witness(
    cabinet: UiCabinet, page: Page, shots: Shots
) -> None:
    expected = cabinet.on_hand(POCKET)
    start = cabinet.ledger()[-1]["seq"]
    page.goto(f"{cabinet.url}/cabinet/")
    log_in(page, "NURSE1", "1111")
    expect(page.locator("#who")).to_contain_text("Nora Adams")
    expect(page.locator("#link")).to_contain_text("live")
    pull_with_a_blind_count(cabinet, page, shots, expected)
    waste_half_after_a_cancelled_witness(page, shots)

    entries = [e for e in cabinet.ledger() if e["seq"] > start]
    kinds = [e["event_type"] for e in entries]
    assert {"count.entered", "drawer.opened", "drawer.closed", "dose.removed", "dose.waste_pending"} <= set(kinds)
    [counted] = [e for e in entries if e["event_type"] == "count.entered"]
    assert (counted["actor_id"], counted["pocket_id"], counted["quantity_actual"]) == ("NURSE1", POCKET, expected)
    [removed] = [e for e in entries if e["event_type"] == "dose.removed"]
    assert (removed["actor_id"], removed["patient_id"], removed["order_id"], removed["item_id"]) == (
        "NURSE1",
        PATIENT,
        ORDER,
        ITEM,
    )
    assert (removed["pocket_id"], removed["quantity_change"], removed["is_simulator"]) == (POCKET, -1, True)
    [wasted] = [e for e in entries if e["event_type"] == "dose.wasted"]
    assert (wasted["actor_id"], wasted["witness_id"], wasted["details"]["amount"]) == ("NURSE1", "NURSE2", "0.5")
    assert "discrepancy.raised" not in kinds  # the count was right
    assert cabinet.on_hand(POCKET) == expected - 1


def pull_with_a_blind_count(cabinet: UiCabinet, page: Page, shots: Shots, expected: int) -> None:
    page.click(f"[data-patient={PATIENT}]")
    page.click(f"[data-order={ORDER}]")
    expect(page.locator("#step h2")).to_have_text("Blind count")
    expect(page.locator("#pocket-id")).to_have_text(POCKET)
    expect(page.locator("[data-warning=high_alert]")).to_contain_text("high-alert")
    expect(page.locator("#light-state")).to_contain_text("off")
    shown = page.locator("section.pull").inner_text()
    assert not re.search(rf"\b{expected}\b", shown), "the blind count screen shows the expected number"
    assert fits_without_scrolling(page, "#screen")
    enter = page.locator("#step .key-submit")
    before = enter.bounding_box()
    press(page, "#step", str(expected))
    assert enter.bounding_box() == before  # typing never moves the keypad
    shots("blind-count")
    page.click("#step .key-submit")

    expect(page.locator("#step h2")).to_have_text("Open the drawer")
    expect(page.locator("#light-state")).to_contain_text("on")
    shots("pocket-lit")
    page.click("[data-sim=open_drawer]")  # the nurse's hands, through POST /api/v1/devices/simulator/actions
    page.click("[data-sim=lift_lid]")
    expect(page.locator("#step h2")).to_have_text("Take the dose")
    assert fits_without_scrolling(page, "#screen")
    page.click("#take")
    expect(page.locator("#step h2")).to_have_text("Close the drawer")
    cabinet.sims.act("io_board", "close_lid", drawer=2, pocket=2)  # a person closes them: the control socket
    cabinet.sims.act("io_board", "close_drawer", drawer=2)
    expect(page.locator("#pull-message")).to_contain_text("Removed 1 × HYDROmorphone")
    shots("removed")


def waste_half_after_a_cancelled_witness(page: Page, shots: Shots) -> None:
    page.click("#waste-button")
    press(page, ".waste", "0.5")
    expect(page.locator("[data-reason=partial_dose]")).to_have_attribute("aria-pressed", "true")
    page.click("#record-waste")
    dialog = page.locator("#witness-dialog")
    expect(dialog).to_be_visible()
    page.fill("#witness-user", "NURSE1")
    press(page, "#witness-dialog", "1111")
    page.click("#witness-dialog .key-submit")
    expect(page.locator("#witness-message")).to_contain_text("policy.witness_is_actor")
    shots("witness-refused")
    page.keyboard.press("Escape")  # Escape does not close it: only a signature or an explicit cancel
    expect(dialog).to_be_visible()
    page.click("#witness-cancel")
    expect(dialog).to_have_count(0)
    expect(page.locator("#waste-message")).to_contain_text("on your pending-waste list")
    expect(page.locator("#pending-count")).to_have_text("1")
    shots("witness-cancelled-kept")

    page.click("#open-pending")
    row = page.locator(".pending-waste")
    expect(row).to_contain_text("HYDROmorphone 1 mg/mL inj")  # names, not ids
    expect(row).to_contain_text("Garcia, Maria (MRN100001)")
    assert ITEM not in row.inner_text()
    row.locator("button").click()
    press(page, ".waste", "0.5")
    page.click("[data-reason=partial_dose]")
    page.click("#record-waste")
    page.fill("#witness-user", "NURSE2")
    press(page, "#witness-dialog", "2222")
    shots("witness")
    page.click("#witness-dialog .key-submit")
    expect(page.locator("#waste-message")).to_contain_text("witnessed by NURSE2")
    expect(page.locator("#pending-count")).to_have_text("0")
    shots("wasted")


def test_a_wrong_pin_is_refused_with_the_cabinets_reason(cabinet: UiCabinet, page: Page, shots: Shots) -> None:
    page.goto(f"{cabinet.url}/cabinet/")
    log_in(page, "NURSE1", "9999")
    message = page.locator("#login-message")
    expect(message).to_contain_text("Login refused")
    expect(message).to_have_attribute("data-code", "auth.bad_credentials")
    expect(message).to_have_attribute("role", "alert")
    expect(page.locator("#login-pin")).to_have_value("")  # the wrong PIN is not left on the screen
    shots("wrong-pin")
    failed = cabinet.ledger(event_type="session.login_failed")
    assert [e["actor_id"] for e in failed] == ["NURSE1"]
    assert cabinet.ledger(event_type="session.login") == []


@pytest.mark.timeout(60)
def test_wrong_pins_count_down_to_the_lockout_which_says_until_when_and_whom_to_ask(
    cabinet: UiCabinet, page: Page, shots: Shots
) -> None:
    page.goto(f"{cabinet.url}/cabinet/")
    message = page.locator("#login-message")
    for left in (4, 3, 2):
        log_in(page, "NURSE1", "9999")
        expect(message).to_contain_text(f"{left} attempts left before the lockout")
    log_in(page, "NURSE1", "9999")
    expect(message).to_contain_text("1 attempt left: one more wrong PIN locks NURSE1 out")
    shots("last-attempt-warning")
    log_in(page, "NURSE1", "9999")
    expect(message).to_contain_text("NURSE1 is now locked out")
    log_in(page, "NURSE1", "1111")  # the right PIN, too late
    expect(message).to_have_attribute("data-code", "session.locked_out")
    expect(message).to_contain_text("A pharmacist or the cabinet's administrator can clear it sooner")
    assert "+00:00" not in message.inner_text() and "T14" not in message.inner_text()  # a local time, not ISO
    shots("locked-out")


@pytest.mark.timeout(60)
def test_search_needs_five_characters_alarms_show_and_the_idle_nurse_is_warned_then_logged_off(
    cabinet: UiCabinet, page: Page, shots: Shots
) -> None:
    page.goto(f"{cabinet.url}/cabinet/")
    log_in(page, "NURSE1", "1111")
    page.click(f"[data-patient={PATIENT}]")
    page.fill("#search", "morp")
    expect(page.locator("#search-hint")).to_contain_text("1 more")
    expect(page.locator("#search-button")).to_have_attribute("aria-disabled", "true")
    page.press("#search", "Enter")
    expect(page.locator("#search-message")).to_contain_text("At least 5 characters")
    page.fill("#search", "morph")
    page.click("#search-button")
    expect(page.locator("[data-item=MORPHINE-4MG-ML-CARP]")).to_be_visible()
    expect(page.locator(".results")).to_contain_text("D2-P01")
    shots("search")

    cabinet.sims.act("io_board", "set_fridge_temperature", celsius=9.5)
    expect(page.locator("[data-alarm=fridge]")).to_contain_text("Refrigerator at 9.5 °C, outside 2–8 °C")
    cabinet.sims.act("io_board", "stick_sensor", drawer=1, sensor="open", value=True)  # pried open: never unlocked
    cabinet.sims.act("io_board", "stick_sensor", drawer=1, sensor="closed", value=False)
    expect(page.locator("[data-alarm='drawer.tamper']")).to_contain_text("opened without authorisation")
    shots("alarms")
    page.locator("[data-alarm='drawer.tamper'] button").click()
    expect(page.locator("[data-alarm='drawer.tamper']")).to_have_count(0)

    cabinet.clock.advance(timedelta(seconds=51))  # the cabinet's clock: its running loop warns the idle session
    idle = page.locator("#idle")
    expect(idle).to_contain_text("you will be logged off")
    shots("inactivity-warning")
    page.click("#stay")
    expect(idle).to_be_hidden()
    cabinet.clock.advance(timedelta(seconds=61))
    expect(page.locator("#login-message")).to_contain_text("logged off")
    expect(page.locator("#login-user")).to_be_visible()
    shots("logged-off")
    logouts = cabinet.ledger(event_type="session.logout")
    assert [(e["actor_id"], e["reason_code"]) for e in logouts] == [("NURSE1", "inactivity")]


@pytest.mark.timeout(60)
def test_a_pull_fits_the_screen_under_two_alarms_the_newest_on_top(
    cabinet: UiCabinet, page: Page, shots: Shots
) -> None:
    page.goto(f"{cabinet.url}/cabinet/")
    log_in(page, "NURSE1", "1111")
    cabinet.sims.act("io_board", "set_fridge_temperature", celsius=9.5)
    expect(page.locator("[data-alarm=fridge]")).to_be_visible()
    cabinet.sims.act("io_board", "cut_power")  # on the UPS: drawers keep working
    expect(page.locator("[data-alarm=power]")).to_be_visible()
    banners = page.locator("#alarms .banner")
    expect(banners.first).to_contain_text("1 of 2Mains power lost")  # the newest on top, with a count
    expect(page.locator("[data-alarm=fridge]")).to_contain_text("2 of 2")
    pull_with_a_blind_count(cabinet, page, shots, cabinet.on_hand(POCKET))  # asserts each step fits the screen
    shots("pull-under-alarms")


@pytest.mark.timeout(60)
def test_a_refused_count_is_not_left_under_the_next_step(cabinet: UiCabinet, page: Page, shots: Shots) -> None:
    page.goto(f"{cabinet.url}/cabinet/")
    log_in(page, "NURSE1", "1111")
    cabinet.sims.act("io_board", "stick_sensor", drawer=1, sensor="open", value=True)  # pried open: never unlocked
    cabinet.sims.act("io_board", "stick_sensor", drawer=1, sensor="closed", value=False)
    expect(page.locator("[data-alarm='drawer.tamper']")).to_be_visible()
    page.click(f"[data-patient={PATIENT}]")
    page.click(f"[data-order={ORDER}]")
    expect(page.locator("#step h2")).to_have_text("Blind count")
    press(page, "#step", str(cabinet.on_hand(POCKET)))
    page.click("#step .key-submit")
    expect(page.locator("#pull-message")).to_contain_text("Count refused")  # D1 stands open, unaccounted for
    cabinet.sims.act("io_board", "stick_sensor", drawer=1, sensor="open", value=False)  # shut again
    cabinet.sims.act("io_board", "stick_sensor", drawer=1, sensor="closed", value=True)
    expect(page.locator("#step h2")).to_have_text("Open the drawer")
    shots("moved-on-after-a-refused-count")
    expect(page.locator("#pull-message")).not_to_contain_text("Count refused")


@pytest.mark.timeout(60)
def test_an_override_takes_a_reason_and_an_allergy_confirmation_and_the_dose_is_returned(
    cabinet: UiCabinet, page: Page, shots: Shots
) -> None:
    admin = cabinet.login("ADMIN1")
    listed = {"items": ["MORPHINE-4MG-ML-CARP"]}
    assert cabinet.http.put("/api/v1/admin/override-list", json=listed, headers=admin).is_success
    cabinet.logout(admin)
    expected = cabinet.on_hand("D2-P01")
    page.goto(f"{cabinet.url}/cabinet/")
    log_in(page, "NURSE1", "1111")
    page.click("[data-patient=MRN100003]")  # allergic to codeine: morphine may cross-react
    page.fill("#search", "morphine")
    page.click("#search-button")
    page.click("[data-item=MORPHINE-4MG-ML-CARP]")
    expect(page.locator("#override-confirm")).to_be_disabled()  # no override without a reason code
    page.click("[data-reason=severe_pain]")
    shots("override-reason")
    page.click("#override-confirm")
    expect(page.locator("#step h2")).to_have_text("Allergy warning")
    expect(page.locator(".allergy-text")).to_contain_text("codeine")
    shots("allergy-confirm")
    page.click("#confirm-allergy")
    expect(page.locator("#step h2")).to_have_text("Blind count")
    expect(page.locator("[data-warning=allergy]")).to_contain_text("codeine")
    press(page, "#step", str(expected))
    page.click("#step .key-submit")
    page.click("[data-sim=open_drawer]")
    page.click("[data-sim=lift_lid]")
    page.click("#take")
    page.click("[data-sim=close_lid]")
    page.click("[data-sim=close_drawer]")
    page.click("#return-button")
    page.click("#send-return")
    if page.locator("#witness-dialog").count():  # a controlled return the policy lists waits for a witness
        page.fill("#witness-user", "NURSE2")
        press(page, "#witness-dialog", "2222")
        page.click("#witness-dialog .key-submit")
    expect(page.locator("#return-message")).to_contain_text("Return recorded")
    shots("returned")

    [override] = cabinet.ledger(event_type="dose.override")
    assert (override["actor_id"], override["item_id"], override["reason_code"]) == (
        "NURSE1",
        "MORPHINE-4MG-ML-CARP",
        "severe_pain",
    )
    [removed] = cabinet.ledger(event_type="dose.removed")
    assert removed["details"]["allergies_acknowledged"] is True
    [returned] = cabinet.ledger(event_type="dose.returned")
    assert (returned["actor_id"], returned["item_id"], returned["quantity_change"]) == (
        "NURSE1",
        "MORPHINE-4MG-ML-CARP",
        1,
    )


@pytest.mark.timeout(60)
def test_a_logoff_during_the_witness_step_keeps_the_waste_on_the_pending_list(
    cabinet: UiCabinet, page: Page, shots: Shots
) -> None:
    page.goto(f"{cabinet.url}/cabinet/")
    log_in(page, "NURSE1", "1111")
    pull_with_a_blind_count(cabinet, page, shots, cabinet.on_hand(POCKET))
    page.click("#waste-button")
    press(page, ".waste", "0.5")
    page.click("#record-waste")
    expect(page.locator("#witness-dialog")).to_be_visible()
    cabinet.clock.advance(timedelta(seconds=61))  # nobody signs; the cabinet logs the idle nurse off
    expect(page.locator("#witness-dialog")).to_have_count(0)
    expect(page.locator("#login-message")).to_contain_text("Any waste waiting for a witness is on your pending")
    shots("logged-off-during-witness")
    log_in(page, "NURSE1", "1111")
    expect(page.locator("#pending-count")).to_have_text("1")
    page.click("#pending-button")
    expect(page.locator(".pending-waste")).to_contain_text("HYDROmorphone 1 mg/mL inj")
    [pending] = cabinet.ledger(event_type="dose.waste_pending")
    assert (pending["actor_id"], pending["item_id"]) == ("NURSE1", ITEM)
    assert cabinet.ledger(event_type="dose.wasted") == []


@pytest.mark.timeout(90)
def test_a_return_left_waiting_for_its_witness_is_witnessed_from_the_pending_list(
    cabinet: UiCabinet, page: Page, shots: Shots
) -> None:
    admin = cabinet.login("ADMIN1")
    witnessed = {"actions": ["controlled_waste", "discrepancy_resolution", "controlled_return"]}
    change = {"changes": {"witness": witnessed}, "reason": "controlled returns witnessed (P&T)"}
    assert cabinet.http.patch("/api/v1/admin/policies", json=change, headers=admin).is_success
    cabinet.logout(admin)
    page.goto(f"{cabinet.url}/cabinet/")
    log_in(page, "NURSE1", "1111")
    pull_with_a_blind_count(cabinet, page, shots, cabinet.on_hand(POCKET))
    page.click("#return-button")
    page.click("#send-return")
    expect(page.locator("#witness-dialog")).to_be_visible()
    page.click("#witness-cancel")  # nobody to witness it now
    expect(page.locator("#return-message")).to_contain_text("waits for a witness")
    expect(page.locator("#pending-count")).to_have_text("1")
    page.click("#pending-button")
    row = page.locator(".pending-witness")
    expect(row).to_have_attribute("data-kind", "return")
    shots("pending-return")
    row.locator("button").click()
    expect(page.locator("#witness-dialog")).to_be_visible()
    page.fill("#witness-user", "NURSE2")
    press(page, "#witness-dialog", "2222")
    page.click("#witness-dialog .key-submit")
    expect(page.locator("#pending-message")).to_contain_text("witnessed and recorded")
    expect(page.locator(".pending-witness")).to_have_count(0)
    expect(page.locator("#pending-count")).to_have_text("0")
    shots("witnessed")
    [returned] = cabinet.ledger(event_type="dose.returned")
    assert (returned["actor_id"], returned["witness_id"], returned["item_id"]) == ("NURSE1", "NURSE2", ITEM)
