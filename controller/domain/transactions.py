"""What the ledger records: the event types and the record of one event, before it is sealed into the chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    # cabinet and configuration
    CABINET_INITIALISED = "cabinet.initialised"
    CONFIGURATION_CHANGED = "configuration.changed"
    ITEM_ASSIGNED = "pocket.item_assigned"
    USER_CREATED = "user.created"
    # sessions
    LOGIN = "session.login"
    LOGIN_FAILED = "session.login_failed"
    LOGOUT = "session.logout"
    # hardware
    DRAWER_OPENED = "drawer.opened"
    DRAWER_CLOSED = "drawer.closed"
    TAMPER_ALARM = "drawer.tamper"
    TEMPERATURE_EXCURSION = "environment.temperature_excursion"
    # stock movements (these carry a quantity change)
    STOCK_LOADED = "stock.loaded"
    STOCK_RESTOCKED = "stock.restocked"
    STOCK_UNLOADED = "stock.unloaded"
    DOSE_REMOVED = "dose.removed"
    DOSE_RETURNED = "dose.returned"
    COUNT_ADJUSTED = "stock.count_adjusted"
    # records without a quantity change of pocket stock
    COUNT_ENTERED = "count.entered"
    WASTE_RECORDED = "dose.wasted"
    OVERRIDE = "dose.override"
    DISCREPANCY_RAISED = "discrepancy.raised"
    DISCREPANCY_RESOLVED = "discrepancy.resolved"
    LOT_QUARANTINED = "stock.quarantined"
    INPUT_REFUSED = "input.refused"
    # alarms, faults, escalations and reviews the state machines record (appended: values never change meaning)
    DRAWER_LEFT_OPEN = "drawer.left_open"
    COMPARTMENT_FAULT = "drawer.fault"  # jammed, would not unlock, lock would not engage
    USER_LOCKED_OUT = "session.locked_out"
    LOCKOUT_CLEARED = "session.lockout_cleared"
    DISCREPANCY_ESCALATED = "discrepancy.escalated"
    DISCREPANCY_REVIEWED = "discrepancy.reviewed"
    OVERRIDE_REVIEWED = "dose.override_reviewed"
    WASTE_PENDING = "dose.waste_pending"  # deferred to the pending-waste list, or its witness step was cancelled
    WASTE_OVERDUE = "dose.waste_overdue"  # not recorded by the end of the shift: escalated to pharmacy
    STOCK_SHORT_DATED = "stock.short_dated"  # a lot stocked close to its expiry (a warning, not a refusal)
    VIAL_FILLED = "fill.completed"  # a counting-robot vial fill, counted and labelled (pharmacy stock, no pocket)
    QUARANTINE_REVIEWED = "stock.quarantine_reviewed"  # a pharmacist released or condemned a quarantined lot
    DEVICE_FAULT = "device.fault"  # a board fault bit rose: watchdog expired, board restarted, over-current ...
    WORKFLOW_CANCELLED = "workflow.cancelled"  # a pull (etc.) ended before anything was removed: cancel, expiry
    FLEET_ANCHORED = "fleet.anchored"  # the central server's committed head of this chain (seq + hash)
    FLEET_DIRECTORY_REFUSED = "fleet.directory_refused"  # a directory record from the central refused (stale ...)

    @property
    def moves_stock(self) -> bool:
        return self in _STOCK_EVENTS


_STOCK_EVENTS = frozenset(
    {
        EventType.STOCK_LOADED,
        EventType.STOCK_RESTOCKED,
        EventType.STOCK_UNLOADED,
        EventType.DOSE_REMOVED,
        EventType.DOSE_RETURNED,
        EventType.COUNT_ADJUSTED,
    }
)

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """Who did what to which dose, with whom watching. Quantities are in the item's dispensing unit."""

    event_type: EventType
    actor_id: str | None = None
    witness_id: str | None = None
    patient_id: str | None = None
    order_id: str | None = None
    item_id: str | None = None
    pocket_id: str | None = None
    lot_number: str | None = None
    quantity_expected: int | None = None
    quantity_actual: int | None = None
    quantity_change: int | None = None
    reason_code: str | None = None
    note: str | None = None
    device_state: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
