"""Integrator clients as stored: registering one, and the credentials of an active one.

Answers: whether a client id is taken (registering refuses it), and the secret hash and scopes of an active
client. Not: generating or checking secrets (``controller.api.api_clients`` with the credential hasher), which
scopes exist, or tokens (``controller.api.client_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.errors import ConfigurationError
from controller.store.database import Database
from controller.store.models import ApiClientRow


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    secret_hash: str  # argon2id of the secret
    scopes: frozenset[str]


def add_client(db: Database, client_id: str, *, secret_hash: str, scopes: frozenset[str], now: datetime) -> None:
    """Store a new active client; ``config.invalid`` if the id is taken (nothing is written then)."""
    with db.write() as session:
        if session.get(ApiClientRow, client_id) is not None:
            raise ConfigurationError("config.invalid", f"client {client_id} already exists")
        session.add(
            ApiClientRow(
                id=client_id, secret_hash=secret_hash, scopes=" ".join(sorted(scopes)), active=True, created_at=now
            )
        )


def active_client(db: Database, client_id: str) -> ClientCredentials | None:
    """The stored credentials of ``client_id``; None if there is no such client or it was deactivated."""
    with db.read() as session:
        row = session.get(ApiClientRow, client_id)
        if row is None or not row.active:
            return None
        return ClientCredentials(row.secret_hash, frozenset(row.scopes.split()))
