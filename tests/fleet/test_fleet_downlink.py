"""One HL7 feed for the hospital: ADT and pharmacy orders sent to the central's MLLP listener reach the cabinets of
the patient's care area (and only those) through the census bucket, a discharge ends the encounter there, the
formulary flows down the same way, and an older or unreadable document is refused at the cabinet with an entry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats as nats_client
import pytest
from sqlalchemy import select, text

from controller.domain.clock import SystemClock
from controller.domain.directory import DownlinkDocument, census_key
from controller.domain.medication import Medication
from controller.domain.ndc import Ndc
from controller.fleet import protocol as p
from controller.fleet.central_service import CentralConfig, CentralService
from controller.integration.hl7 import open_listener
from controller.store import repositories as repo
from controller.store.central import formulary as central_formulary
from controller.store.central import ledger as central
from controller.store.database import Database
from controller.store.formulary_file import load_formulary
from controller.store.models import EncounterRow, LedgerEntryRow, MedicationRow, OrderRow, PatientRow
from tests.fleet.harness import Cabinet, NatsServer, eventually, make_cabinet
from tests.integration.hl7_rig import MllpClient

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

ADMIT_4W = (
    "MSH|^~\\&|ADT|HOSP|ADC|CENTRAL|20261207090000||ADT^A01^ADT_A01|A1|P|2.5.1\r"
    "EVN|A01|20261207090000\r"
    "PID|1||MRN300001^^^HOSP^MR||Lee^Grace||19600310|F\r"
    "PV1|1|I|4W^410^A||||||||||||||||V300001\r"
)
ORDER_4W = (
    "MSH|^~\\&|PHARM|HOSP|ADC|CENTRAL|20261207091000||RDE^O11^RDE_O11|R1|P|2.5.1\r"
    "PID|1||MRN300001^^^HOSP^MR||Lee^Grace||19600310|F\r"
    "ORC|NW|RX-7001^PHARM|||||||20261207091000||1234^Shah^Priya\r"
    "RXE||0409-1891-01^morphine 4 mg/mL^NDC|2||mg|INJ^injection||||1|EA^each\r"
    "TQ1|1||Q2H||||||PRN\r"
    "RXR|IV^Intravenous^HL70162\r"
)
ADMIT_5E = (
    "MSH|^~\\&|ADT|HOSP|ADC|CENTRAL|20261207090500||ADT^A01^ADT_A01|A2|P|2.5.1\r"
    "EVN|A01|20261207090500\r"
    "PID|1||MRN300002^^^HOSP^MR||Kim^Dana||19710101|F\r"
    "PV1|1|I|5E^501^B||||||||||||||||V300002\r"
)
DISCHARGE_4W = (
    "MSH|^~\\&|ADT|HOSP|ADC|CENTRAL|20261207120000||ADT^A03^ADT_A03|A3|P|2.5.1\r"
    "EVN|A03|20261207120000\r"
    "PID|1||MRN300001^^^HOSP^MR||Lee^Grace||19600310|F\r"
    "PV1|1|I|4W^410^A||||||||||||||||V300001\r"
)
NEW_ITEM = Medication(
    id="NALOXONE-0.4MG-ML-INJ", ndc=Ndc.parse("0409-1215-01"), generic_name="naloxone", brand_name="",
    display_name="naloxone 0.4 mg/mL inj", strength="0.4 mg/mL", dosage_form="injection", route="IV", package="",
    unit="mL",
)  # fmt: skip


def patient_at(cabinet: Cabinet, patient_id: str) -> tuple[bool, list[str]] | None:
    """Whether the patient's encounter is active at the cabinet, and their order ids there (None: unknown)."""
    with cabinet.db.read() as session:
        if session.get(PatientRow, patient_id) is None:
            return None
        active = any(e.active for e in session.query(EncounterRow).filter_by(patient_id=patient_id))
        orders = [o.id for o in session.query(OrderRow).filter_by(patient_id=patient_id)]
        return active, orders


