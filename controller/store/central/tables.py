"""The central server's own tables (PostgreSQL only), beside the cabinet schema it also carries for the hospital's
formulary, users, patients, orders and HL7 queues.

Responsible for: the table definitions the central's code reads and writes. The migrations under
``controller/store/central/migrations`` create them (the ledger partitioned by month, its append-only trigger);
these definitions must match them, which ``tests/fleet/test_central_ledger.py`` checks.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

cabinets = Table(
    "fleet_cabinets",
    metadata,
    Column("cabinet_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("care_area", String(100), nullable=False),
    Column("public_key", String(100), nullable=False),  # Ed25519, base64: the central never holds a private key
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("last_contact_at", DateTime(timezone=True)),
    Column("clock_skew_s", Float),
    Column("reported_head_seq", BigInteger),  # the cabinet's own head, from its last heartbeat
    Column("reported_published_seq", BigInteger),
    Column("reported_open_alarms", Integer),
    Column("console_url", Text),  # migration c0002
)

heads = Table(
    "fleet_heads",
    metadata,
    Column("cabinet_id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ledger = Table(
    "fleet_ledger",
    metadata,
    Column("cabinet_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),  # the partition key: the cabinet's clock
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("actor_id", Text),
    Column("witness_id", Text),
    Column("patient_id", Text),
    Column("order_id", Text),
    Column("item_id", Text),
    Column("pocket_id", Text),
    Column("lot_number", Text),
    Column("quantity_change", BigInteger),
    Column("is_simulator", Boolean, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),
)

held = Table(
    "fleet_held_entries",
    metadata,
    Column("cabinet_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

alarms = Table(
    "fleet_alarms",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("cabinet_id", String(64), nullable=False),
    Column("seq", BigInteger),
    Column("code", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("entry_hash", String(64)),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("cleared_at", DateTime(timezone=True)),
)

dead_letters = Table(
    "fleet_dead_letters",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("subject", Text, nullable=False),
    Column("stream_seq", BigInteger),
    Column("payload", LargeBinary, nullable=False),
    Column("code", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

directory = Table(
    "fleet_directory",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

pockets = Table(
    "fleet_pockets",
    metadata,
    Column("cabinet_id", String(64), primary_key=True),
    Column("pocket_id", String(64), primary_key=True),
    Column("item_id", Text, nullable=False),
    Column("par_level", Integer, nullable=False),
    Column("min_level", Integer, nullable=False),
    Column("max_level", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
)

stock = Table(
    "fleet_stock",
    metadata,
    Column("cabinet_id", String(64), primary_key=True),
    Column("pocket_id", String(64), primary_key=True),
    Column("lot_number", Text, primary_key=True),
    Column("item_id", Text),
    Column("expiry", Date),
    Column("quantity", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),  # the entry that set it
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

holds = Table(
    "fleet_holds",
    metadata,
    Column("cabinet_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("item_id", Text, nullable=False),
    Column("lot_number", Text, nullable=False),
    Column("pocket_id", String(64)),  # None: a recall, every pocket
    Column("reason", Text, nullable=False),
    Column("released_seq", BigInteger),
)

console_signins = Table(
    "fleet_console_signins",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("code", String(64)),
    Column("remote", String(64)),
)

access_refusals = Table(  # migration c0003
    "fleet_access_refusals",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("code", String(64), nullable=False),
    Column("route", String(200), nullable=False),
    Column("method", String(10), nullable=False),
    Column("actor_id", String(80)),
    Column("remote", String(64)),
)
