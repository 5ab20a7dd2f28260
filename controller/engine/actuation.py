"""The one path from a grant to an unlocked pocket, and back: grant → journal → unlock → confirm → guide; relock on
every refusal, failure or end of the workflow.

Responsible for: unlocking the compartments guarding a pocket for one workflow (outermost first; one already
released or open for the same session joins instead of being unlocked again), after the workflow's journal row is
durable, so a crash after the unlock leaves a record of who had what released; refusing while a compartment is
breached and not accounted for; relocking what was released when a later compartment of the chain fails; ending a
workflow's grants (``release``): they are revoked in the machines (an opening after that is tamper) and whatever is
still released and unopened is locked again; locking a shut compartment that has not latched (a lock that does
not engage is a fault); the guiding light. Every hardware call is bounded by ``io_timeout_s``.

Not responsible for deciding whether an unlock is allowed (the workflow machines decide before asking) or for
sensor snapshots (``sensing.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from controller.domain.clock import Clock
from controller.engine.recording import JournalWrite, Recorder
from controller.engine.topology import CabinetTopology
from controller.errors import CommunicationError, ConfigurationError, ControllerError, DeviceFaultError
from controller.fsm.base import Decision, Refusal
from controller.fsm.compartment import Compartment, Compartments, CompartmentState, UnlockFailure, UnlockGrant
from controller.fsm.session import Session
from controller.hardware.io_board.interface import Colour, IoBoard
from controller.store.ledger import SealedEntry

C = CompartmentState
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Unlocked:
    """What an unlock did: the compartments released for the workflow (joined ones included), the entries it
    wrote, and why it stopped if it did (a refusal of a rule, or a device error)."""

    compartments: tuple[str, ...] = ()
    sealed: tuple[SealedEntry, ...] = ()
    refusal: Refusal | None = None
    error: ControllerError | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None and self.error is None


@dataclass
class Actuator:
    board: IoBoard
    compartments: Compartments
    topology: CabinetTopology
    session: Callable[[], Session]
    recorder: Recorder
    clock: Clock
    io_timeout_s: float = 2.0
    hold_s: float = 30.0
    # Unlocks and relocks commanded so far: a snapshot read before the latest one is stale (``sensing``).
    actuations: int = field(default=0)

    async def io(self, call: Awaitable[T]) -> T:
        """Every hardware await is bounded; a board that does not answer in time is a communication fault."""
        try:
            async with asyncio.timeout(self.io_timeout_s):
                return await call
        except TimeoutError as exc:
            raise CommunicationError("comm.timeout", f"I/O board gave no answer in {self.io_timeout_s} s") from exc

    # --- unlocking ----------------------------------------------------------------------------------------------

    def blocked(self) -> Refusal | None:
        """The refusal every unlock gets while a compartment is open or breached and not yet accounted for."""
        pending = self.compartments.unaccounted()
        if not pending or not self.compartments.settings.block_unlocks_while_unaccounted:
            return None
        return Refusal(
            "compartment.unaccounted",
            f"close and account for {', '.join(pending)} before anything else is opened",
            {"compartments": pending},
        )

    async def precheck(self, pocket_id: str, workflow_id: str) -> Refusal | None:
        """Why ``pocket_id`` cannot be unlocked now, before anything is asked of the workflow's machine or the board:
        a compartment breached and not accounted for, or one of its chain jammed or at fault."""
        if self.session().active_user_id is None:
            return Refusal("session.not_active", "nobody is logged in at this cabinet")
        blocked = self.blocked()
        if blocked is not None:
            return blocked
        chain = [self.compartments[cid] for cid in self.topology.unlock_chain[pocket_id]]
        for compartment in chain:
            if compartment.state is C.CLOSED:  # shut after an earlier access, latch not yet confirmed
                await self._latch(compartment)
        for compartment in chain:
            if compartment.holds_grant(workflow_id) or compartment.state in (C.LOCKED, C.UNLOCKED, C.OPEN):
                continue
            return Refusal("fsm.event_not_allowed", f"{compartment.id} is {compartment.state.value}; it cannot be "
                           "unlocked now", {"compartment": compartment.id})  # fmt: skip
        return None

    async def unlock(
        self, pocket_id: str, *, workflow_id: str, purpose: str, journal: Sequence[JournalWrite]
    ) -> Unlocked:
        """Release ``pocket_id``'s chain for ``workflow_id`` of the active session. ``journal`` (the workflow's
        row naming these compartments) is made durable before the first latch moves."""
        refusal = await self.precheck(pocket_id, workflow_id)
        if refusal is not None:
            return Unlocked(refusal=refusal)
        session = self.session()
        user_id = session.active_user_id
        assert user_id is not None
        chain = [self.compartments[cid] for cid in self.topology.unlock_chain[pocket_id]]
        sealed = list(self.recorder.commit(journal=journal))
        released: list[str] = []
        for compartment in chain:
            if compartment.holds_grant(workflow_id) and compartment.state in (C.UNLOCKED, C.OPEN):
                released.append(compartment.id)
                continue
            was = compartment.state
            grant = UnlockGrant(session.session_id, user_id, compartment.id, purpose, workflow_id)
            requested = compartment.unlock_requested(now=self.clock.now(), session=session, grant=grant)
            if requested.refused:
                sealed += await self._undo(chain, workflow_id, requested)
                return Unlocked(tuple(released), tuple(sealed), refusal=requested.refusal)
            if was is C.OPEN:  # joined an open drawer: nothing to move
                released.append(compartment.id)
                continue
            error = await self._actuate(compartment)
            if error is not None:
                failed: list[Decision] = []
                if compartment.state is C.UNLOCKING:
                    failed.append(compartment.unlock_failed(now=self.clock.now(), cause=_failure_cause(error)))
                sealed += self.recorder.commit(*failed)
                if not compartment.grants:
                    # The release may have reached the latch (a jammed drawer is released but stuck): command it
                    # shut again, best effort, so nothing stays released with no grant until the hold runs out.
                    await self.lock(compartment)
                sealed += await self._undo(chain, workflow_id)
                return Unlocked(tuple(released), tuple(sealed), error=error)
            if compartment.state is C.UNLOCKING:
                sealed += self.recorder.commit(compartment.unlock_confirmed(now=self.clock.now()))
            released.append(compartment.id)
        await self.guide(pocket_id)
        return Unlocked(tuple(released), tuple(sealed))

    async def _undo(self, chain: Sequence[Compartment], workflow_id: str, *decisions: Decision) -> list[SealedEntry]:
        """Lock again what this unlock released (the safe direction) and revoke its grants."""
        sealed = self.recorder.commit(*decisions)
        return sealed + await self.release(workflow_id, only=[c.id for c in chain])

    # --- ending grants ------------------------------------------------------------------------------------------

    async def release(self, workflow_id: str, *, only: Sequence[str] | None = None) -> list[SealedEntry]:
        """The workflow ended (or its unlock was undone): every grant it holds dies, and a compartment left
        released by nobody is locked again. An open one latches as it is shut (the board does that itself)."""
        decisions: list[Decision] = []
        for compartment in self.compartments.by_id.values():
            if only is not None and compartment.id not in only:
                continue
            if not compartment.holds_grant(workflow_id):
                continue
            decisions.append(compartment.revoke(now=self.clock.now(), workflow_id=workflow_id))
            if compartment.grants or compartment.state is not C.UNLOCKED:
                continue
            if await self.lock(compartment) is None:
                decisions.append(compartment.latched(now=self.clock.now()))
            # A lock that does not answer leaves it released with no grant: opening it now is tamper.
        return self.recorder.commit(*decisions)

    # --- locking ------------------------------------------------------------------------------------------------

    async def _latch(self, compartment: Compartment) -> None:
        """A shut compartment whose latch was not confirmed yet: lock it now (a fault if the lock does not
        engage)."""
        error = await self.lock(compartment)
        if error is None:
            self.recorder.commit(compartment.latched(now=self.clock.now()))
        elif error.code == "device.lock_not_engaged":
            self.recorder.commit(compartment.latch_failed(now=self.clock.now()))

    async def confirm_latched(self, shut_unlatched: Sequence[str]) -> list[SealedEntry]:
        """Compartments shut after use that the sensors do not show latched: command the lock; a board that
        cannot confirm it puts the compartment at fault (an alarm entry) until it is serviced."""
        sealed: list[SealedEntry] = []
        for compartment_id in shut_unlatched:
            compartment = self.compartments[compartment_id]
            if compartment.state is not C.CLOSED:
                continue
            error = await self.lock(compartment)
            if error is None:
                sealed += self.recorder.commit(compartment.latched(now=self.clock.now()))
            elif error.code == "device.lock_not_engaged":
                sealed += self.recorder.commit(compartment.latch_failed(now=self.clock.now()))
        return sealed

    async def lock(self, compartment: Compartment) -> ControllerError | None:
        address = self.topology.address[compartment.id]
        try:
            if address.pocket is None:
                await self.io(self.board.ensure_locked(address.drawer))
            else:
                await self.io(self.board.ensure_lid_locked(address.drawer, address.pocket))
        except (DeviceFaultError, CommunicationError) as error:
            return error
        finally:
            self.actuations += 1
        return None

    async def _actuate(self, compartment: Compartment) -> ControllerError | None:
        address = self.topology.address[compartment.id]
        try:
            if address.pocket is None:
                await self.io(self.board.ensure_unlocked(address.drawer, self.hold_s))
            else:
                await self.io(self.board.ensure_lid_unlocked(address.drawer, address.pocket, self.hold_s))
        except (DeviceFaultError, CommunicationError) as error:
            return error
        except ValueError as error:  # the board has no such latch: the layout and the hardware disagree
            return ConfigurationError(
                "config.invalid",
                f"{compartment.id} maps to {address}, which the I/O board does not have: {error}",
                compartment=compartment.id,
            )
        finally:
            self.actuations += 1
        return None

    async def guide(self, pocket_id: str) -> None:
        """Light the pocket (best effort: a guiding light that fails never blocks a removal)."""
        slot = self.topology.slots[pocket_id]
        with contextlib.suppress(ControllerError, ValueError):
            await self.io(self.board.set_light(slot.drawer_position, slot.position, Colour.GREEN))


def _failure_cause(error: ControllerError) -> UnlockFailure:
    if error.code == "device.drawer_jammed":
        return UnlockFailure.JAMMED
    if isinstance(error, DeviceFaultError):
        return UnlockFailure.LOCK_FAULT
    return UnlockFailure.NO_RESPONSE
