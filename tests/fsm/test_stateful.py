"""Random sequences of logins, pull steps, sensor edges (including unexpected opens) and ticks over the session,
compartment and pull machines, driven the way the engine will drive them. After every step:

- no compartment is open (authorised) unless the unlock was granted to the session and user active when it
  opened; any other opening is a breach with a tamper outcome;
- a controlled-substance pull never reaches done without a blind count when one is required;
- a done pull's removal outcome names the actor (and the witness when one is required).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from controller.domain.medication import DeaSchedule
from controller.domain.policies import Policy
from controller.fsm.base import Decision, OutcomeKind, WitnessSignature
from controller.fsm.compartment import Compartments, CompartmentState, SensorReading
from controller.fsm.session import Sessions
from controller.fsm.settings import FsmSettings
from controller.fsm.workflows.pull import REMOVAL_WITNESS, Pull, PullItem, Pulls, PullState

from .helpers import CEFAZOLIN, MORPHINE, NURSE, NURSE2, T0, order, pin, wrong_pin

COMPARTMENT = "D1-P1"


class CabinetMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now: datetime = T0
        self.settings = FsmSettings(removal_witness_schedules=frozenset({DeaSchedule.II}))
        self.session = Sessions().new("CAB", settings=self.settings)
        self.compartments = Compartments(self.settings)
        self.compartment = self.compartments.add(COMPARTMENT)
        assert self.compartment.restore(now=self.now, sensors=SensorReading(False, True)).accepted
        self.pulls = Pulls(Policy(), self.settings)
        self.pull: Pull | None = None
        self.serial = 0
        self.decisions: list[Decision] = []

    def step(self, decision: Decision) -> Decision:
        self.decisions.append(decision)
        if decision.refused:
            assert decision.refusal is not None and decision.state is decision.state_before
        return decision

    # --- people ---------------------------------------------------------------------------------------------

    @rule(who=st.sampled_from([NURSE, NURSE2]), right=st.booleans())
    def login(self, who: object, right: bool) -> None:
        creds = pin(who) if right else wrong_pin(who)  # type: ignore[arg-type]
        self.step(self.session.login(now=self.now, credentials=creds))

    @rule()
    def logout(self) -> None:
        self.step(self.session.logout(now=self.now))

    @rule(seconds=st.sampled_from([1, 10, 35, 55, 65]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        self.step(self.session.tick(now=self.now))
        self.step(self.compartment.tick(now=self.now))

    # --- the pull, as the engine drives it ------------------------------------------------------------------

    @precondition(lambda self: self.session.is_active and (self.pull is None or self.pull.is_finished))
    @rule(controlled=st.booleans(), expected=st.integers(0, 5))
    def start_pull(self, controlled: bool, expected: int) -> None:
        assert self.session.user is not None
        self.serial += 1
        self.pull = self.pulls.start(f"PULL-{self.serial}", actor=self.session.user, session_id=self.session.session_id)
        self.step(self.pull.select_patient(now=self.now, patient_id="MRN-1"))
        med = MORPHINE if controlled else CEFAZOLIN
        item = PullItem(med, "P-1", COMPARTMENT, expected, True, order=order(f"O{self.serial}", med))
        self.step(self.pull.select_item(now=self.now, item=item))

    @precondition(lambda self: self.pull is not None)
    @rule(count=st.integers(0, 6))
    def count(self, count: int) -> None:
        assert self.pull is not None
        self.step(self.pull.count_entered(now=self.now, count=count))

    @precondition(lambda self: self.pull is not None)
    @rule(by=st.sampled_from(["NURSE2", "NURSE1"]))
    def witness(self, by: str) -> None:
        assert self.pull is not None
        signature = WitnessSignature(by, self.pull.actor.id, REMOVAL_WITNESS, frozenset({"pin"}), self.now, 1)
        self.step(self.pull.witness_signed(now=self.now, signature=signature))

    @precondition(lambda self: self.pull is not None)
    @rule()
    def request_unlock(self) -> None:
        assert self.pull is not None
        if self.step(self.pull.unlock_requested(now=self.now, session=self.session)).accepted:
            assert self.pull.grant is not None
            d = self.step(self.compartment.unlock_requested(now=self.now, session=self.session, grant=self.pull.grant))
            if d.accepted:
                self.step(self.compartment.unlock_confirmed(now=self.now))
            else:
                self.step(self.pull.unlock_failed(now=self.now))

    @precondition(lambda self: self.pull is not None and not self.pull.is_finished)
    @rule(count_right=st.booleans(), witness=st.booleans(), quantity=st.integers(0, 2))
    def engine_runs_the_rest(self, count_right: bool, witness: bool, quantity: int) -> None:
        """The common path in one go (count, witness, unlock, open, take, close), so pulls often finish."""
        assert self.pull is not None and self.pull.item is not None
        expected = self.pull.item.expected_on_hand
        self.count(expected if count_right else expected + 1)
        if witness:
            self.witness("NURSE2")
        self.request_unlock()
        self.door_opens()
        self.take(quantity)
        self.door_closes()

    @rule()
    def door_opens(self) -> None:
        """A person opens the drawer: sometimes as expected, sometimes not (tamper)."""
        d = self.step(self.compartment.opened(now=self.now, session=self.session))
        if d.accepted and d.state is CompartmentState.OPEN and self.pull is not None:
            self.step(self.pull.opened(now=self.now))
        if d.accepted and d.state is CompartmentState.OPEN and d.state_before is not CompartmentState.OPEN:
            # Checked at the opening itself: a repeated sensor edge later (after a logout) is not a new opening.
            grant = self.compartment.grant
            assert grant is not None
            assert self.session.is_active and grant.session_id == self.session.session_id
            assert grant.user_id == self.session.active_user_id
        if d.state is CompartmentState.BREACHED and d.state_before is not CompartmentState.BREACHED:
            assert d.kinds() == (OutcomeKind.TAMPER,)

    @precondition(lambda self: self.pull is not None)
    @rule(quantity=st.integers(0, 3))
    def take(self, quantity: int) -> None:
        assert self.pull is not None
        self.step(self.pull.take(now=self.now, quantity=quantity))

    @rule()
    def door_closes(self) -> None:
        d = self.step(self.compartment.closed(now=self.now))
        if d.accepted and self.pull is not None:
            self.step(self.pull.closed(now=self.now))
        self.step(self.compartment.latched(now=self.now))

    @precondition(lambda self: self.pull is not None)
    @rule()
    def cancel(self) -> None:
        assert self.pull is not None
        was_open = self.pull.state in (PullState.OPEN, PullState.TAKEN, PullState.CLOSED_UNACCOUNTED)
        before_open = self.pull.state in (PullState.STARTED, PullState.PATIENT_SELECTED, PullState.BLIND_COUNT,
                                          PullState.AWAITING_WITNESS, PullState.READY, PullState.UNLOCKING)  # fmt: skip
        d = self.step(self.pull.cancel(now=self.now))
        if was_open:
            assert d.refusal is not None and d.refusal.code == "workflow.cancel_after_open"
        assert d.accepted == before_open

    @rule()
    def account_for_breach(self) -> None:
        from .helpers import PHARM

        self.step(self.compartment.accounted_for(now=self.now, user=PHARM, counted=0))

    # --- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def done_pulls_are_complete(self) -> None:
        for pull in self.pulls.by_id.values():
            if pull.state is not PullState.DONE:
                continue
            assert pull.item is not None
            if pull.blind_count_required:
                assert pull.counted is not None
            removed = [o for d in self.decisions for o in d.outcomes if o.kind is OutcomeKind.DOSE_REMOVED
                       and o.details.get("pull_id") == pull.id]  # fmt: skip
            assert len(removed) == 1
            assert removed[0].actor_id == pull.actor.id
            if pull.witness_required:
                assert removed[0].witness_id is not None and removed[0].witness_id != pull.actor.id
            if pull.item.medication.is_controlled:
                assert pull.blind_count_required and pull.counted is not None

    @invariant()
    def open_compartment_is_authorised_or_breached(self) -> None:
        if self.compartment.state is CompartmentState.OPEN:
            assert self.compartment.grant is not None


TestCabinet = CabinetMachine.TestCase
TestCabinet.settings = settings(
    max_examples=300, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
