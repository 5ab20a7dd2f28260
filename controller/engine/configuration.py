"""Putting a cabinet's configuration in force, whoever changes it: an administrator at the cabinet
(``handlers.admin``) or the central server's downlink (``handlers.central_config``).

Responsible for: the ``configuration.changed`` entry that puts a rules document in force (``rules_record``), handing
new rules to every machine at once (``put_rules_in_force``), and giving the engine a new pocket layout within the
same physical cabinet (``put_layout_in_force``).
"""

from __future__ import annotations

from typing import Any

from controller.domain.rules_document import CabinetRules, canonical_json, rules_to_document
from controller.domain.transactions import EventType, LedgerRecord
from controller.engine.context import EngineContext
from controller.engine.topology import CabinetTopology

RULES_KIND = "rules"  # details.kind of the configuration.changed entry holding the rules in force


def rules_record(rules: CabinetRules, *, actor_id: str | None, source: str, reason: str,
                 changes: list[dict[str, Any]], occurred_at: str, reason_code: str | None = None,
                 **details: Any) -> LedgerRecord:  # fmt: skip
    """The entry that puts ``rules`` in force: the whole document (as its canonical JSON text: the ledger holds no
    floats), its hash, where it came from and what changed."""
    return LedgerRecord(
        event_type=EventType.CONFIGURATION_CHANGED,
        actor_id=actor_id,
        reason_code=reason_code or ("rules_changed" if actor_id else "rules_loaded"),
        note=reason or None,
        details={
            "kind": RULES_KIND,
            "occurred_at": occurred_at,
            "hash": rules.hash,
            "source": source,
            "document": canonical_json(rules_to_document(rules)),
            "changes": changes,
            **details,
        },
    )


def put_rules_in_force(ctx: EngineContext, rules: CabinetRules, *, source: str) -> None:
    """Every machine decides with the new rules from now on."""
    ctx.rules.replace(rules.policy, rules.machines, hash=rules.hash, source=source)
    ctx.session.settings = rules.machines
    ctx.compartments.settings = rules.machines


def put_layout_in_force(ctx: EngineContext) -> None:
    """Read the pockets' assignments again after a layout change. The compartments and their latches are the
    cabinet's hardware and do not change; a layout that moved them would be a bug, so it stops here."""
    with ctx.store.read() as reader:
        topology = CabinetTopology.read(reader)
    if topology.address != ctx.topology.address or topology.unlock_chain != ctx.topology.unlock_chain:
        raise RuntimeError("a layout change moved a compartment or a latch")
    ctx.topology = topology
    ctx.actuator.topology = topology


def ledger_value(value: Any) -> Any:
    """A rules value as the ledger can hold it (no floats): numbers with a fraction as text."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return [ledger_value(v) for v in value]
    return value
