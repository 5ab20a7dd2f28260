"""Checking what a person presents at the cabinet (PIN and/or badge) against the stored hashes, for a login or a
witness sign-off alike.

Responsible for: argon2 verification off the event loop (a login never stalls sensor polling or the watchdog
heartbeat), and the same cost for an unknown user or a missing badge, so timing does not reveal which. Not
responsible for what the result allows (``controller.fsm.session`` decides).
"""

from __future__ import annotations

import asyncio
import uuid

from controller.domain.credentials import CredentialHasher
from controller.fsm.session import Credentials, Factor
from controller.store.cabinet_store import CabinetStore


class CredentialCheck:
    def __init__(self, store: CabinetStore, hasher: CredentialHasher) -> None:
        self.store = store
        self.hasher = hasher
        self._dummy_hash: str | None = None

    async def present(self, user_id: str, *, pin: str | None, badge: str | None) -> Credentials:
        with self.store.read() as reader:
            secrets = reader.user_secrets(user_id)
            user = reader.user(user_id)
        verified: set[Factor] = set()
        failed: set[Factor] = set()
        for factor, presented in ((Factor.PIN, pin), (Factor.BADGE, badge)):
            if presented is None:
                continue
            stored = None if secrets is None else (secrets[0] if factor is Factor.PIN else secrets[1])
            ok = await self._verify(stored, presented)
            (verified if ok else failed).add(factor)
        return Credentials(user_id, user, frozenset(verified), frozenset(failed))

    async def _verify(self, stored: str | None, presented: str) -> bool:
        if stored is None:
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self.hasher.hash_secret, uuid.uuid4().hex)
            await asyncio.to_thread(self.hasher.verify, self._dummy_hash, presented)
            return False
        return await asyncio.to_thread(self.hasher.verify, stored, presented)
