"""PIN and badge secrets: kept only as argon2id hashes, verified in constant time by argon2-cffi."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from controller.errors import VerificationError as InputError

MIN_PIN_LENGTH = 4


@dataclass(frozen=True, slots=True)
class HashCost:
    """argon2id cost. Defaults: OWASP's recommended argon2id setting (19 MiB, 2 passes, 1 lane), about 25 ms per
    verification on the cabinet's 2-core computer. A 4-to-6-digit PIN cannot be protected by hash cost alone
    (10^4-10^6 guesses); the defence is the lockout after 5 failures. The cost keeps a stolen database from
    being read at GPU speed without holding a nurse at the cabinet for a quarter of a second per login."""

    time_cost: int = 2
    memory_kib: int = 19456
    parallelism: int = 1


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
