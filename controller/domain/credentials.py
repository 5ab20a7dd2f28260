"""PIN and badge secrets: kept only as argon2id hashes, verified in constant time by argon2-cffi."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from controller.errors import VerificationError as InputError

MIN_PIN_LENGTH = 4


@dataclass(frozen=True, slots=True)
class HashCost:
    """argon2id cost. The defaults are argon2-cffi's (RFC 9106 low-memory profile); tests may lower them."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


class CredentialHasher:
    def __init__(self, cost: HashCost | None = None) -> None:
        cost = cost or HashCost()
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost, memory_cost=cost.memory_kib, parallelism=cost.parallelism
        )

    def hash_pin(self, pin: str) -> str:
        if len(pin) < MIN_PIN_LENGTH or not (pin.isascii() and pin.isdigit()):
            raise InputError("auth.weak_pin", f"a PIN is at least {MIN_PIN_LENGTH} digits")
        return self._hasher.hash(pin)

    def hash_secret(self, secret: str) -> str:
        """Badge identifiers and passwords: any non-empty text."""
        if not secret:
            raise InputError("auth.weak_pin", "a secret must not be empty")
        return self._hasher.hash(secret)

    def verify(self, stored_hash: str, candidate: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, candidate)
        # UnicodeEncodeError: argon2-cffi encodes the hash as ASCII, so a corrupted non-ASCII hash raised it.
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
            return False
