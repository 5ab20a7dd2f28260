"""What each step does on the in-process cabinet: the engine command(s) it runs, or the physical act it asks of the
simulators, or the time, fault, restart or HL7 message it brings.

Every step maps to real engine commands (``CabinetEngine.execute``) and real simulator actions (the control
socket); nothing here decides a rule or writes the store. Commands name their workflow: a step works on the
latest pull, restock, count or fill the scenario started (the ids come back with each result), and a waste or
return on the latest pull. Where a command needs an id the author cannot know in advance (a discrepancy, an
override review, a quarantine, a pending waste), the step finds it the way a person would, through the engine's own
list query. After every step the cabinet reads its sensors once.

Not responsible for: checking expectations (``expectations``), or building the cabinet (``simulated_cabinet``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from controller.domain.policies import OverrideReason, OverrideReviewOutcome
from controller.domain.quarantine import QuarantineDecision
from controller.engine.commands.cabinet import AccountFor, SetCriticalOverride
from controller.engine.commands.clinical import (
    BeginWitness,
    CancelReturn,
    CancelWitness,
    ConfirmReturn,
    DeferWaste,
    ListDiscrepancies,
    ListOverrideReviews,
    ListPendingWastes,
    ResolveDiscrepancy,
    ReturnDose,
    ReviewDiscrepancy,
    ReviewOverride,
    SignWitness,
    WasteDose,
    WitnessFor,
)
from controller.engine.commands.pharmacy import (
    CancelFill,
    CancelRestock,
    CountBack,
    EnterPocketCount,
    FinishRestock,
    ListQuarantines,
    RecallLot,
    ReviewQuarantine,
    ScanPackage,
    SecondCount,
    ShowPickList,
    SignRestockWitness,
    StartCount,
    StartFill,
    StartRestock,
    StopCount,
    UnlockCountPocket,
)
from controller.engine.commands.pull import (
    CancelPull,
    EnterCount,
    ScanRemoved,
    SearchMedications,
    SelectItem,
    StartPull,
    Take,
)
from controller.engine.commands.session import Login, Logout
from controller.engine.results import CommandResult
from controller.errors import SafetyError
from controller.fsm.workflows.count import CountKind
from controller.fsm.workflows.restock import RestockKind
from controller.scenarios.model import Step
from controller.scenarios.outcome import Outcome
from controller.scenarios.packages import barcode_of
from controller.scenarios.simulated_cabinet import PhysicalActRefused, SimulatedCabinet, board_numbers
from controller.scenarios.values import parse_duration, parse_instant
from simulators.common.faults import FaultKind

COUNT_KINDS = {"shift_change": CountKind.SHIFT_CHANGE, "cycle": CountKind.CYCLE}
RETURN_TO = {"return_bin": "return_bin", "pocket": "original_pocket"}
LISTS: Mapping[str, Any] = {
    "pending_wastes": ListPendingWastes,
    "discrepancies": ListDiscrepancies,
    "override_reviews": ListOverrideReviews,
    "quarantines": ListQuarantines,
    "pick_list": ShowPickList,
}
# Steps that act as the logged-in user: a step's ``actor`` must be that user.
SESSION_FREE = frozenset(
    {
        "login",
        "witness",
        "restock_witness",
        "open",
        "close",
        "lift_lid",
        "close_lid",
        "present",
        "pour",
        "vial_back",
        "fridge",
        "act",
        "advance",
        "fault",
        "repair",
        "restart",
        "hl7",
    }
)


@dataclass
class LocalSteps:
    cabinet: SimulatedCabinet
    targets: dict[str, str] = field(default_factory=dict)  # workflow kind -> the latest id of that kind seen

    async def perform(self, step: Step) -> Outcome:
        if step.action is None:  # a step that only checks: the cabinet has looked at the world once more
            await self.cabinet.settle()
            return Outcome(True, commands=("check",))
        mismatch = await self._actor_mismatch(step)
        if mismatch is not None:
            return mismatch
        try:
            outcome = await _HANDLERS[step.action](self, step.value)
        except PhysicalActRefused as refused:
            outcome = Outcome.impossible_act(str(refused))
        self._remember_targets(outcome.data)
        await self.cabinet.settle()
        return outcome

    async def _actor_mismatch(self, step: Step) -> Outcome | None:
        if step.actor is None or step.action in SESSION_FREE:
            return None
        who = await self.cabinet.logged_in()
        if who == step.actor:
            return None
        return Outcome.cannot_run(f"the step's actor is {step.actor}, but {who or 'nobody'} is logged in")

    def _remember_targets(self, data: Mapping[str, Any]) -> None:
        for kind, key in (("waste", "waste_id"), ("return", "return_id"), ("discrepancy", "discrepancy_id"),
                          ("pull", "pull_id"), ("restock", "restock_id"), ("count", "count_id"),
                          ("fill", "fill_id")):  # fmt: skip
            found = data.get(key)
            nested = data.get(kind if kind != "return" else "ret")
            if found is None and isinstance(nested, Mapping):
                found = nested.get(key)
            if isinstance(found, str | int):
                self.targets[kind] = str(found)

    # --- helpers ------------------------------------------------------------------------------------------------

    async def run(self, *commands: Any) -> Outcome:
        """Run commands in order, stopping at the first refusal; the outcome is the last one run. A command given
        as a function of the previous result's data gets it (the second step of a pull needs the pull's id)."""
        result: CommandResult[Any] | None = None
        names = []
        for given in commands:
            command = given(result.data if result is not None else {}) if callable(given) else given
            names.append(type(command).__name__)
            result = await self.cabinet.engine.execute(command)
            self._remember_targets(result.data)
            if not result.ok:
                break
        assert result is not None
        return Outcome.of(result, tuple(names))

    def _target(self, kind: str) -> str:
        """The id of the latest workflow of ``kind`` this scenario started ("" when none: the engine refuses)."""
        return self.targets.get(kind, "")

    def _credentials(self, value: Any) -> tuple[str, str | None, str | None]:
        if isinstance(value, Mapping):
            user = str(value["user"])
            pin = value.get("pin")
            badge = value.get("badge")
            if pin is None and badge is None:
                pin = self.cabinet.scenario.pin_of(user)
            return user, None if pin is None else str(pin), badge
        return str(value), self.cabinet.scenario.pin_of(str(value)), None

    async def _present(self, package: Mapping[str, Any]) -> None:
        text, symbology = barcode_of(package, self.cabinet.index)
        await self.cabinet.act("scanner", "present", barcode_text=text, symbology=symbology)

    async def _listed(self, query: Any, key: str) -> list[dict[str, Any]] | Outcome:
        """What a list shows to the logged-in user, or why it cannot be read (nobody logged in) as the outcome."""
        if await self.cabinet.logged_in() is None:
            return Outcome.refused("session.not_active", "nobody is logged in at this cabinet", (type(query).__name__,))
        result = self.cabinet.engine.query(query)
        if not result.ok:
            return Outcome.of(result, (type(query).__name__,))
        return list(result.data.get(key, []))

    # --- session ------------------------------------------------------------------------------------------------

    async def login(self, value: Any) -> Outcome:
        user, pin, badge = self._credentials(value)
        return await self.run(Login(user, pin=pin, badge=badge))

    async def logout(self, _value: Any) -> Outcome:
        return await self.run(Logout())

    async def search(self, query: str) -> Outcome:
        """What the drug search route does: the policy's rule over the formulary, for a logged-in user."""
        if await self.cabinet.logged_in() is None:
            return Outcome.refused("session.not_active", "nobody is logged in at this cabinet", ("search",))
        try:
            found = self.cabinet.engine.query(SearchMedications(query)).unwrap()
        except SafetyError as error:
            return Outcome.refused(error.code, error.detail, ("search",))
        matches = [m.id for m, _ in found.matches]
        return Outcome(
            True,
            data={
                "unique": found.unique,
                "matches": matches,
                "count": len(matches),
                "stocked": [m.id for m, pockets in found.matches if pockets],
            },
            commands=("search",),
        )

    # --- pull ---------------------------------------------------------------------------------------------------

    async def pull(self, value: Mapping[str, Any]) -> Outcome:
        return await self.run(
            StartPull(str(value["patient"])), lambda data: _select(str(data["pull"]["pull_id"]), value)
        )

    async def start_pull(self, patient: str) -> Outcome:
        return await self.run(StartPull(patient))

    async def select(self, value: Mapping[str, Any]) -> Outcome:
        return await self.run(_select(self._target("pull"), value))

    async def count(self, value: int) -> Outcome:
        return await self.run(EnterCount(self._target("pull"), value))

    async def scan_removed(self, package: Mapping[str, Any]) -> Outcome:
        await self._present(package)
        return await self.run(ScanRemoved(self._target("pull")))

    async def take(self, value: int) -> Outcome:
        return await self.run(Take(self._target("pull"), value))

    async def cancel_pull(self, _value: Any) -> Outcome:
        return await self.run(CancelPull(self._target("pull")))

    async def account_for(self, value: Mapping[str, Any]) -> Outcome:
        return await self.run(AccountFor(str(value["compartment"]), value.get("counted")))

    # --- witness, waste, return ---------------------------------------------------------------------------------

    async def witness(self, value: Any) -> Outcome:
        user, pin, badge = self._credentials(value)
        return await self.run(SignWitness(user, pin=pin, badge=badge))

    async def begin_witness(self, kind: str) -> Outcome:
        return await self.run(BeginWitness(WitnessFor(kind), self._target(kind)))

    async def cancel_witness(self, _value: Any) -> Outcome:
        return await self.run(CancelWitness())

    async def waste(self, value: Mapping[str, Any]) -> Outcome:
        waste_id = None
        if value.get("pending"):
            user = await self.cabinet.logged_in()
            pending = await self._listed(ListPendingWastes(user or ""), "wastes")
            if isinstance(pending, Outcome):
                return pending
            if not pending:
                return Outcome.refused("engine.unknown_waste", "the user's pending-waste list is empty", ("waste",))
            waste_id = str(pending[0]["waste_id"])
        amount = Decimal(str(value["amount"]))
        pull_id = None if waste_id is not None else self._target("pull")
        command = WasteDose(amount, str(value["unit"]), value.get("reason"), value.get("note"), pull_id=pull_id,
                            waste_id=waste_id)  # fmt: skip
        return await self.run(command)

    async def defer_waste(self, _value: Any) -> Outcome:
        return await self.run(DeferWaste(self._target("pull")))

    async def return_(self, value: Mapping[str, Any]) -> Outcome:
        destination = RETURN_TO[str(value.get("to", "return_bin"))]
        return await self.run(
            ReturnDose(
                self._target("pull"), int(value["quantity"]), destination=destination, sealed=bool(value.get("sealed"))
            )
        )

    async def confirm_return(self, _value: Any) -> Outcome:
        return await self.run(ConfirmReturn(self.targets.get("return", "")))

    async def cancel_return(self, _value: Any) -> Outcome:
        return await self.run(CancelReturn(self.targets.get("return", "")))

    # --- discrepancies, overrides -------------------------------------------------------------------------------

    async def _discrepancy_on(self, pocket: str, states: tuple[str, ...]) -> str | Outcome | None:
        listed = await self._listed(ListDiscrepancies(), "discrepancies")
        if isinstance(listed, Outcome):
            return listed
        found = [d for d in listed if d["pocket_id"] == pocket and d["state"] in states]
        return str(found[-1]["discrepancy_id"]) if found else None

    async def resolve_discrepancy(self, value: Mapping[str, Any]) -> Outcome:
        found = await self._discrepancy_on(str(value["pocket"]), ("open", "escalated"))
        if isinstance(found, Outcome):
            return found
        if found is None:
            return Outcome.refused("engine.unknown_discrepancy", f"no open discrepancy on {value['pocket']}")
        return await self.run(ResolveDiscrepancy(found, value.get("reason"), value.get("note")))

    async def review_discrepancy(self, value: Mapping[str, Any]) -> Outcome:
        found = await self._discrepancy_on(str(value["pocket"]), ("resolved",))
        if isinstance(found, Outcome):
            return found
        if found is None:
            return Outcome.refused("engine.unknown_discrepancy", f"no resolved discrepancy on {value['pocket']}")
        return await self.run(ReviewDiscrepancy(found, value.get("note")))

    async def review_override(self, value: Mapping[str, Any]) -> Outcome:
        reviews = await self._listed(ListOverrideReviews(), "reviews")
        if isinstance(reviews, Outcome):
            return reviews
        chosen = [
            r
            for r in reviews
            if r["user_id"] == value.get("user", r["user_id"]) and r["item_id"] == value.get("item", r["item_id"])
        ]
        if not chosen:
            return Outcome.refused("engine.no_workflow", "no override removal matching the step waits for review")
        outcome = OverrideReviewOutcome(str(value["outcome"]))
        return await self.run(ReviewOverride(int(chosen[0]["review_id"]), outcome, value.get("note")))

    async def critical_override(self, value: Mapping[str, Any]) -> Outcome:
        return await self.run(SetCriticalOverride(bool(value["enabled"]), str(value.get("reason", ""))))

    # --- restock, counts, quarantine, fills ---------------------------------------------------------------------

    async def restock(self, value: Mapping[str, Any]) -> Outcome:
        kind = RestockKind(str(value.get("kind", "restock")))
        command = StartRestock(
            str(value["pocket"]), kind=kind, quantity=value.get("quantity"), source=value.get("source")
        )
        return await self.run(command)

    async def count_back(self, value: int) -> Outcome:
        return await self.run(CountBack(self._target("restock"), value))

    async def scan_package(self, package: Mapping[str, Any]) -> Outcome:
        await self._present(package)
        return await self.run(ScanPackage(self._target("restock"), units=int(package.get("units", 1))))

    async def finish_restock(self, _value: Any) -> Outcome:
        return await self.run(FinishRestock(self._target("restock")))

    async def cancel_restock(self, _value: Any) -> Outcome:
        return await self.run(CancelRestock(self._target("restock")))

    async def restock_witness(self, value: Any) -> Outcome:
        user, pin, badge = self._credentials(value)
        return await self.run(SignRestockWitness(self._target("restock"), user, pin=pin, badge=badge))

    async def start_count(self, value: Mapping[str, Any]) -> Outcome:
        pockets = value.get("pockets")
        kind = COUNT_KINDS[str(value.get("kind", "shift_change"))]
        return await self.run(StartCount(kind, tuple(pockets) if pockets else None))

    async def pocket_count(self, value: Mapping[str, Any]) -> Outcome:
        return await self.run(EnterPocketCount(self._target("count"), str(value["pocket"]), int(value["count"])))

    async def unlock_count_pocket(self, _value: Any) -> Outcome:
        return await self.run(UnlockCountPocket(self._target("count")))

    async def stop_count(self, _value: Any) -> Outcome:
        return await self.run(StopCount(self._target("count")))

    async def recall(self, value: Mapping[str, Any]) -> Outcome:
        ndc = str(value["ndc"]) if "ndc" in value else self.cabinet.index.ndc_of(str(value["item"]))
        return await self.run(RecallLot(ndc, str(value["lot"]), str(value.get("reason", "recall"))))

    async def review_quarantine(self, value: Mapping[str, Any]) -> Outcome:
        holds = await self._listed(ListQuarantines(), "quarantines")
        if isinstance(holds, Outcome):
            return holds
        chosen = [
            h
            for h in holds
            if h["lot"] == value["lot"]
            and value.get("pocket", h["pocket_id"]) == h["pocket_id"]
            and h["state"] == "awaiting_review"
        ]
        if not chosen:
            return Outcome.refused("engine.unknown_quarantine", f"no quarantined lot {value['lot']} awaits review")
        decision = QuarantineDecision(str(value["decision"]))
        command = ReviewQuarantine(int(chosen[0]["quarantine_id"]), decision, value.get("reason"), value.get("note"))
        return await self.run(command)

    async def list_(self, kind: str) -> Outcome:
        query = LISTS[kind]
        user = await self.cabinet.logged_in()
        if user is None:
            return Outcome.refused("session.not_active", "nobody is logged in at this cabinet", (query.__name__,))
        result = self.cabinet.engine.query(query(user) if query is ListPendingWastes else query())
        return Outcome.of(result, (query.__name__,))

    async def fill(self, value: Mapping[str, Any]) -> Outcome:
        if "bottle" in value:
            await self._present(value["bottle"])
        command = StartFill(
            str(value["item"]), int(value["quantity"]), str(value["rx"]), str(value["label"]), value.get("canister")
        )
        return await self.run(command)

    async def second_count(self, _value: Any) -> Outcome:
        return await self.run(SecondCount(self._target("fill")))

    async def cancel_fill(self, _value: Any) -> Outcome:
        return await self.run(CancelFill(self._target("fill")))

    # --- the physical world -------------------------------------------------------------------------------------

    async def _board(self, action: str, compartment: str) -> Outcome:
        numbers = board_numbers(self.cabinet.index, compartment)
        await self.cabinet.act("io_board", action, **numbers)
        return Outcome.physical(f"io_board.{action}", numbers)

    async def open(self, drawer: str) -> Outcome:
        return await self._board("open_drawer", drawer)

    async def close(self, drawer: str) -> Outcome:
        return await self._board("close_drawer", drawer)

    async def lift_lid(self, pocket: str) -> Outcome:
        return await self._board("lift_lid", pocket)

    async def close_lid(self, pocket: str) -> Outcome:
        return await self._board("close_lid", pocket)

    async def present(self, package: Mapping[str, Any]) -> Outcome:
        await self._present(package)
        return Outcome.physical("scanner.present", {})

    async def pour(self, tablets: int) -> Outcome:
        hopper = await self.cabinet.act("pill_counter", "pour", n=tablets)
        return Outcome.physical("pill_counter.pour", {"hopper": hopper})

    async def vial_back(self, _value: Any) -> Outcome:
        """The vial is poured back into the hopper (for a schedule II second count)."""
        content = await self.cabinet.act("pill_counter", "remove_vial")
        hopper = await self.cabinet.act("pill_counter", "pour", n=content)
        return Outcome.physical("pill_counter.remove_vial+pour", {"vial": content, "hopper": hopper})

    async def fridge(self, value: Mapping[str, Any]) -> Outcome:
        if "temperature" in value:
            await self.cabinet.act("io_board", "set_fridge_temperature", celsius=float(value["temperature"]))
        elif "warm" in value:
            await self.cabinet.act("io_board", "warm_fridge", degrees_per_minute=float(value["warm"]))
        else:
            await self.cabinet.act("io_board", "cool_fridge")
        return Outcome.physical("io_board.fridge", dict(value))

    async def act(self, value: Mapping[str, Any]) -> Outcome:
        result = await self.cabinet.act(str(value["device"]), str(value["action"]), **dict(value.get("args") or {}))
        return Outcome.physical(f"{value['device']}.{value['action']}", {"result": result})

    # --- time, faults, restarts, HL7 ----------------------------------------------------------------------------

    async def advance(self, value: Any) -> Outcome:
        if isinstance(value, Mapping):
            passed = await self.cabinet.advance_to(parse_instant(str(value["to"])))
        else:
            passed = parse_duration(value)
            await self.cabinet.advance(passed)
        data = {"now": self.cabinet.clock.now().isoformat(), "advanced_s": int(passed.total_seconds())}
        return Outcome(True, data=data, commands=("advance",))

    async def fault(self, value: Mapping[str, Any]) -> Outcome:
        c = self.cabinet
        if "jam" in value:
            await c.act("io_board", "jam_drawer", **board_numbers(c.index, str(value["jam"])))
        elif "stuck_sensor" in value:
            numbers = board_numbers(c.index, str(value["stuck_sensor"]))
            await c.act("io_board", "stick_sensor", sensor=str(value["sensor"]), value=bool(value["value"]), **numbers)
        elif "lock_fails" in value:
            await c.act("io_board", "fail_lock", **board_numbers(c.index, str(value["lock_fails"])))
        elif "miscount" in value:
            c.add_fault("pill_counter", FaultKind.MISCOUNT, by=int(value["miscount"]))
        elif "power_loss" in value:
            await c.act("io_board", "reboot")  # the board restarts: everything relocked, its volatile state lost
            await c.restart_controller()  # and the controller beside it starts again on the same store
        elif "link_down" in value:
            c.add_fault(str(value["link_down"]), FaultKind.DROP_RESPONSE)
        elif "paper_out" in value:
            await c.act("label_printer", "run_out_of_paper")
        return Outcome.physical("fault", dict(value))

    async def repair(self, value: Mapping[str, Any]) -> Outcome:
        c = self.cabinet
        if "jam" in value:
            await c.act("io_board", "clear_jam", **board_numbers(c.index, str(value["jam"])))
        elif "sensor" in value:
            await c.act("io_board", "unstick_sensors", **board_numbers(c.index, str(value["sensor"])))
        elif "lock" in value:
            await c.act("io_board", "repair_lock", **board_numbers(c.index, str(value["lock"])))
        elif "link" in value:
            c.clear_fault(str(value["link"]), FaultKind.DROP_RESPONSE)
        elif "paper" in value:
            await c.act("label_printer", "load_paper")
        return Outcome.physical("repair", dict(value))

    async def restart(self, _value: Any) -> Outcome:
        await self.cabinet.restart_controller()
        restored = self.cabinet.loop.health.restored
        data = dict(restored.data) if restored is not None else {}
        if restored is not None and not restored.ok:
            return Outcome.of(restored, ("restart",))
        return Outcome(True, data=data, commands=("restart",))

    async def hl7(self, message: str) -> Outcome:
        answer = await self.cabinet.send_hl7(message)
        data = {"ack": answer.code, "error": answer.error}
        if answer.code == "AA":
            return Outcome(True, data=data, commands=("hl7",))
        return Outcome(
            False,
            code=answer.error or "hl7.unparseable",
            detail=f"ACK {answer.code}: {answer.text!r}",
            data=data,
            commands=("hl7",),
        )


