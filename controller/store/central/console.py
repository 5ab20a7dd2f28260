"""The central console's sign-in record: every sign-in, refusal, lockout and sign-out, append-only (the table
refuses UPDATE and DELETE), read back to count failed attempts in a row. Nothing about a console session lives
only in memory that a lockout depends on: a restart does not forgive failed attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from controller.store.central import tables as t

SIGNED_IN, REFUSED, LOCKED_OUT, SIGNED_OUT = "signed_in", "refused", "locked_out", "signed_out"


@dataclass(frozen=True, slots=True)
class SignIn:
    at: datetime
    outcome: str
    code: str | None


def record(connection: Connection, user_id: str, outcome: str, *, now: datetime, code: str | None = None,
           remote: str | None = None) -> None:  # fmt: skip
    connection.execute(
        insert(t.console_signins).values(
            at=now, user_id=user_id[:64], outcome=outcome, code=code, remote=(remote or "")[:64] or None
        )
    )


def since_last_sign_in(connection: Connection, user_id: str, *, limit: int = 200) -> list[SignIn]:
    """The user's outcomes after their last successful sign-in, oldest first (at most ``limit``)."""
    found = connection.execute(
        select(t.console_signins.c.at, t.console_signins.c.outcome, t.console_signins.c.code)
        .where(t.console_signins.c.user_id == user_id)
        .order_by(t.console_signins.c.id.desc())
        .limit(limit)
    ).all()
    recent: list[SignIn] = []
    for row in found:
        if row.outcome == SIGNED_IN:
            break
        recent.append(SignIn(row.at, row.outcome, row.code))
    return recent[::-1]
