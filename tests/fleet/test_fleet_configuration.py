"""A cabinet's layout and policy over the real link: put at the central, published in ``adc_cabinets``, offered to
the cabinet's engine by its forwarder (only its own keys), and a layout the engine cannot take yet (a pocket still
holds stock) offered again until it can, a newer version replacing the one that waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.domain.cabinet_config import LAYOUT, POLICY
from controller.domain.clock import SystemClock
from controller.domain.directory import DownlinkDocument
from controller.fleet.central_service import CentralConfig, CentralService
from controller.fleet.forwarder import WAITING, ForwarderConfig
from controller.store.central import cabinet_config
from controller.store.database import Database
from tests.fleet.harness import NatsServer, eventually, make_cabinet

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]
ROW = {"pocket": "D1-P02", "item": "ACETAMINOPHEN-325MG-TAB", "par": 10, "min": 3, "max": 20}


def test_a_layout_that_must_wait_is_offered_again_until_the_engine_takes_it(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    offered: list[tuple[str, int, bool]] = []
    answers = {1: [WAITING, WAITING, "applied"], 2: [WAITING, "applied"]}

    async def engine(document: DownlinkDocument, retry: bool) -> str:
        offered.append((document.kind, document.version, retry))
        if document.kind == POLICY:
            return "applied"
        return answers[document.version].pop(0) if answers[document.version] else "same"

    def put(kind: str, cabinet: str, content: dict[str, object]) -> int:
        with central_db.writer.begin() as connection:
            return cabinet_config.put(connection, kind, cabinet, content, SystemClock().now())

    async def scenario() -> None:
        stop = asyncio.Event()
        service = CentralService(central_db, nats.url, SystemClock(), config=CentralConfig(directory_interval_s=0.2))
        running = asyncio.create_task(service.run(stop))
        config = ForwarderConfig(heartbeat_s=0.5, anchor_interval_s=0.5, poll_s=0.05, configuration_retry_s=0.3)
        cabinet = make_cabinet(tmp_path, central_db, "CAB-4W", nats.url, config=config)
        neighbour = make_cabinet(tmp_path, central_db, "CAB-4E", nats.url)  # gets none of 4W's documents
        cabinet.forwarder.configure = engine
        neighbour_offers: list[DownlinkDocument] = []

        async def neighbours_engine(document: DownlinkDocument, retry: bool) -> str:
            neighbour_offers.append(document)
            return "applied"

        neighbour.forwarder.configure = neighbours_engine
        try:
            cabinet.start()
            neighbour.start()
            assert put(LAYOUT, "CAB-4W", {"pockets": [ROW]}) == 1
            assert put(POLICY, "CAB-4W", {"text": "[witness]\nactions = []\n", "reason": "P&T"}) == 1
            await eventually(lambda: (LAYOUT, 1, True) in offered and (POLICY, 1, False) in offered, what="offers")
            await eventually(lambda: offered.count((LAYOUT, 1, True)) == 2, what="the second retry of v1")
            await asyncio.sleep(1.0)  # taken: not offered again
            assert offered.count((LAYOUT, 1, True)) == 2 and offered.count((LAYOUT, 1, False)) == 1
            assert offered.count((POLICY, 1, True)) == 0  # applied at once, never offered again

            assert put(LAYOUT, "CAB-4W", {"pockets": [ROW | {"par": 12}]}) == 2
            await eventually(lambda: (LAYOUT, 2, True) in offered, what="v2 offered again")
            await asyncio.sleep(1.0)
            assert [o for o in offered if o[0] == LAYOUT] == [(LAYOUT, 1, False), (LAYOUT, 1, True), (LAYOUT, 1, True),
                                                              (LAYOUT, 2, False), (LAYOUT, 2, True)]  # fmt: skip
            assert neighbour_offers == []
            assert cabinet.forwarder.status.downlink_applied == 3  # layout v1, the policy, layout v2
        finally:
            for member in (cabinet, neighbour):
                await member.halt()
                member.db.dispose()
            stop.set()
            await running

    asyncio.run(scenario())
