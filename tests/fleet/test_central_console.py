"""The central console's API on PostgreSQL: signing in against the hospital directory (lockout that survives a
restart, a disabled user losing the console at the next call, idle sign-off a page's own refresh does not hold
off), and the fleet views it answers from the cabinets' chains."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from controller.api.central.app import create_central_app
from controller.domain.clock import FixedClock
from controller.store.central import directory
from controller.store.central import tables as t
from controller.store.database import Database
from tests.fleet.scene import STAFF, build
from tests.store.test_inventory import FAST_HASHER

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def console(central_db: Database, tmp_path: Path, clock: FixedClock) -> Iterator[TestClient]:
    build(central_db, tmp_path)
    with TestClient(create_central_app(central_db, clock, FAST_HASHER)) as client:
        yield client


def sign_in(client: TestClient, user_id: str, pin: str | None = None) -> dict[str, str]:
    answer = client.post("/api/v1/central/session", json={"user_id": user_id, "pin": pin or STAFF[user_id.upper()][2]})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['data']['token']}"}


def test_a_pharmacist_sees_the_fleet_finds_an_item_and_gets_the_pick_list(console: TestClient) -> None:
    headers = sign_in(console, "pharm1")  # ids are matched in capitals, as the pages send them
    cabinets = console.get("/api/v1/fleet/cabinets", headers=headers).json()["data"]
    assert [c["cabinet_id"] for c in cabinets] == ["CAB-4W", "CAB-5E"]
    four_west = cabinets[0]
    assert four_west["console_url"] == "http://cab-4w.example:8000/pharmacy/"
    assert four_west["stock_outs"] == 2 and cabinets[1]["stock_outs"] == 0  # acetaminophen out, ondansetron recalled
    assert four_west["link"] == "never heard"  # ingested without a heartbeat

    found = console.get("/api/v1/fleet/find", params={"q": "ondansetron"}, headers=headers).json()["data"]
    by_cabinet = {r["cabinet_id"]: r for r in found}
    assert by_cabinet["CAB-5E"]["usable"] == 12 and by_cabinet["CAB-5E"]["next_expiry"] == "2027-09-30"
    assert by_cabinet["CAB-4W"]["usable"] == 0 and by_cabinet["CAB-4W"]["on_hand"] == 12
    assert found[0]["cabinet_id"] == "CAB-5E"  # most usable first
    assert found[0]["item_name"] != found[0]["item_id"]  # the central formulary's name

    pick = console.get("/api/v1/fleet/picklist", headers=headers).json()["data"]
    first = pick["pockets"][0]
    assert (first["cabinet_id"], first["pocket_id"], first["status"], first["to_par"]) == (
        "CAB-4W", "D1-P01", "stock_out", 30)  # fmt: skip
    acetaminophen = next(i for i in pick["items"] if i["item_id"] == "ACETAMINOPHEN-325MG-TAB")
    assert acetaminophen["units"] == sum(
        r["to_par"] for r in pick["pockets"] if r["item_id"] == "ACETAMINOPHEN-325MG-TAB"
    )
    only = console.get("/api/v1/fleet/picklist", params={"cabinet": "CAB-5E"}, headers=headers).json()["data"]
    assert {r["cabinet_id"] for r in only["pockets"]} <= {"CAB-5E"}


def test_bad_requests_are_refused_with_a_reason(console: TestClient) -> None:
    assert console.get("/api/v1/fleet/cabinets").json()["code"] == "auth.token_missing"
    bogus = {"Authorization": "Bearer not-a-token"}
    assert console.get("/api/v1/fleet/cabinets", headers=bogus).json()["code"] == "auth.token_invalid"
    headers = sign_in(console, "TECH1")
    short = console.get("/api/v1/fleet/find", params={"q": "a"}, headers=headers)
    assert short.status_code == 422 and short.json()["code"] == "api.validation"
    malformed = console.post(
        "/api/v1/central/session", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.json()["code"] == "api.malformed_json"
    huge = console.post("/api/v1/central/session", json={"user_id": "PHARM1", "pin": "1" * 70_000})
    assert huge.status_code == 413
    nurse = console.post("/api/v1/central/session", json={"user_id": "NURSE1", "pin": "1111"})
    assert nurse.json()["code"] == "policy.privilege_missing"


def test_five_wrong_pins_lock_the_user_out_and_a_restart_does_not_forgive_them(
    console: TestClient, central_db: Database, clock: FixedClock
) -> None:
    for attempt in range(5):
        wrong = console.post("/api/v1/central/session", json={"user_id": "PHARM1", "pin": "0000"})
        assert wrong.json()["code"] == "auth.bad_credentials"
        assert wrong.json()["context"]["attempts_left"] == 4 - attempt
    with TestClient(create_central_app(central_db, clock, FAST_HASHER)) as restarted:
        locked = restarted.post("/api/v1/central/session", json={"user_id": "PHARM1", "pin": "1357"})
        assert locked.json()["code"] == "session.locked_out", locked.text
        assert "15 more minutes" in locked.json()["detail"]
        clock.advance(timedelta(minutes=15, seconds=1))
        sign_in(restarted, "PHARM1")
    with central_db.reader.connect() as connection:
        outcomes = connection.execute(
            select(t.console_signins.c.outcome).where(t.console_signins.c.user_id == "PHARM1")
        ).scalars()
        assert list(outcomes) == ["refused"] * 5 + ["locked_out", "signed_in"]
        with pytest.raises(Exception, match="append-only"):
            connection.execute(text("DELETE FROM fleet_console_signins"))


def test_a_user_disabled_in_the_directory_loses_the_console_at_the_next_call(
    console: TestClient, central_db: Database
) -> None:
    headers = sign_in(console, "TECH1")
    assert console.get("/api/v1/fleet/cabinets", headers=headers).status_code == 200
    with central_db.write() as session:
        directory.set_active(session, "TECH1", False, datetime.now(UTC))
    ended = console.get("/api/v1/fleet/cabinets", headers=headers)
    assert ended.status_code == 401 and ended.json()["code"] == "auth.session_ended"
    again = console.post("/api/v1/central/session", json={"user_id": "TECH1", "pin": "2468"})
    assert again.json()["code"] == "auth.user_inactive"


def test_an_idle_console_signs_off_even_while_its_page_refreshes_itself(console: TestClient, clock: FixedClock) -> None:
    headers = sign_in(console, "PHARM1")
    passive = {**headers, "X-ADC-Passive": "1"}
    for _ in range(14):
        clock.advance(timedelta(minutes=1))
        assert console.get("/api/v1/fleet/cabinets", headers=passive).status_code == 200
    clock.advance(timedelta(minutes=1, seconds=1))
    expired = console.get("/api/v1/fleet/cabinets", headers=passive)
    assert expired.json()["code"] == "auth.token_expired"
    # A call the user made keeps the session: 14 minutes, a click, 14 more.
    headers = sign_in(console, "PHARM1")
    clock.advance(timedelta(minutes=14))
    assert console.get("/api/v1/fleet/find", params={"q": "mor"}, headers=headers).status_code == 200
    clock.advance(timedelta(minutes=14))
    assert console.get("/api/v1/fleet/cabinets", headers=headers).status_code == 200
    assert console.delete("/api/v1/central/session", headers=headers).status_code == 200
    assert console.get("/api/v1/fleet/cabinets", headers=headers).json()["code"] == "auth.token_invalid"
