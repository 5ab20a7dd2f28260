"""Settings of the HTTP API (``ADC_`` prefix, like ``controller.settings``), built once and passed explicitly.

Kept apart from the cabinet's ``Settings`` because only the API process needs them: who may call from a browser
(CORS), TLS, token lifetimes and request limits. Not responsible for where the store or the devices are.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADC_", env_file=".env", extra="ignore")

    # Closed by default: the UIs are served by this app (same origin) and need no CORS at all.
    cors_origins: list[str] = Field(default_factory=list, description="browser origins allowed to call the API")
    tls_cert: Path | None = Field(default=None, description="PEM certificate; with tls_key the API serves HTTPS")
    tls_key: Path | None = Field(default=None, description="PEM private key of tls_cert")
    session_token_max_s: int = Field(
        default=8 * 3600, ge=60, description="a cabinet token's absolute lifetime; the engine's logoff ends it sooner"
    )
    client_token_s: int = Field(default=900, ge=60, le=3600, description="lifetime of an integrator's JWT")
    jwt_issuer: str = Field(default="open-adc", description="iss of the integrator JWTs")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="larger request bodies are refused (413)")
    hardware_retry_s: float = Field(default=2.0, gt=0, description="pause between attempts to connect the devices")
    sim_control: str | None = Field(
        default=None, description="tcp://HOST:PORT of the simulators' physical-world socket (adc serve sets it)"
    )
