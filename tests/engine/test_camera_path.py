"""The camera instead of the hand scanner: a rendered drug package in front of the simulated network camera
(MJPEG over HTTP, read by the OpenCV driver) is decoded and judged exactly as a scan would be, at restock and at
pull; a wrong-strength package is refused and recorded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import pytest

from controller.domain.clock import FixedClock
from controller.engine.cabinet import CabinetEngine
from controller.engine.commands import (
    CountBack,
    EnterCount,
    FinishRestock,
    GetCabinetStatus,
    Login,
    Logout,
    ScanPackage,
    ScanRemoved,
    SecondCount,
    SelectItem,
    StartFill,
    StartPull,
    StartRestock,
    Take,
)
from controller.engine.context import Devices
from controller.hardware.camera.opencv_driver import OpenCvCamera
from controller.store.database import Database
from simulators.common.control import ControlSurface
from simulators.scene import camera as camera_sim
from simulators.scene.barcodes import BarcodeKind
from simulators.scene.packages import Drug, LabelSpec, Pose, render_package
from simulators.scene.trays import TrayOptions, render_tray
from tests.engine import rig
from tests.engine.pharmacy_rig import gs1, open_pharmacy, seed
from tests.engine.rig import chain_ok, entries, last_seq, ledger_stock_agrees, lots
from tests.hardware.io_board.rigs import run

HEPARIN_5K = Drug("Heparin", "5,000 units/mL", "72603-456-25", (40, 90, 200))
HEPARIN_10K = Drug("Heparin", "10,000 units/mL", "0409-1316-32", (30, 30, 180))
MORPHINE = Drug("Morphine", "4 mg/mL", "0409-1891-01", (60, 160, 60))


@pytest.fixture
def seeded(db: Database, clock: FixedClock) -> Database:
    seed(db, clock)
    return db


async def _restock_heparin(engine: CabinetEngine) -> str:
    """TECH1 (logged in) restocks two heparin into D1-P01 (matrix drawer 1): the restock id."""
    started = await engine.execute(StartRestock("D1-P01", quantity=2))
    assert started.ok, started
    return started.unwrap().restock_id


def _package(drug: Drug, lot: str, expiry: date, serial: str) -> Any:
    label = LabelSpec(drug, lot, expiry, serial, BarcodeKind.GS1_DATAMATRIX)
    return render_package(label, Pose(angle_deg=4.0, module_px=5.0), seed=7).image


@asynccontextmanager
async def cabinet_with_camera(db: Database, clock: FixedClock, **settings: Any) -> AsyncIterator[tuple[Any, Any, Any]]:
    async with rig.open_cabinet("tcp") as cab:
        sim = await camera_sim.start(control=ControlSurface())
        camera = await OpenCvCamera.connect(sim.url, timeout=5.0)
        try:
            devices = Devices(board=cab.board, camera=camera)
            engine = rig.make_engine(db, cab.board, clock, devices=devices, **settings)
            assert (await engine.restore()).ok
            yield engine, cab, sim.model
        finally:
            await camera.close()
            await sim.close()


def test_restock_by_camera(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with cabinet_with_camera(seeded, clock) as (engine, cab, lens):
            start = last_seq(seeded)
            assert (await engine.execute(Login("TECH1", pin="4444"))).ok
            restock_id = await _restock_heparin(engine)
            cab.world.open_drawer(1)
            await engine.poll()
            assert (await engine.execute(CountBack(restock_id, 5))).ok

            lens.show(_package(HEPARIN_10K, "HX9", date(2027, 9, 30), "W1"))
            wrong = await engine.execute(ScanPackage(restock_id, by_camera=True))
            assert not wrong.ok and wrong.data["scan"]["ndc10"] == "0409131632", wrong
            assert wrong.data["scan"]["read_by"]["device"] == "camera"

            lens.show(_package(HEPARIN_5K, "HC1", date(2027, 9, 30), "C1"))
            right = await engine.execute(ScanPackage(restock_id, units=2, by_camera=True))
            assert right.ok, right
            assert right.data["scan"]["lot"] == "HC1" and right.data["scan"]["serial"] == "C1"
            assert (await engine.execute(FinishRestock(restock_id))).ok
            cab.world.close_drawer(1)
            await engine.poll()

            assert lots(seeded, "D1-P01")["HC1"] == 2
            new = entries(seeded, start)
            assert [json.loads(r.body)["reason_code"] for r in new if r.event_type == "input.refused"] == [
                wrong.data["scan"]["verdict"]
            ]
            assert chain_ok(seeded) and ledger_stock_agrees(seeded)

    run(scenario(), timeout=60)


def test_removed_package_checked_by_camera(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with cabinet_with_camera(seeded, clock, scan_removed_package=True) as (engine, cab, lens):
            assert (await engine.execute(Login("NURSE1", pin="1111"))).ok
            pull_id = (await engine.execute(StartPull("MRN1"))).unwrap().pull_id
            assert (await engine.execute(SelectItem(pull_id, order_id="ORD1"))).ok
            assert (await engine.execute(EnterCount(pull_id, 9))).ok
            cab.world.open_drawer(2)
            await engine.poll()
            cab.world.lift_lid(2, 1)
            await engine.poll()
            lens.show(_package(MORPHINE, "B2", date(2027, 6, 30), "G7"))
            seen = await engine.execute(ScanRemoved(pull_id, by_camera=True))
            assert seen.ok, seen
            assert seen.data["scan"]["read_by"]["device"] == "camera"
            assert (await engine.execute(Take(pull_id, 1))).ok
            cab.world.close_lid(2, 1)
            await engine.poll()
            cab.world.close_drawer(2)
            await engine.poll()
            assert lots(seeded, "D2-P01")["B2"] == 5
            assert (await engine.execute(Logout())).ok

    run(scenario(), timeout=60)


def test_no_camera_is_a_clear_refusal(seeded: Database, clock: FixedClock) -> None:
    async def scenario() -> None:
        async with rig.open_cabinet("fake") as cab:
            engine = rig.make_engine(seeded, cab.board, clock)
            assert (await engine.restore()).ok
            assert (await engine.execute(Login("TECH1", pin="4444"))).ok
            restock_id = await _restock_heparin(engine)
            cab.world.open_drawer(1)
            await engine.poll()
            assert (await engine.execute(CountBack(restock_id, 5))).ok
            refused = await engine.execute(ScanPackage(restock_id, by_camera=True))
            assert refused.code == "engine.device_missing" and refused.context["device"] == "camera"

    run(scenario())


OXYCODONE = "OXYCODONE-5MG-TAB"


@pytest.mark.parametrize(("on_tray", "touching"), [(10, 0.0), (11, 0.0), (10, None)])
def test_tray_image_is_the_schedule_ii_second_count(
    seeded: Database, clock: FixedClock, on_tray: int, touching: float | None
) -> None:
    """The counter filled 10; the tablets spread on the tray are counted from a camera frame: 10 agrees and the
    vial is labelled; 11 is a mismatch and nothing is labelled; a pile the vision cannot resolve is refused as
    uncertain and the fill keeps waiting for its second count."""

    async def scenario() -> None:
        sim = await camera_sim.start(control=ControlSurface())
        camera = await OpenCvCamera.connect(sim.url, timeout=5.0)
        try:
            async with open_pharmacy(seeded, clock, camera=camera) as ph:
                e = ph.engine
                assert (await e.execute(Login("PHARM1", pin="3333"))).ok
                ph.counter.pour(10)
                ph.scanner.present(gs1("0904-6966-61", "OX1", "280131", "T1"), "]d2")
                started = await e.execute(StartFill(OXYCODONE, 10, "RX201", "DOE, JO"))
                assert started.ok, started
                fill_id = started.unwrap().fill_id
                options = TrayOptions(
                    count=on_tray, seed=3, touching=touching or 0.0, piles=2 if touching is None else 0
                )
                sim.model.show(render_tray(options).image)
                second = await e.execute(SecondCount(fill_id, by_camera=True))
                if touching is None:
                    assert second.code == "vision.count_uncertain", second
                    assert ph.printer.printed_count() == 0
                    waiting = e.query(GetCabinetStatus()).unwrap().live_workflows
                    assert [w["fill_id"] for w in waiting if w["kind"] == "fill"] == [fill_id]  # still waiting
                elif on_tray == 10:
                    assert second.ok and second.data["state"] == "filled", second
                    filled = json.loads(entries(seeded, last_seq(seeded) - 1)[-1].body)
                    assert filled["details"]["second_count"] == 10
                    assert filled["details"]["second_count_by"] == "tray_image"
                    assert ph.printer.printed_count() == 1
                else:
                    assert second.code == "fill.count_mismatch", second
                    assert second.context == {"first": 10, "second": 11}
                    assert ph.printer.printed_count() == 0
        finally:
            await camera.close()
            await sim.close()

    run(scenario(), timeout=90)
