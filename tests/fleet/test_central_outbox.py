"""One HL7 interface for the whole fleet, outbound: a dose removed at a cabinet, for a patient and order the
central's own feed brought in, reaches the central and leaves it as the hospital's dispense and charge messages
(RDS^O13, DFT^P03) naming the patient, the order's placer number, the cabinet and the lot's expiry, once; entries
that are not doses (the cabinet's seeding, a restock) queue nothing."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from controller.domain.clock import SystemClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.fleet.central_worker import CentralWorker, WorkerConfig
from controller.integration.hl7 import open_listener
from controller.integration.hl7.outbound import open_sender
from controller.integration.hl7.outbound.central import CentralOutbox
from controller.store.central import formulary as central_formulary
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.inventory import InventoryStore, StockChange
from controller.store.models import Hl7OutboxRow
from tests.fleet.harness import Cabinet, NatsServer, central_chain, eventually, local_chain, make_cabinet
from tests.fleet.test_fleet_downlink import ADMIT_4W, ORDER_4W
from tests.integration.hl7_rig import MllpClient
from tests.integration.test_outbox_serve import Receiver

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(120)]


def remove_morphine(cabinet: Cabinet) -> None:
    with cabinet.db.write() as session:
        InventoryStore(cabinet.ledger).apply(
            session,
            StockChange("D2-P01", "MO2411A", 1, expiry=date(2028, 6, 30)),
            LedgerRecord(EventType.STOCK_RESTOCKED, actor_id="TECH1"),
        )
        InventoryStore(cabinet.ledger).apply(
            session,
            StockChange("D2-P01", "MO2411A", -1),
            LedgerRecord(EventType.DOSE_REMOVED, actor_id="NURSE1", patient_id="MRN300001", order_id="RX-7001"),
        )


def test_a_dose_at_a_cabinet_leaves_the_central_as_one_dispense_message(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    with central_db.write() as session:
        central_formulary.add_missing(session, load_formulary())
    receiver = Receiver()

    async def scenario() -> None:
        clock = SystemClock()
        stop = asyncio.Event()
        worker = CentralWorker(central_db, nats.url, clock, observers=[CentralOutbox()],
                               config=WorkerConfig(ack_wait_s=2.0, fetch_timeout_s=0.2))  # fmt: skip
        running = asyncio.create_task(worker.run(stop))
        listener = await open_listener(central_db, clock, facility="CENTRAL")
        client = await MllpClient.connect(listener.address)
        for message in (ADMIT_4W, ORDER_4W):
            assert (await client.send(message.encode())).code == "AA"
        await client.close()
        sender = await open_sender(central_db, clock, cabinet_id=None, endpoint=f"127.0.0.1:{receiver.port}")
        cabinet = make_cabinet(tmp_path, central_db, "CAB-4W", nats.url, seeded=True)
        try:
            cabinet.start()
            await asyncio.to_thread(remove_morphine, cabinet)
            await eventually(lambda: local_chain(cabinet) == central_chain(central_db, "CAB-4W"),
                             what="the cabinet's chain at the central")  # fmt: skip
            await eventually(lambda: any("RDS^O13" in m for m in receiver.messages), what="the dispense message")
        finally:
            await cabinet.halt()
            cabinet.db.dispose()
            await sender.close()
            await listener.close()
            stop.set()
            await running

    try:
        asyncio.run(scenario())
    finally:
        receiver.close()
    dispenses = [m for m in receiver.messages if "RDS^O13" in m]
    assert len(dispenses) == 1, receiver.messages
    segments = {line.split("|", 1)[0]: line for line in dispenses[0].split("\r") if line}
    assert "MRN300001" in segments["PID"]
    assert "RX-7001" in segments["ORC"]
    assert "CAB-4W" in segments["MSH"]  # the cabinet it left from
    assert "20280630" in dispenses[0]  # the lot's expiry, from the entry (the central holds no pocket lots)
    charges = [m for m in receiver.messages if "DFT^P03" in m]
    assert len(charges) == 1 and "MRN300001" in charges[0]  # and its charge
    with central_db.reader.connect() as connection:
        queued = connection.execute(select(Hl7OutboxRow.message_type, Hl7OutboxRow.cabinet_id)).all()
    # The restock and every seeded entry queued nothing.
    assert sorted(tuple(row) for row in queued) == [("DFT^P03", "CAB-4W"), ("RDS^O13", "CAB-4W")]
