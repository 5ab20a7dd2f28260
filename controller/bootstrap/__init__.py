"""The composition root: the one place that turns ``Settings`` into concrete stores (and, later, drivers)."""

from __future__ import annotations

from dataclasses import dataclass

from controller.domain.clock import Clock, SystemClock
from controller.domain.credentials import CredentialHasher, HashCost
from controller.settings import Settings
from controller.store.database import Database
from controller.store.ledger import Ledger


def open_database(settings: Settings, *, create: bool = False) -> Database:
    return Database.open(
        settings.resolved_database_url(),
        create=create,
        sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms,
    )


def credential_hasher(settings: Settings) -> CredentialHasher:
    return CredentialHasher(
        HashCost(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
    )


@dataclass
class StoreContext:
    settings: Settings
    db: Database
    clock: Clock

    def ledger(self, *, is_simulator: bool) -> Ledger:
        return Ledger(self.settings.cabinet_id, self.clock, is_simulator=is_simulator)

    def close(self) -> None:
        self.db.dispose()


def build_store(settings: Settings, *, create: bool = False, clock: Clock | None = None) -> StoreContext:
    return StoreContext(settings=settings, db=open_database(settings, create=create), clock=clock or SystemClock())
