"""``GET /api/v1/devices/temperature``: the refrigerator's readings as the console charts them (the band, the
refrigerated drawers, the readings the event hub kept) and the excursion the engine recorded after 30 minutes out of
the band, read from the ledger. Plus the thinning rule of ``TemperatureHistory`` on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.api.temperature_history import TemperatureHistory
from tests.api.rig import bearer, open_cabinet
from tests.api.test_pull_flow import ok

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def test_the_history_keeps_band_crossings_and_big_moves_and_thins_drift() -> None:
    history = TemperatureHistory(spacing=timedelta(seconds=30), step=0.3)
    for second, celsius in [(0, 5.0), (5, 5.1), (10, 5.2), (15, 8.1), (20, 8.2), (40, 7.9), (90, 7.8)]:
        history.add(T0 + timedelta(seconds=second), celsius)
    kept = [(p["at"][14:19], p["temperature_c"]) for p in history.points()]
    # 5.1 is drift (dropped); 5.2, the value just before the crossing, was held back and is written before it; 8.1
    # crosses the band; 8.2 is held back, then written before 7.9 crosses back; 7.8 comes 50 s later: kept.
    assert kept == [("00:00", 5.0), ("00:10", 5.2), ("00:15", 8.1), ("00:20", 8.2), ("00:40", 7.9), ("01:30", 7.8)]
    history.add(T0 + timedelta(seconds=95), 7.7)  # drift again: shown as the tail until something significant
    assert history.points()[-1]["temperature_c"] == 7.7 and len(history.points()) == 7


@pytest.mark.timeout(60)
def test_the_route_shows_readings_band_and_a_recorded_excursion(tmp_path: Path) -> None:
    with open_cabinet(tmp_path) as cab:
        c = cab.client
        h = bearer(cab.login("TECH1"))  # any cabinet user may read it (devices:read for integrators)

        def shown() -> dict[str, Any]:
            return ok(c.get("/api/v1/devices/temperature", headers=h))

        first = shown()
        assert first["band_c"] == [2.0, 8.0] and first["refrigerators"] == ["D5"] and first["excursions"] == []
        cab.sims.act("io_board", "set_fridge_temperature", celsius=9.5)
        cab.wait_until(lambda: shown()["current_c"] == 9.5)
        cab.wait_until(lambda: 9.5 in [p["temperature_c"] for p in shown()["readings"]])
        app: Any = c.app
        health = app.state.runtime.runner.health  # the running loop's refrigerator check has seen it start
        cab.wait_until(lambda: health.last_environment is not None and health.last_environment.data["excursion"])
        cab.clock.advance(timedelta(minutes=31))  # the running loop's next refrigerator check sees 31 minutes out
        cab.wait_until(lambda: c.get("/api/v1/cabinet/session", headers=h).status_code == 401)  # idle: logged off
        h = bearer(cab.login("TECH1"))
        cab.wait_until(lambda: shown()["excursions"] != [], timeout=10)
        [excursion] = shown()["excursions"]
        assert excursion["minutes"] >= 30 and excursion["temperature_c"] == "9.5"
        assert excursion["since"] is not None and excursion["recorded_at"]
        entries = [e for e in cab.entries() if e["event_type"] == "environment.temperature_excursion"]
        assert [e["seq"] for e in entries] == [excursion["seq"]]
