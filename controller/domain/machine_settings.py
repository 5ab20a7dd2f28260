"""The numbers and switches of the state machines that ``controller.domain.policies.Policy`` does not hold.

Responsible for: session timing and lockout, compartment limits, and the workflow policy flags, each with the
default DOMAIN.md gives. Not responsible for: loading them (the engine or bootstrap builds one from settings and
passes it in; there is no global instance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from controller.domain.medication import DeaSchedule


@dataclass(frozen=True, slots=True)
class FsmSettings:
    # session
    inactivity_warning: timedelta = timedelta(seconds=50)
    inactivity_logout: timedelta = timedelta(seconds=60)
    max_failed_logins: int = 5
    lockout_duration: timedelta | None = timedelta(minutes=15)  # None: only an administrator can clear a lockout
    min_login_factors: int = 1  # PIN, badge, biometric: how many must verify
    # compartments
    left_open_limit: timedelta = timedelta(seconds=30)
    block_unlocks_while_unaccounted: bool = True  # a breached compartment blocks every new unlock in the cabinet
    # pull
    stop_pull_on_count_mismatch: bool = False  # False: the discrepancy is raised and the pull continues
    open_cs_discrepancy_blocks_pulls: bool = True  # the user with an open CS discrepancy may not pull from it
    removal_witness_schedules: frozenset[DeaSchedule] = field(default=frozenset())  # e.g. {II} to witness CII pulls
    scan_removed_package: bool = False  # True: each removed package is scanned before the quantity is entered
    # return and restock
    return_sealed_to_pocket: bool = False
    short_dated_warning: timedelta = timedelta(days=30)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.inactivity_warning < self.inactivity_logout:
            raise ValueError("the inactivity warning must come before the logout, and both after zero")
        if self.max_failed_logins < 1:
            raise ValueError("max_failed_logins must be at least 1")
        if not 1 <= self.min_login_factors <= 3:
            raise ValueError("min_login_factors must be 1, 2 or 3")
        if self.left_open_limit <= timedelta(0):
            raise ValueError("left_open_limit must be positive")