def refusals(cabinet: Cabinet) -> list[dict[str, object]]:
    with cabinet.db.read() as session:
        bodies = session.execute(
            select(LedgerEntryRow.body).where(LedgerEntryRow.event_type == "fleet.directory_refused")
        ).scalars()
        return [json.loads(body) for body in bodies]


def test_the_central_hl7_feed_reaches_the_cabinets_of_the_patients_care_area(
    central_db: Database, nats: NatsServer, tmp_path: Path
) -> None:
    with central_db.write() as session:
        central_formulary.add_missing(session, load_formulary())

    async def scenario() -> None:
        stop = asyncio.Event()
        clock = SystemClock()
        service = CentralService(central_db, nats.url, clock, config=CentralConfig(directory_interval_s=0.3))
        running = asyncio.create_task(service.run(stop))
        listener = await open_listener(central_db, clock, facility="CENTRAL")
        four_west = make_cabinet(tmp_path, central_db, "CAB-4W", nats.url, seeded=True)
        other = make_cabinet(tmp_path, central_db, "CAB-5E", nats.url, seeded=True)  # seeded in area 4W, too
        with other.db.write() as session:  # ... moved to 5E: it must see 5E's patients only
            session.execute(text("INSERT INTO care_areas (id, name, profiled) VALUES ('5E', '5 East', true)"))
            session.execute(text("UPDATE cabinets SET care_area_id = '5E'"))
        with central_db.writer.begin() as connection:
            central.register_cabinet(
                connection,
                "CAB-5E",
                name="5 East",
                care_area="5E",
                public_key=p.public_key_text(other.key),
                now=clock.now(),
            )  # type: ignore[arg-type]
        try:
            for cabinet in (four_west, other):
                cabinet.start()
            client = await MllpClient.connect(listener.address)
            for message in (ADMIT_4W, ORDER_4W, ADMIT_5E):
                assert (await client.send(message.encode())).code == "AA"

            await eventually(lambda: patient_at(four_west, "MRN300001") == (True, ["RX-7001"]),
                             what="the 4W patient and order at the 4W cabinet")  # fmt: skip
            await eventually(lambda: patient_at(other, "MRN300002") == (True, []), what="the 5E patient at 5E")
            assert patient_at(four_west, "MRN300002") is None and patient_at(other, "MRN300001") is None
            with four_west.db.read() as session:
                order = session.get(OrderRow, "RX-7001")
                assert order is not None and order.item_id == "MORPHINE-4MG-ML-CARP" and order.prn

            with central_db.write() as session:  # a new formulary item at the central reaches every cabinet
                repo.save_medication(session, NEW_ITEM)
            for cabinet in (four_west, other):
                await eventually(lambda c=cabinet: _has_item(c, NEW_ITEM.id), what="the new item at the cabinet")

            assert (await client.send(DISCHARGE_4W.encode())).code == "AA"
            await eventually(lambda: patient_at(four_west, "MRN300001") == (False, ["RX-7001"]),
                             what="the discharge ending the encounter at 4W")  # fmt: skip
            await client.close()

            # An older version and an unreadable document put into the bucket by someone else: refused, recorded.
            connection = await nats_client.connect(nats.url)
            census = await connection.jetstream().key_value(p.CENSUS_BUCKET)
            key = census_key("4W", "MRN300001")
            old = DownlinkDocument("census", key, 1, {"patient": {}, "encounter": {}, "orders": []})
            await census.put(key, p.encode_downlink(old))
            await census.put(census_key("4W", "JUNK"), b"{not json")
            await connection.close()
            await eventually(lambda: len(refusals(four_west)) >= 2, what="both refusals recorded at 4W")
            codes = sorted(str(r["reason_code"]) for r in refusals(four_west))
            assert codes == ["fleet.stale_downlink", "fleet.unreadable_message"]
            assert patient_at(four_west, "MRN300001") == (False, ["RX-7001"])  # nothing applied
        finally:
            await listener.close()
            for cabinet in (four_west, other):
                await cabinet.halt()
                cabinet.db.dispose()
            stop.set()
            await running

    asyncio.run(scenario())


def _has_item(cabinet: Cabinet, item_id: str) -> bool:
    with cabinet.db.read() as session:
        return session.get(MedicationRow, item_id) is not None
