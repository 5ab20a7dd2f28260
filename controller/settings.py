"""Settings from the environment (``ADC_`` prefix) or a ``.env`` file, built once and passed explicitly.

No module reads settings through a global: the composition root builds ``Settings`` and hands out what each
part needs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="where the embedded database and files live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file adc.db in data_dir"
    )
    cabinet_id: str = Field(default="CAB-4W", description="the cabinet this controller runs")
    policy_file: Path | None = Field(
        default=None,
        description="the cabinet's rules as TOML (every key: controller/data/policy.toml); default: that shipped file",
    )
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    # OWASP's argon2id recommendation; see controller.domain.credentials.HashCost for why.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Devices, chosen by endpoint URL only (``adc sim`` prints simulator URLs in this form):
    io_board: str | None = Field(
        default=None, description="tcp://HOST:PORT?unit=1 or rtu:///dev/ttyUSB0?unit=1&baud=115200"
    )
    pill_counter: str | None = Field(default=None, description="serial device path or socket://HOST:PORT")
    scanner: str | None = Field(default=None, description="serial device path or socket://HOST:PORT")
    label_printer: str | None = Field(default=None, description="tcp://HOST:9100")
    camera: str | None = Field(
        default=None, description="device index (0), /dev/video0, a video file or frames_%04d.png, rtsp:// or http://"
    )
    io_poll_hz: float = Field(default=10.0, gt=0, le=100, description="sensor poll rate")
    # HL7 v2 over MLLP, started by ``adc serve`` when set (host:port each):
    hl7_listen: str | None = Field(default=None, description="where the ADT/RDE listener binds, e.g. 127.0.0.1:2575")
    hl7_outbound: str | None = Field(
        default=None, description="the receiver of dispense and charge messages; set, every dose is queued for it"
    )

    # The fleet link, started by ``adc serve`` when set (the cabinet keeps working without it):
    fleet_nats_url: str | None = Field(default=None, description="NATS of the hospital's central, nats://HOST:4222")
    fleet_key_file: Path | None = Field(
        default=None, description="the cabinet's Ed25519 signing key; default: fleet.key in data_dir (made once)"
    )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'adc.db').as_posix()}"
