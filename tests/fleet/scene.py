"""A small hospital at the central without the transport: seeded cabinets' chains ingested straight into the
central (the same ``ingest`` the workers call), so the console's tests start from real cabinet entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from controller.domain.clock import SystemClock
from controller.domain.transactions import EventType, LedgerRecord
from controller.domain.users import Role, User
from controller.fleet import protocol as p
from controller.store import repositories as repo
from controller.store import schema
from controller.store.central import directory
from controller.store.central import formulary as central_formulary
from controller.store.central import ledger as central
from controller.store.database import Database
from controller.store.fleet_link import entries_after
from controller.store.formulary_file import load_formulary
from controller.store.inventory import InventoryStore, StockChange
from controller.store.ledger import Ledger
from tests.fleet.harness import seed_demo
from tests.store.test_inventory import FAST_HASHER

# Directory users of the scene, with their PINs.
STAFF = {"PHARM1": ("Pat Lee, PharmD", Role.PHARMACIST, "1357"), "TECH1": ("Jo Park, CPhT", Role.TECHNICIAN,
         "2468"), "NURSE1": ("Ann Cho, RN", Role.NURSE, "1111")}  # fmt: skip


@dataclass(frozen=True)
class Scene:
    cabinets: tuple[str, ...]
    console_urls: dict[str, str]


def build(central_db: Database, root: Path) -> Scene:
    """Two cabinets, 4 West and 5 East: 4 West out of acetaminophen and with ondansetron recalled, 5 East full."""
    now = datetime.now(UTC)
    with central_db.write() as session:
        central_formulary.add_missing(session, load_formulary())
        for user_id, (name, role, pin) in STAFF.items():
            repo.save_user(session, User(user_id, name, frozenset({role})), pin_hash=FAST_HASHER.hash_pin(pin),
                           created_at=now)  # fmt: skip
            directory.bump(session, user_id, now)
    urls = {"CAB-4W": "http://cab-4w.example:8000/pharmacy/", "CAB-5E": "http://cab-5e.example:8000/pharmacy/"}
    for cabinet_id, area in (("CAB-4W", "4W"), ("CAB-5E", "5E")):
        db = Database.open(f"sqlite:///{root / (cabinet_id + '.db')}", create=True)
        schema.upgrade(db)
        ledger = Ledger(cabinet_id, SystemClock(), is_simulator=True)
        seed_demo(db, ledger, SystemClock())
        with db.write() as session:
            if cabinet_id == "CAB-4W":
                InventoryStore(ledger).apply(session, StockChange("D1-P01", "AC2407A", -40),
                                             LedgerRecord(EventType.DOSE_REMOVED, actor_id="NURSE1"))  # fmt: skip
                recall = LedgerRecord(EventType.LOT_QUARANTINED, actor_id="PHARM1", lot_number="ON2411B",
                                      item_id="ONDANSETRON-2MG-ML-INJ", reason_code="recall")  # fmt: skip
                ledger.append(session, recall)
        with central_db.writer.begin() as connection:
            central.register_cabinet(connection, cabinet_id, name=f"{area} cabinet", care_area=area,
                                     public_key=p.public_key_text(p.new_signing_key()), now=now,
                                     console_url=urls[cabinet_id])  # fmt: skip
            central.ingest(connection, entries_after(db, cabinet_id, 0, limit=10**6), now=now)
        db.dispose()
    return Scene(("CAB-4W", "CAB-5E"), urls)