def _select(pull_id: str, value: Mapping[str, Any]) -> SelectItem:
    override = value.get("override")
    return SelectItem(
        pull_id,
        order_id=value.get("order"),
        item_id=value.get("item"),
        override_reason=OverrideReason(override) if override else None,
        pocket_id=value.get("pocket"),
        acknowledge_allergies=bool(value.get("acknowledge_allergies", False)),
    )


Handler = Callable[[LocalSteps, Any], Awaitable[Outcome]]
_HANDLERS: dict[str, Handler] = {
    name: getattr(LocalSteps, name)
    for name in (
        "login",
        "logout",
        "search",
        "pull",
        "start_pull",
        "select",
        "count",
        "scan_removed",
        "take",
        "cancel_pull",
        "account_for",
        "witness",
        "begin_witness",
        "cancel_witness",
        "waste",
        "defer_waste",
        "confirm_return",
        "cancel_return",
        "resolve_discrepancy",
        "review_discrepancy",
        "review_override",
        "critical_override",
        "restock",
        "count_back",
        "scan_package",
        "finish_restock",
        "cancel_restock",
        "restock_witness",
        "start_count",
        "pocket_count",
        "unlock_count_pocket",
        "stop_count",
        "recall",
        "review_quarantine",
        "fill",
        "second_count",
        "cancel_fill",
        "open",
        "close",
        "lift_lid",
        "close_lid",
        "present",
        "pour",
        "vial_back",
        "fridge",
        "act",
        "advance",
        "fault",
        "repair",
        "restart",
        "hl7",
    )
}
_HANDLERS["return"] = LocalSteps.return_
_HANDLERS["list"] = LocalSteps.list_
LOCAL_ACTIONS = frozenset(_HANDLERS)
