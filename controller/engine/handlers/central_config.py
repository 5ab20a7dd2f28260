"""The central server's configuration for this cabinet, as its downlink delivers it: the layout (pocket
assignments and levels) and the policy (the rules document).

Responsible for: applying a document only if its version is newer than the one held, under the engine's lock so no
workflow is half-way through a pocket whose assignment changes; checking a layout as a careful pharmacist would
(every pocket is one of this cabinet's, every item is in its formulary, a pocket changes its item only when it is
empty, in no workflow and without an open discrepancy: otherwise the whole document is refused, naming the pocket);
checking a policy as the policy file is checked; recording the change (``configuration.changed`` with the
version, and what each pocket or rule was and is now) in the transaction that makes it, or the refusal
(``fleet.directory_refused`` with its code) with nothing applied. A layout refused only because a pocket is busy
may pass later: the forwarder offers it again (``retry``), and a repeated refusal is not recorded again.

Not responsible for the transport (``controller.fleet.forwarder``) or the documents' shape
(``controller.domain.cabinet_config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.domain.cabinet_config import LAYOUT, POLICY, PocketAssignment, parse_layout, parse_policy
from controller.domain.rules_document import CabinetRules, diff_rules
from controller.domain.transactions import EventType, LedgerRecord
from controller.engine.commands.cabinet import ApplyCentralConfiguration, ConfigurationChanged
from controller.engine.configuration import (
    RULES_KIND,
    ledger_value,
    put_layout_in_force,
    put_rules_in_force,
    rules_record,
)
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Handler
from controller.errors import ConfigurationError, ControllerError, SafetyError
from controller.store.cabinet_store import CabinetReader, CabinetWriter
from controller.store.ledger import SealedEntry

SYSTEM = "system"
LAYOUT_KIND = "layout"  # details.kind of the configuration.changed entry of a layout


class CentralConfigurationHandler(Handler):
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        ctx.registry.add(self)
        ctx.registry.command(ApplyCentralConfiguration, self.apply, needs_session=False)

    async def apply(self, command: ApplyCentralConfiguration) -> CommandResult[ConfigurationChanged]:
        if command.kind not in (LAYOUT, POLICY):
            unknown = f"no such configuration kind {command.kind[:40]!r}"
            return self._refuse(command, ConfigurationError("fleet.layout_refused", unknown))
        key = self.ctx.store.cabinet_id
        with self.ctx.store.read() as reader:
            held = reader.downlink_version(command.kind, key)
            if held is not None and command.version == held:
                return CommandResult.done(ConfigurationChanged(command.kind, {"version": held, "same": True}, ()))
            if held is not None and command.version < held:
                stale = ControllerError("fleet.stale_downlink", f"{command.kind} version {command.version} is older "
                                        f"than the {held} held", held=held)  # fmt: skip
                return self._refuse(command, stale)
            try:
                if command.kind == LAYOUT:
                    changes = _layout_changes(reader, command.content)
                else:
                    rules, reason = parse_policy(command.content, source=f"the central's policy v{command.version}")
            except ControllerError as error:
                return self._refuse(command, error)
        if command.kind == LAYOUT:
            return self._put_layout(command, changes)
        return self._put_policy(command, rules, reason)

    def _put_layout(
        self, command: ApplyCentralConfiguration, changes: list[tuple[PocketAssignment, dict[str, Any]]]
    ) -> CommandResult[ConfigurationChanged]:
        shown = [{"pocket": a.pocket_id, "from": before, "to": _levels(a)} for a, before in changes]
        record = LedgerRecord(
            EventType.CONFIGURATION_CHANGED, actor_id=SYSTEM, reason_code="layout_from_central",
            details={"kind": LAYOUT_KIND, "occurred_at": self.ctx.now().isoformat(), "source": "central",
                     "version": command.version, "changes": shown},
        )  # fmt: skip

        def write(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            for assignment, _ in changes:
                tx.assign_pocket(assignment)
            tx.hold_downlink_version(LAYOUT, tx.cabinet_id, command.version)

        sealed = self.ctx.recorder.commit(record, then=write)
        put_layout_in_force(self.ctx)
        values = {"version": command.version, "changes": shown}
        return CommandResult.done(ConfigurationChanged(LAYOUT_KIND, values, seqs(sealed)))

    def _put_policy(self, command: ApplyCentralConfiguration, rules: CabinetRules,
                    reason: str) -> CommandResult[ConfigurationChanged]:  # fmt: skip
        held = self.ctx.rules
        before = CabinetRules(held.policy, held.machines)
        changes = [{"section": s, "key": k, "from": ledger_value(old), "to": ledger_value(new)}
                   for s, k, old, new in diff_rules(before, rules)]  # fmt: skip
        source = f"central v{command.version}"
        record = rules_record(rules, actor_id=SYSTEM, source=source, reason=reason, changes=changes,
                              occurred_at=self.ctx.now().isoformat(), reason_code="rules_from_central",
                              version=command.version)  # fmt: skip

        def hold(tx: CabinetWriter, sealed: list[SealedEntry]) -> None:
            tx.hold_downlink_version(POLICY, tx.cabinet_id, command.version)

        sealed = self.ctx.recorder.commit(record, then=hold)
        put_rules_in_force(self.ctx, rules, source=source)
        values = {"version": command.version, "hash": rules.hash, "changes": changes}
        return CommandResult.done(ConfigurationChanged(RULES_KIND, values, seqs(sealed)))

    def _refuse(self, command: ApplyCentralConfiguration, error: ControllerError) -> CommandResult[Any]:
        """Nothing applied; the refusal recorded (once: not again when the same document is offered again), so the
        pharmacy can see why a cabinet did not take a change."""
        if command.retry:
            return CommandResult.from_error(error)
        self.ctx.recorder.commit(LedgerRecord(
            EventType.FLEET_DIRECTORY_REFUSED, actor_id=SYSTEM, reason_code=error.code, note=error.detail[:500],
            details={"kind": command.kind[:40], "version": command.version},
        ))  # fmt: skip
        return CommandResult.from_error(error)


def _layout_changes(reader: CabinetReader, content: Mapping[str, Any]) -> list[tuple[PocketAssignment, dict[str, Any]]]:
    """Each assignment that changes a pocket, with what the pocket was; raises naming the first pocket that may
    not change (the layout is applied whole or not at all)."""
    assignments = parse_layout(content, source="the central's layout")
    pockets = {p.pocket_id: p for p in reader.pockets()}
    unknown = sorted(a.pocket_id for a in assignments if a.pocket_id not in pockets)
    if unknown:
        raise ConfigurationError("fleet.layout_refused", f"this cabinet has no pocket {', '.join(unknown)}",
                                 pockets=unknown)  # fmt: skip
    missing = reader.missing_items(sorted({a.item_id for a in assignments if a.item_id}))
    if missing:
        raise ConfigurationError("fleet.layout_refused", f"not in this cabinet's formulary: {', '.join(missing)}",
                                 items=missing)  # fmt: skip
    busy = {entry.pocket_id for entry in reader.live_journal() if entry.pocket_id}
    discrepant = {d.pocket_id for d in reader.live_discrepancies()}
    changes: list[tuple[PocketAssignment, dict[str, Any]]] = []
    for assignment in assignments:
        pocket = pockets[assignment.pocket_id]
        before = {"item": pocket.item_id, "par": pocket.par, "min": pocket.min, "max": pocket.max}
        if before == _levels(assignment):
            continue
        if assignment.item_id != pocket.item_id:
            why = (f"it holds {pocket.quantity} of {pocket.item_id}: unload it first" if pocket.quantity
                   else "a workflow is using it" if pocket.pocket_id in busy
                   else "it has an open discrepancy" if pocket.pocket_id in discrepant else None)  # fmt: skip
            if why:
                raise SafetyError("fleet.layout_pocket_busy", f"{pocket.pocket_id} cannot take "
                                  f"{assignment.item_id or 'no item'}: {why}", pocket=pocket.pocket_id)  # fmt: skip
        changes.append((assignment, before))
    return changes


def _levels(assignment: PocketAssignment) -> dict[str, Any]:
    return {"item": assignment.item_id, "par": assignment.par, "min": assignment.min, "max": assignment.max}
