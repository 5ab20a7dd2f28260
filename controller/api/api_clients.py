"""Integrator clients: registering one (its secret shown once, stored as argon2id) and checking its credentials.

Used by ``POST /oauth/token`` and by ``adc api client add``. Scopes are validated against ``SCOPES``.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from controller.domain.credentials import CredentialHasher
from controller.errors import ConfigurationError
from controller.store.database import Database
from controller.store.queries import api_clients as stored

# What an integrator may be granted. Each route names the one scope that opens it (``access.py``).
SCOPES: dict[str, str] = {
    "ledger:read": "query and verify the ledger",
    "inventory:read": "pockets, lots, expiry, quarantine, pick list",
    "patients:read": "patients and orders of the cabinet's care area",
    "formulary:read": "the formulary and drug search",
    "discrepancies:read": "open and resolved discrepancies",
    "devices:read": "device status, faults and whether each is a simulator",
    "events:read": "the event stream",
    "admin:read": "users, roles, layout, override list and policies (read only)",
    "fhir:read": "FHIR resources (integration module)",
    "orders:write": "orders in (integration module)",
}

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(text.replace(",", " ").split())
    unknown = sorted(scopes - SCOPES.keys())
    if unknown:
        raise ConfigurationError(
            "config.invalid", f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(SCOPES))}"
        )
    return scopes


def add_client(db: Database, hasher: CredentialHasher, client_id: str, scopes: frozenset[str], *, now: datetime) -> str:
    """Register ``client_id`` and return its secret (the only time it is seen)."""
    if not _CLIENT_ID.match(client_id):
        raise ConfigurationError("config.invalid", "a client id is 1-64 letters, digits, '.', '_' or '-'")
    secret = secrets.token_urlsafe(32)
    # Hashed before the write transaction, so the argon2 work does not hold the store's one writer.
    stored.add_client(db, client_id, secret_hash=hasher.hash_secret(secret), scopes=scopes, now=now)
    return secret


def stored_client(db: Database, client_id: str) -> tuple[str, frozenset[str]] | None:
    """(secret hash, scopes) of an active client."""
    found = stored.active_client(db, client_id)
    return (found.secret_hash, found.scopes) if found is not None else None
