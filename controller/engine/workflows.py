"""What every workflow handler offers the rest of the engine, besides its commands: how it reacts to its
compartments moving, to its session ending, to time passing, and to a restart that found it in the journal.

A ``Reaction`` is what such a hook decided: the machines' decisions (to be recorded), the journal rows to write
or end, and the workflows whose grants die (the actuator relocks after the transaction commits). The engine
gathers the reactions of one snapshot, tick or session end and records them in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from controller.engine.recording import Deposit, JournalWrite
from controller.fsm.base import Decision
from controller.store.cabinet_store import JournalEntry
from controller.store.ledger import SealedEntry


class JournalKind(StrEnum):
    """The kind of a workflow's journal rows, one per handler; named here so a handler can recognise another's
    rows (a waste waits while its pull is being returned) without importing it."""

    PULL = "pull"
    WASTE = "waste"
    RETURN = "return"
    RESTOCK = "restock"
    COUNT = "count"
    FILL = "fill"
    RESOLUTION = "resolution"


class CompartmentEventKind(StrEnum):
    OPENED = "opened"  # opened by the grant holder
    CLOSED = "closed"  # shut again after being opened
    OPENED_AND_CLOSED = "opened_and_closed"  # both between two reads (the board's opening counter saw it)
    EXPIRED = "expired"  # the hold ran out before anyone opened it: locked again
    TAMPERED = "tampered"  # opened by someone who held no live grant: the grants on it are gone


@dataclass(frozen=True, slots=True)
class CompartmentEvent:
    kind: CompartmentEventKind
    compartment_id: str


@dataclass
class Reaction:
    decisions: list[Decision] = field(default_factory=list)
    journal: list[JournalWrite] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)  # workflow ids whose grants die once this is recorded
    deposit: Deposit | None = None
    # Entries a handler had to commit itself, each with its own rows (a waste's pending row, a discrepancy's
    # status); reported with the rest so a caller's count of what was recorded is whole.
    recorded: list[SealedEntry] = field(default_factory=list)

    def merge(self, other: Reaction) -> Reaction:
        self.decisions.extend(other.decisions)
        self.journal.extend(other.journal)
        self.ended.extend(other.ended)
        self.recorded.extend(other.recorded)
        if other.deposit is not None:
            assert self.deposit is None, "one deposit per transaction"
            self.deposit = other.deposit
        return self

    def __bool__(self) -> bool:
        return bool(self.decisions or self.journal or self.ended or self.recorded)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the I/O board says about a journaled workflow's compartments after a restart: per compartment, the
    openings it counted that nobody recorded (None: a version 1 board, which cannot tell)."""

    unrecorded_openings: Mapping[str, int | None]

    def may_have_opened(self, compartments: tuple[str, ...]) -> bool:
        return any(self.unrecorded_openings.get(c) != 0 for c in compartments)


class Handler:
    """Base of every workflow handler; each hook does nothing unless the handler overrides it."""

    journal_kinds: frozenset[str] = frozenset()  # the journal rows this handler recovers after a restart

    def owns(self, workflow_id: str) -> bool:
        return False

    def on_compartment(self, workflow_id: str, event: CompartmentEvent, now: datetime) -> Reaction:
        return Reaction()

    def on_session_ended(self, session_id: int, reason: str, now: datetime) -> Reaction:
        return Reaction()

    def on_tick(self, now: datetime) -> Reaction:
        return Reaction()

    def recover(self, entry: JournalEntry, evidence: Evidence, now: datetime) -> Reaction:
        return Reaction()

    def released_at_stop(self, entry: JournalEntry) -> tuple[str, ...]:
        """The compartments of ``entry`` whose latches may have been released when the controller stopped: an
        opening counted meanwhile on any other compartment it names was forced (tamper). By default all of them."""
        return entry.compartments

    def on_restore(self, now: datetime) -> Reaction:
        """After a (re)start, once the compartments are restored: working state the handler keeps itself."""
        return Reaction()

    def live_views(self) -> list[dict[str, object]]:
        """The workflows in progress, for status pages."""
        return []

    def pending_for(self, user_id: str) -> list[dict[str, object]]:
        """``user_id``'s actions of this kind waiting for a witness (the user's pending work)."""
        return []
