"""SQLAlchemy 2.x models. Schema changes go through an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from controller.store.json_fields import BodyField, DetailField

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CareAreaRow(Base):
    __tablename__ = "care_areas"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    profiled: Mapped[bool] = mapped_column(Boolean)


class CabinetRow(Base):
    __tablename__ = "cabinets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    care_area_id: Mapped[str] = mapped_column(ForeignKey("care_areas.id"))
    drawers: Mapped[list[DrawerRow]] = relationship(back_populates="cabinet", order_by="DrawerRow.position")


class MedicationRow(Base):
    __tablename__ = "medications"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ndc: Mapped[str] = mapped_column(String(16))  # primary package NDC, hyphenated as printed
    generic_name: Mapped[str] = mapped_column(String(200))
    brand_name: Mapped[str] = mapped_column(String(200), default="")
    display_name: Mapped[str] = mapped_column(String(200))
    strength: Mapped[str] = mapped_column(String(100))
    dosage_form: Mapped[str] = mapped_column(String(100))
    route: Mapped[str] = mapped_column(String(100))
    package: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(40))
    dea_schedule: Mapped[str] = mapped_column(String(4), default="")
    high_alert: Mapped[bool] = mapped_column(Boolean, default=False)
    lasa: Mapped[bool] = mapped_column(Boolean, default=False)
    hazardous: Mapped[bool] = mapped_column(Boolean, default=False)
    refrigerated: Mapped[bool] = mapped_column(Boolean, default=False)
    neuromuscular_blocker: Mapped[bool] = mapped_column(Boolean, default=False)
    critical_override: Mapped[bool] = mapped_column(Boolean, default=False)  # migration 0004
    ndcs: Mapped[list[MedicationNdcRow]] = relationship(back_populates="medication", cascade="all, delete-orphan")


class MedicationNdcRow(Base):
    """Every NDC that stands for a formulary item (primary and alternates), indexed by its bare digits so a
    scanned UPC-A or GTIN (which carries 10 unsegmented digits) finds its item."""

    __tablename__ = "medication_ndcs"
    ndc: Mapped[str] = mapped_column(String(16), primary_key=True)
    digits: Mapped[str] = mapped_column(String(12), unique=True)
    medication_id: Mapped[str] = mapped_column(ForeignKey("medications.id"))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    medication: Mapped[MedicationRow] = relationship(back_populates="ndcs")


class DrawerRow(Base):
    __tablename__ = "drawers"
    __table_args__ = (UniqueConstraint("cabinet_id", "position"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cabinet_id: Mapped[str] = mapped_column(ForeignKey("cabinets.id"))
    kind: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(100))
    cabinet: Mapped[CabinetRow] = relationship(back_populates="drawers")
    pockets: Mapped[list[PocketRow]] = relationship(back_populates="drawer", order_by="PocketRow.position")


class PocketRow(Base):
    __tablename__ = "pockets"
    __table_args__ = (
        UniqueConstraint("drawer_id", "position"),
        CheckConstraint("0 <= min_level AND min_level <= par_level AND par_level <= max_level", name="levels"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    drawer_id: Mapped[str] = mapped_column(ForeignKey("drawers.id"))
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str | None] = mapped_column(ForeignKey("medications.id"), nullable=True)
    par_level: Mapped[int] = mapped_column(Integer, default=0)
    min_level: Mapped[int] = mapped_column(Integer, default=0)
    max_level: Mapped[int] = mapped_column(Integer, default=0)
    drawer: Mapped[DrawerRow] = relationship(back_populates="pockets")
    item: Mapped[MedicationRow | None] = relationship()
    lots: Mapped[list[PocketLotRow]] = relationship(
        back_populates="pocket", order_by="(PocketLotRow.expiry, PocketLotRow.lot_number)"
    )


class PocketLotRow(Base):
    """Quantity on hand per lot in a pocket. Changed only by ``InventoryStore`` together with a ledger entry."""

    __tablename__ = "pocket_lots"
    __table_args__ = (
        UniqueConstraint("pocket_id", "lot_number"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pocket_id: Mapped[str] = mapped_column(ForeignKey("pockets.id"))
    lot_number: Mapped[str] = mapped_column(String(20))
    expiry: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    pocket: Mapped[PocketRow] = relationship(back_populates="lots")


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    pin_hash: Mapped[str] = mapped_column(String(200))  # argon2id; the PIN itself is never stored
    badge_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    roles: Mapped[list[UserRoleRow]] = relationship(cascade="all, delete-orphan")


class UserRoleRow(Base):
    __tablename__ = "user_roles"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(40), primary_key=True)


class PatientRow(Base):
    __tablename__ = "patients"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_name: Mapped[str] = mapped_column(String(200))
    given_name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    allergies: Mapped[str] = mapped_column(Text, default="")  # newline-separated


class EncounterRow(Base):
    __tablename__ = "encounters"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    care_area_id: Mapped[str] = mapped_column(ForeignKey("care_areas.id"))
    room: Mapped[str] = mapped_column(String(40), default="")
    bed: Mapped[str] = mapped_column(String(40), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OrderRow(Base):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    # No foreign key: an order for an item this cabinet does not stock is kept and shown as "not stocked here".
    item_id: Mapped[str] = mapped_column(String(64))
    dose_amount: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    dose_unit: Mapped[str] = mapped_column(String(40))
    route: Mapped[str] = mapped_column(String(100), default="")
    frequency: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20))
    pharmacist_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    prn: Mapped[bool] = mapped_column(Boolean, default=False)


def _generated(key: str, kind: str = "text") -> Computed:
    return Computed(BodyField(key, kind), persisted=True)  # type: ignore[arg-type]


class LedgerEntryRow(Base):
    """One append-only ledger entry. ``body`` is the canonical JSON of the entry; ``hash`` is
    SHA-256(prev_hash + "\\n" + body). The other columns are generated from ``body`` for querying."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("cabinet_id", "seq"),
        Index("ix_ledger_entries_actor", "actor_id", "recorded_at"),
        Index("ix_ledger_entries_item", "item_id", "recorded_at"),
        Index("ix_ledger_entries_patient", "patient_id", "recorded_at"),
        Index("ix_ledger_entries_recorded_at", "recorded_at"),
        Index("ix_ledger_entries_pull_id", DetailField("pull_id")),  # migration 0005
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    body: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    cabinet_id: Mapped[str] = mapped_column(Text, _generated("cabinet_id"))
    seq: Mapped[int] = mapped_column(BigInteger, _generated("seq", "integer"))
    recorded_at: Mapped[str] = mapped_column(Text, _generated("recorded_at"))
    event_type: Mapped[str] = mapped_column(Text, _generated("event_type"))
    actor_id: Mapped[str | None] = mapped_column(Text, _generated("actor_id"))
    witness_id: Mapped[str | None] = mapped_column(Text, _generated("witness_id"))
    patient_id: Mapped[str | None] = mapped_column(Text, _generated("patient_id"))
    order_id: Mapped[str | None] = mapped_column(Text, _generated("order_id"))
    item_id: Mapped[str | None] = mapped_column(Text, _generated("item_id"))
    pocket_id: Mapped[str | None] = mapped_column(Text, _generated("pocket_id"))
    lot_number: Mapped[str | None] = mapped_column(Text, _generated("lot_number"))
    quantity_change: Mapped[int | None] = mapped_column(BigInteger, _generated("quantity_change", "integer"))
    is_simulator: Mapped[bool] = mapped_column(Boolean, _generated("is_simulator", "boolean"))


