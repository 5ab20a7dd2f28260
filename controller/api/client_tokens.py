"""Integrator access tokens: short-lived JWTs (HS256) issued on OAuth2 client credentials, carrying scopes.

The signing key is 32 random bytes generated into the data directory on first run (mode 0600) and read back
afterwards, so tokens survive a restart of the API but not a new key. ``iss``, ``aud`` (this cabinet) and ``exp``
are checked on every request. Not responsible for the clients themselves (``api_clients.py``).
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from controller.api.problems import ApiError

KEY_FILE = "api_jwt.key"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="adc", error="invalid_token"'}
ALGORITHM = "HS256"


def load_or_create_key(data_dir: Path) -> bytes:
    """The signing key from ``data_dir``; created (readable by the owner only) when missing."""
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text("ascii").strip())
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text("ascii").strip())


@dataclass(frozen=True, slots=True)
class ClientClaims:
    client_id: str
    scopes: frozenset[str]


class ClientTokens:
    def __init__(self, key: bytes, *, issuer: str, audience: str, lifetime_s: int) -> None:
        if len(key) < 32:
            raise ValueError("an HS256 key needs at least 256 bits")
        self._key = key
        self.issuer = issuer
        self.audience = audience
        self.lifetime_s = lifetime_s

    def issue(self, client_id: str, scopes: frozenset[str]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "iat": now,
            "exp": now + self.lifetime_s,
            "scope": " ".join(sorted(scopes)),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> ClientClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise ApiError(
                "auth.token_expired", "the access token has expired; ask /oauth/token for a new one", headers=_CHALLENGE
            ) from exc
        except jwt.PyJWTError as exc:
            raise ApiError(
                "auth.token_invalid", f"the access token was refused: {type(exc).__name__}", headers=_CHALLENGE
            ) from exc
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise ApiError("auth.token_invalid", "the access token's scope claim is not a string", headers=_CHALLENGE)
        return ClientClaims(str(claims["sub"]), frozenset(scope.split()))
