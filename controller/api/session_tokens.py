"""Cabinet session tokens: what a person at the touchscreen holds after logging in.

Opaque random strings (256 bits), kept only as SHA-256 digests in memory: a restart ends every session anyway (the
engine's session does not survive one). A token is bound to the cabinet and to the engine's session id, so it dies
with that session: logout, inactivity logoff, or someone else logging in. It also has an absolute lifetime.
Not responsible for checking credentials (the engine's ``Login``) or privileges (``access.py``).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CabinetToken:
    user_id: str
    cabinet_id: str
    session_id: int
    expires_at: float  # time.time()


class SessionTokens:
    def __init__(self, *, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._by_digest: dict[str, CabinetToken] = {}

    def issue(self, *, user_id: str, cabinet_id: str, session_id: int) -> tuple[str, CabinetToken]:
        token = secrets.token_urlsafe(32)
        record = CabinetToken(user_id, cabinet_id, session_id, time.time() + self.max_age_s)
        # A login means every earlier session has ended (the engine allows one at a time): their tokens go.
        self._by_digest.clear()
        self._by_digest[_digest(token)] = record
        return token, record

    def find(self, token: str) -> CabinetToken | None:
        return self._by_digest.get(_digest(token))

    def revoke(self, token: str) -> None:
        self._by_digest.pop(_digest(token), None)

    def revoke_session(self, session_id: int) -> None:
        for digest in [d for d, record in self._by_digest.items() if record.session_id == session_id]:
            del self._by_digest[digest]

    def __len__(self) -> int:
        return len(self._by_digest)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