class LedgerHeadRow(Base):
    """The last sequence number and hash per cabinet. Appends lock this row, so sequence numbers have no gaps
    and the chain no forks; verification also uses it to notice entries cut from the end."""

    __tablename__ = "ledger_heads"
    cabinet_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


# --- engine state that must survive a restart (migration 0002) ----------------------------------------------------


class UserLockoutRow(Base):
    """Failed login attempts of one user since their last success, and the lockout they led to. Written only in
    the same transaction as the ledger entry of the attempt that changed it."""

    __tablename__ = "user_lockouts"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DiscrepancyRow(Base):
    """An open (or resolved) count discrepancy on one pocket; ``ledger_seq`` is the entry that raised it."""

    __tablename__ = "discrepancies"
    __table_args__ = (Index("ix_discrepancies_open", "cabinet_id", "status", "pocket_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cabinet_id: Mapped[str] = mapped_column(String(64))
    pocket_id: Mapped[str] = mapped_column(ForeignKey("pockets.id"))
    item_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expected: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: an undocumented access, not counted
    raised_by: Mapped[str] = mapped_column(String(64))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    controlled: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    kind: Mapped[str] = mapped_column(String(30), server_default="count_mismatch")  # or "undocumented_access"
    workflow_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the pull (etc.) it concerns


class PendingWasteRow(Base):
    """A removed dose whose waste is still owed by ``user_id`` (due by ``due_at``, end of shift)."""

    __tablename__ = "pending_wastes"
    __table_args__ = (Index("ix_pending_wastes_user", "cabinet_id", "user_id", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cabinet_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    item_id: Mapped[str] = mapped_column(String(64))
    pocket_id: Mapped[str] = mapped_column(String(64))
    lot_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    amount: Mapped[str] = mapped_column(String(40))  # a decimal as text, in ``unit``
    unit: Mapped[str] = mapped_column(String(40))
    removed_seq: Mapped[int] = mapped_column(BigInteger)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))


class OverrideReviewRow(Base):
    """The pharmacist review queue: one row per override removal, pointing at its ``dose.override`` entry."""

    __tablename__ = "override_reviews"
    __table_args__ = (UniqueConstraint("cabinet_id", "ledger_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cabinet_id: Mapped[str] = mapped_column(String(64))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    item_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))
    reviewer_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class QuarantinedLotRow(Base):
    """A lot that may not be used: recalled everywhere (``pocket_id`` NULL: every pocket holding ``item_id``), or
    held in one pocket (a refrigerator excursion) pending pharmacist review. ``status`` is active or released."""

    __tablename__ = "quarantined_lots"
    __table_args__ = (Index("ix_quarantined_lots_lot", "item_id", "lot_number", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cabinet_id: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[str] = mapped_column(String(64))
    lot_number: Mapped[str] = mapped_column(String(20))
    pocket_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ndc: Mapped[str | None] = mapped_column(String(14), nullable=True)
    reason: Mapped[str] = mapped_column(String(40))  # "recall", "temperature_excursion"
    quarantined_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    quarantined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    # The pharmacist review (migration 0004): "release" sets status released; "destroy" keeps the lot blocked.
    review_decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    review_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ApiClientRow(Base):
    """An integrator allowed to ask for tokens (OAuth2 client credentials); the secret is kept only as argon2id."""

    __tablename__ = "api_clients"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the client_id
    secret_hash: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated, as OAuth2 writes them
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- HL7 v2 inbound (migration 0007): the archive of every frame received and what was applied ------------------


class Hl7InboundMessageRow(Base):
    """One MLLP frame as received (``payload``: the bytes between the framing characters), what was done with it
    (``outcome``: applied, duplicate, error or rejected; the catalogue ``error_code`` and ``detail`` say why) and
    the ACK sent back. Written in the transaction that applied the message, or alone when it was refused."""

    __tablename__ = "hl7_inbound_messages"
    __table_args__ = (
        Index("ix_hl7_inbound_messages_control", "sender", "control_id"),
        Index("ix_hl7_inbound_messages_received_at", "received_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    peer: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str | None] = mapped_column(String(255), nullable=True)  # MSH-3 "|" MSH-4 as received
    control_id: Mapped[str | None] = mapped_column(String(199), nullable=True)  # MSH-10
    message_type: Mapped[str | None] = mapped_column(String(40), nullable=True)  # MSH-9.1 "^" MSH-9.2
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    content_hash: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    ack_code: Mapped[str] = mapped_column(String(2))
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    ack: Mapped[str] = mapped_column(Text)


class Hl7ProcessedMessageRow(Base):
    """A message whose effect was applied, by sender and MSH-10: a repeat gets the stored ACK and is not applied
    again. Refused messages are not kept here, so a corrected resend is processed afresh."""

    __tablename__ = "hl7_processed_messages"
    sender: Mapped[str] = mapped_column(String(255), primary_key=True)
    control_id: Mapped[str] = mapped_column(String(199), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    archive_id: Mapped[int] = mapped_column(ForeignKey("hl7_inbound_messages.id"))
    ack: Mapped[str] = mapped_column(Text)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Hl7OrderRow(Base):
    """What the pharmacy system sent for an order beyond the ``orders`` row: its numbers, the give code as sent,
    dosage form, dispense amount and timing (TQ1), and the last order control applied."""

    __tablename__ = "hl7_orders"
    __table_args__ = (Index("ix_hl7_orders_filler_number", "filler_number"),)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    placer_number: Mapped[str] = mapped_column(String(64), default="")  # ORC-2.1
    filler_number: Mapped[str] = mapped_column(String(64), default="")  # ORC-3.1
    order_control: Mapped[str] = mapped_column(String(2))  # ORC-1 of the last message applied
    order_status: Mapped[str] = mapped_column(String(2), default="")  # ORC-5 as sent
    give_code: Mapped[str] = mapped_column(String(64))
    give_code_system: Mapped[str] = mapped_column(String(20), default="")
    give_text: Mapped[str] = mapped_column(String(250), default="")
    give_amount_max: Mapped[Decimal | None] = mapped_column(Numeric(12, 4), nullable=True)
    dosage_form: Mapped[str] = mapped_column(String(100), default="")
    dispense_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 4), nullable=True)
    dispense_units: Mapped[str] = mapped_column(String(40), default="")
    timing_quantity: Mapped[str] = mapped_column(String(40), default="")  # TQ1-2
    explicit_times: Mapped[str] = mapped_column(String(100), default="")  # TQ1-4
    priority: Mapped[str] = mapped_column(String(40), default="")  # TQ1-9
    start_time: Mapped[str] = mapped_column(String(30), default="")  # TQ1-7 as sent (HL7 DTM)
    end_time: Mapped[str] = mapped_column(String(30), default="")  # TQ1-8 as sent
    verified_by: Mapped[str] = mapped_column(String(200), default="")  # ORC-11
    control_id: Mapped[str] = mapped_column(String(199))  # MSH-10 of the last message applied
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Hl7PatientMergeRow(Base):
    """A patient identifier merged away by ADT^A40: its encounters and orders now belong to ``survivor_id``.
    Ledger entries keep the identifier they were written with; this row links the two."""

    __tablename__ = "hl7_patient_merges"
    prior_patient_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(64))
    merged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    control_id: Mapped[str] = mapped_column(String(199))


# --- HL7 v2 outbound (migration 0008): the durable outbox of dispense and charge messages ----------------------


class Hl7OutboxRow(Base):
    """One outbound message (RDS^O13 or DFT^P03), written in the transaction of the ledger entry it reports and
    composed then: ``payload`` and ``control_id`` (MSH-10) never change, so a resend is byte for byte the same
    message. ``status`` is pending, delivered (after its AA was received; ``ack`` holds it) or parked (refused
    too often: an operator requeues it). ``patient_key`` orders the queue: a patient's messages go out in ``id``
    order, each only after the one before it was delivered."""

    __tablename__ = "hl7_outbox"
    __table_args__ = (
        UniqueConstraint("cabinet_id", "control_id"),
        Index("ix_hl7_outbox_queue", "cabinet_id", "status", "id"),
        Index("ix_hl7_outbox_patient", "cabinet_id", "patient_key", "status", "id"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    cabinet_id: Mapped[str] = mapped_column(String(64))
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    control_id: Mapped[str] = mapped_column(String(20))  # MSH-10, fixed when the message is queued
    message_type: Mapped[str] = mapped_column(String(20))  # RDS^O13, DFT^P03
    patient_key: Mapped[str] = mapped_column(String(64))  # the entry's patient id; "" when it names none
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    refusals: Mapped[int] = mapped_column(Integer, default=0)  # AE/AR answers so far
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ack: Mapped[str | None] = mapped_column(Text, nullable=True)


class Hl7OutboxAttemptRow(Base):
    """Each delivery attempt of an outbox message and how it ended: ``outcome`` delivered, refused (AE/AR: the
    ACK is kept), parked, or failed (no connection, dropped, no ACK in time, an ACK for another message)."""

    __tablename__ = "hl7_outbox_attempts"
    __table_args__ = (Index("ix_hl7_outbox_attempts_message", "outbox_id"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("hl7_outbox.id"))
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(20))
    ack_code: Mapped[str | None] = mapped_column(String(2), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    ack: Mapped[str | None] = mapped_column(Text, nullable=True)


class WorkflowJournalRow(Base):
    """A workflow that may hold a grant, written before any unlock it asks for and at every step after, in the
    transaction of that step's ledger entries; ``live`` turns false in the transaction that ends it. After a crash
    the live rows say which pockets were unlocked or open for whom (``controller.engine`` recovers them)."""

    __tablename__ = "workflow_journal"
    __table_args__ = (Index("ix_workflow_journal_live", "cabinet_id", "live"),)
    cabinet_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(30))
    patient_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    item_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pocket_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    compartments: Mapped[str] = mapped_column(Text)  # JSON list of the compartment ids granted to it
    details: Mapped[str] = mapped_column(Text)  # JSON: what recovery needs (a declared take, a waste's dose ...)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    live: Mapped[bool] = mapped_column(Boolean)


class CompartmentOpeningsRow(Base):
    """The I/O board's opening counter of one compartment up to which every opening is in the ledger (written in
    the transaction of the entries that recorded them): after a restart, the board's counter minus this is the
    number of openings nobody recorded."""

    __tablename__ = "compartment_openings"
    cabinet_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    compartment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recorded: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FleetForwardStateRow(Base):
    """How far the cabinet's ledger has gone to the central server: ``published_seq`` is the last entry JetStream
    has stored (the forwarder resumes after it), ``acknowledged_*`` the central's committed head as last heard,
    ``anchored_seq`` the central seq the cabinet's last ``fleet.anchored`` entry names. ``halted_code`` is set when
    the cabinet found its own chain contradicting the central's (forwarding stops until someone looks)."""

    __tablename__ = "fleet_forward_state"
    cabinet_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    published_seq: Mapped[int] = mapped_column(BigInteger)
    acknowledged_seq: Mapped[int] = mapped_column(BigInteger)
    acknowledged_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    anchored_seq: Mapped[int] = mapped_column(BigInteger)
    anchored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    halted_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    halted_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FleetDownlinkVersionRow(Base):
    """The version of each central directory record the cabinet has applied: an older one is refused."""

    __tablename__ = "fleet_downlink_versions"
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
