"""Compartments that need a person: accounting for a breached one, and returning a jammed or faulted one to
service.

Responsible for: ``AccountFor`` (a privileged user, after the compartment is closed; a count given with it is
compared with the stock behind the compartment, and a difference is a discrepancy in the same transaction; a
drawer holding several stocked pockets cannot be judged from one number and is counted pocket by pocket with a
count); ``ServiceCompartment`` (the lock is commanded and checked afterwards: one that still does not engage is at
fault again). Both read one fresh snapshot afterwards (``refresh``) so a shut compartment latches.

Not responsible for: the rules (``controller.fsm.compartment``) or the sensor loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from controller.engine.commands.cabinet import AccountFor, CompartmentStep, ServiceCompartment
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Handler
from controller.fsm.base import Decision, Outcome, OutcomeKind
from controller.fsm.compartment import Compartment


class CompartmentHandler(Handler):
    def __init__(self, ctx: EngineContext, refresh: Callable[[], Awaitable[None]]) -> None:
        self.ctx = ctx
        self.refresh = refresh
        ctx.registry.add(self)
        ctx.registry.command(AccountFor, self.account_for)
        ctx.registry.command(ServiceCompartment, self.service)

    def _compartment(self, compartment_id: str) -> Compartment | CommandResult[CompartmentStep]:
        found = self.ctx.compartments.by_id.get(compartment_id)
        if found is None:
            return CommandResult.refuse("engine.unknown_compartment", f"no compartment {compartment_id}",
                                        compartment=compartment_id)  # fmt: skip
        return found

    async def account_for(self, command: AccountFor) -> CommandResult[CompartmentStep]:
        compartment = self._compartment(command.compartment_id)
        if isinstance(compartment, CommandResult):
            return compartment
        user = self.ctx.user()
        decision = compartment.accounted_for(now=self.ctx.now(), user=user, counted=command.counted)
        extra: list[Outcome] = []
        if decision.accepted and command.counted is not None:
            extra = self._count_mismatch(compartment, user.id, command.counted)
        sealed = self.ctx.recorder.commit(decision, *extra)
        if decision.accepted:
            await self.refresh()  # it latches if it is shut
        return self._result(decision, sealed, compartment)

    def _count_mismatch(self, compartment: Compartment, user_id: str, counted: int) -> list[Outcome]:
        """The count given when accounting for a breached compartment, against the stock behind it (blind: the
        expected number is only in the entry)."""
        pockets = self.ctx.topology.pockets_behind(compartment.id)
        if len(pockets) != 1:
            return []
        pocket_id = pockets[0]
        with self.ctx.store.read() as reader:
            expected = reader.on_hand(pocket_id)
        if expected == counted:
            return []
        return [Outcome(OutcomeKind.DISCREPANCY_RAISED, self.ctx.now(), actor_id=user_id,
                        item_id=self.ctx.topology.slots[pocket_id].item_id, pocket_id=pocket_id,
                        quantity_expected=expected, quantity_actual=counted, reason_code="accounted_count_mismatch",
                        details={"compartment_id": compartment.id})]  # fmt: skip

    async def service(self, command: ServiceCompartment) -> CommandResult[CompartmentStep]:
        compartment = self._compartment(command.compartment_id)
        if isinstance(compartment, CommandResult):
            return compartment
        decision = compartment.service_reset(now=self.ctx.now(), user=self.ctx.user())
        sealed = self.ctx.recorder.commit(decision)
        if decision.accepted:
            await self.refresh()  # shut and latched: locked; shut but not latched: the lock is commanded and checked
        return self._result(decision, sealed, compartment)

    def _result(self, decision: Decision, sealed: list, compartment: Compartment) -> CommandResult[CompartmentStep]:  # type: ignore[type-arg]
        payload = CompartmentStep(decision.state.value, compartment.state.value, seqs(sealed))
        if decision.refused:
            assert decision.refusal is not None
            return CommandResult.refused(decision.refusal, payload)
        return CommandResult.done(payload)
