"""Signing in to the central console with the hospital directory's user id and PIN (argon2id hashes only).

Responsible for: verifying the PIN (the same cost for an unknown user, so a probe cannot tell ids apart), the
lockout after ``max_failures`` wrong PINs in a row (counted from the sign-in record, so a restart forgives
nothing), console tokens that end after ``idle_s`` without a call, and checking at every call that the user is
still active, unexpired and holds a console privilege (a user disabled in the directory loses the console at
their next click, not at their next sign-in). Every outcome is written to the sign-in record.

Unlike the cabinet, the console's sessions are independent of each other: several pharmacists may be signed in at
once, from several desks.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.api.problems import ApiError
from controller.domain.clock import Clock
from controller.domain.credentials import CredentialHasher
from controller.domain.users import Privilege, User
from controller.store import repositories as repo
from controller.store.central import console as record
from controller.store.database import Database

CONSOLE_PRIVILEGES = frozenset({Privilege.RESTOCK, Privilege.REVIEW, Privilege.ADMINISTER})


@dataclass(frozen=True)
class SignInRules:
    max_failures: int = 5  # policy.toml [session] max_failed_logins
    lockout: timedelta = timedelta(minutes=15)  # policy.toml [session] lockout_minutes
    idle_s: float = 15 * 60.0  # a desk console, not a touchscreen in a corridor: 15 min without a call


@dataclass
class ConsoleSession:
    token: str
    user_id: str
    display_name: str
    privileges: frozenset[Privilege]
    signed_in_at: datetime
    last_call_at: datetime  # a page's own refresh (X-ADC-Passive) does not move it

    def document(self, rules: SignInRules) -> dict[str, object]:
        return {
            "token": self.token,
            "user_id": self.user_id,
            "display_name": self.display_name,
            "privileges": sorted(p.value for p in self.privileges),
            "idle_logout_s": int(rules.idle_s),
        }


def lockout_state(history: Sequence[record.SignIn], rules: SignInRules) -> tuple[datetime | None, int]:
    """From the user's outcomes since their last sign-in (oldest first): when the lockout they put the user under
    ends (None: none), and the wrong PINs in the current count. Only wrong credentials count; a lockout that has
    run out starts a fresh count."""
    until: datetime | None = None
    failures = 0
    for event in history:
        if until is not None and event.at >= until:
            until, failures = None, 0
        if event.outcome == record.REFUSED and event.code == "auth.bad_credentials":
            failures += 1
            if failures >= rules.max_failures and until is None:
                until = event.at + rules.lockout
    return until, failures


class ConsoleSignIn:
    def __init__(self, db: Database, clock: Clock, hasher: CredentialHasher, rules: SignInRules | None = None) -> None:
        self.db = db
        self.clock = clock
        self.hasher = hasher
        self.rules = rules or SignInRules()
        self._sessions: dict[str, ConsoleSession] = {}
        self._dummy_hash: str | None = None

    async def sign_in(self, user_id: str, pin: str, remote: str | None) -> ConsoleSession:
        now = self.clock.now()
        with self.db.writer.connect() as connection:  # never a replica: a refusal just written must count
            history = record.since_last_sign_in(connection, user_id)
        until, failures = lockout_state(history, self.rules)
        if until is not None and now < until:
            self._write(user_id, record.LOCKED_OUT, "session.locked_out", remote)
            minutes = max(1, round((until - now).total_seconds() / 60))
            raise ApiError("session.locked_out", f"too many wrong PINs: signing in is blocked for about {minutes} "
                           "more minutes; a pharmacy administrator can tell you more", user=user_id)  # fmt: skip
        found = self._user(user_id)
        stored = found[1] if found is not None else None
        verified = await self._verify(stored, pin)
        if found is None or not verified:
            self._write(user_id, record.REFUSED, "auth.bad_credentials", remote)
            left = self.rules.max_failures - (0 if until is not None else failures) - 1
            hint = f"{left} attempts left before the lockout" if left > 0 else "signing in is now locked"
            raise ApiError("auth.bad_credentials", f"unknown user or wrong PIN ({hint})", attempts_left=max(0, left))
        user = found[0]
        self._require_usable(user, now, remote)
        session = ConsoleSession(secrets.token_urlsafe(32), user.id, user.display_name, user.privileges, now, now)
        self._sessions[session.token] = session
        self._write(user.id, record.SIGNED_IN, None, remote)
        return session

    def check(
        self, token: str | None, *, needs: frozenset[Privilege] = CONSOLE_PRIVILEGES, activity: bool = True
    ) -> ConsoleSession:
        """The session of a call's token, refreshed; refused if it ended or its user lost the console."""
        if token is None:
            raise ApiError("auth.token_missing", "sign in first (POST /api/v1/central/session)",
                           headers={"WWW-Authenticate": 'Bearer realm="adc-central"'})  # fmt: skip
        session = self._sessions.get(token)
        now = self.clock.now()
        if session is None:
            raise ApiError("auth.token_invalid", "this token is not known to the central console; sign in again")
        if (now - session.last_call_at).total_seconds() > self.rules.idle_s:
            self._end(session, "auth.token_expired")
            raise ApiError("auth.token_expired", "signed off after inactivity; sign in again")
        found = self._user(session.user_id)
        if found is None or not found[0].active or (found[0].expires_at is not None and found[0].expires_at <= now):
            self._end(session, "auth.session_ended")
            raise ApiError("auth.session_ended", f"user {session.user_id} was disabled in the directory")
        session.privileges = found[0].privileges
        if not session.privileges & needs:
            wanted = " or ".join(sorted(p.value for p in needs))
            raise ApiError("policy.privilege_missing", f"user {session.user_id} does not hold {wanted}",
                           privilege=wanted)  # fmt: skip
        if activity:
            session.last_call_at = now
        return session

    def user_of(self, token: str) -> str | None:
        """Whose session a token is (a refusal's record names them)."""
        session = self._sessions.get(token)
        return session.user_id if session is not None else None

    def sign_out(self, token: str) -> None:
        session = self._sessions.get(token)
        if session is not None:
            self._end(session, None)

    def _end(self, session: ConsoleSession, code: str | None) -> None:
        self._sessions.pop(session.token, None)
        self._write(session.user_id, record.SIGNED_OUT, code, None)

    def _require_usable(self, user: User, now: datetime, remote: str | None) -> None:
        refusal = None
        if not user.active:
            refusal = ("auth.user_inactive", f"user {user.id} is disabled in the hospital directory")
        elif user.expires_at is not None and user.expires_at <= now:
            refusal = ("auth.user_expired", f"user {user.id} expired at {user.expires_at:%Y-%m-%d %H:%M} UTC")
        elif not user.privileges & CONSOLE_PRIVILEGES:
            refusal = ("policy.privilege_missing", f"user {user.id} holds no pharmacy console privilege "
                       "(restock, review or administer)")  # fmt: skip
        if refusal is not None:
            self._write(user.id, record.REFUSED, refusal[0], remote)
            raise ApiError(refusal[0], refusal[1], user=user.id)

    def _user(self, user_id: str) -> tuple[User, str] | None:
        with self.db.write() as session:  # the primary, never a replica that may lag behind a disable
            found = repo.get_user(session, user_id)
            return None if found is None else (found[0], found[1].pin_hash)

    async def _verify(self, stored: str | None, pin: str) -> bool:
        if stored is None:  # the same work as a real check
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self.hasher.hash_secret, uuid.uuid4().hex)
            await asyncio.to_thread(self.hasher.verify, self._dummy_hash, pin)
            return False
        return await asyncio.to_thread(self.hasher.verify, stored, pin)

    def _write(self, user_id: str, outcome: str, code: str | None, remote: str | None) -> None:
        with self.db.writer.begin() as connection:
            record.record(connection, user_id, outcome, now=self.clock.now(), code=code, remote=remote)
