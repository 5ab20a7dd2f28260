"""``adc central``: the hospital's central server (PostgreSQL only): create its database, register cabinets, run
the fleet ingest, keep the user directory, and show the fleet.

    adc central init      --database-url postgresql+psycopg://...
    adc central register  CAB-4W --name "4 West" --care-area 4W --public-key <base64>   (adc fleet key prints it)
    adc central serve     --workers 2 --nats nats://127.0.0.1:4222
    adc central status
    adc central user add rn.kim --name "Kim, RN" --role nurse      (PIN asked for; only its hash is kept)
    adc central user disable rn.kim                                 (no connected cabinet accepts it seconds later)
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from controller.bootstrap import credential_hasher
from controller.domain.clock import SystemClock
from controller.domain.users import Role, User
from controller.errors import ConfigurationError
from controller.fleet import protocol as p
from controller.fleet.central_service import CentralConfig, CentralService
from controller.fleet.central_worker import WorkerConfig
from controller.settings import Settings
from controller.store import repositories as repo
from controller.store.central import directory
from controller.store.central import ledger as central
from controller.store.central import schema as central_schema
from controller.store.central import status as fleet_status
from controller.store.database import Database, parse_url

central_app = typer.Typer(help="The hospital's central server (PostgreSQL, NATS JetStream).", no_args_is_help=True)
user_app = typer.Typer(help="The hospital's user directory, published to every cabinet.", no_args_is_help=True)
central_app.add_typer(user_app, name="user")
fleet_app = typer.Typer(help="The cabinet's side of the fleet link.", no_args_is_help=True)

out = Console()

CentralUrl = Annotated[
    str, typer.Option("--database-url", envvar="ADC_CENTRAL_DATABASE_URL", help="PostgreSQL URL of the central.")
]
NatsUrl = Annotated[str, typer.Option("--nats", envvar="ADC_FLEET_NATS_URL", help="NATS with JetStream.")]


def _open(url: str, *, current: bool = True) -> Database:
    if parse_url(url).get_backend_name() != "postgresql":
        raise ConfigurationError("store.bad_url", "the central server runs on PostgreSQL only: give a postgresql URL")
    db = Database.open(url)
    if current:
        central_schema.require_current(db)
    return db


@central_app.command("init")
def init(database_url: CentralUrl) -> None:
    """Create (or bring up to date) the central database: the cabinet schema and the fleet tables."""
    db = _open(database_url, current=False)
    try:
        central_schema.upgrade(db)
        out.print(f"central database ready at {central_schema.head_revision()}")
    finally:
        db.dispose()


@central_app.command("register")
def register(
    cabinet_id: str,
    public_key: Annotated[str, typer.Option(help="The cabinet's Ed25519 public key (adc fleet key prints it).")],
    database_url: CentralUrl,
    name: Annotated[str, typer.Option(help="What the pharmacy calls it.")] = "",
    care_area: Annotated[str, typer.Option(help="The care area it serves.")] = "",
) -> None:
    """Register a cabinet (or give it a new key): only registered cabinets' signed entries are applied."""
    p.check_cabinet_id(cabinet_id)
    db = _open(database_url)
    try:
        with db.writer.begin() as connection:
            central.register_cabinet(
                connection, cabinet_id, name=name or cabinet_id, care_area=care_area, public_key=public_key,
                now=SystemClock().now(),
            )  # fmt: skip
        out.print(f"cabinet {cabinet_id} registered")
    finally:
        db.dispose()


@central_app.command("serve")
def serve(
    database_url: CentralUrl,
    nats_url: NatsUrl = "nats://127.0.0.1:4222",
    workers: Annotated[int, typer.Option(min=1, max=32, help="Ingest workers in this process.")] = 1,
) -> None:
    """Run the fleet ingest and the directory publisher until Ctrl-C or SIGTERM. Run several side by side to share
    the ingest: kill any one and nothing is lost or applied twice."""
    db = _open(database_url)
    service = CentralService(db, nats_url, SystemClock(), config=CentralConfig(workers=workers, worker=WorkerConfig()))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        out.print(f"central: {workers} ingest worker(s) on {nats_url}; Ctrl-C stops")
        await service.run(stop)

    try:
        asyncio.run(main())
    finally:
        db.dispose()
    applied = sum(w.stats.applied for w in service.workers)
    out.print(f"central stopped: {applied} entries applied in this run")


@central_app.command("status")
def status(database_url: CentralUrl) -> None:
    """Each cabinet: link, last contact, entries waiting to reach the central, chain head, open alarms."""
    db = _open(database_url)
    try:
        with db.reader.connect() as connection:
            cabinets = fleet_status.fleet_status(connection)
            alarms = fleet_status.open_alarms(connection, limit=20)
    finally:
        db.dispose()
    now = datetime.now(UTC)
    table = Table(title="Fleet")
    for column in ("cabinet", "care area", "link", "last contact", "queued", "central seq", "clock skew", "alarms"):
        table.add_column(column)
    for c in cabinets:
        contact = "—" if c.last_contact_at is None else f"{(now - c.last_contact_at).total_seconds():.0f} s ago"
        skew = "—" if c.clock_skew_s is None else f"{c.clock_skew_s:+.0f} s"
        table.add_row(
            c.cabinet_id, c.care_area, c.link(now), contact, "—" if c.queued is None else str(c.queued),
            str(c.central_seq), skew, str(c.open_alarms),
        )  # fmt: skip
    out.print(table)
    if alarms:
        listed = Table(title="Open alarms (newest first)")
        for column in ("cabinet", "seq", "code", "detail"):
            listed.add_column(column)
        for cabinet_id, seq, code, detail, _ in alarms:
            listed.add_row(cabinet_id, "—" if seq is None else str(seq), code, detail)
        out.print(listed)


@user_app.command("add")
def user_add(
    user_id: str,
    database_url: CentralUrl,
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[list[Role], typer.Option(help="A role (repeatable).")],
    pin: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Add a user to the hospital's directory (the PIN's argon2id hash only)."""
    db = _open(database_url)
    try:
        now = SystemClock().now()
        with db.write() as session:
            user = User(user_id, name, frozenset(role), active=True)
            repo.save_user(session, user, pin_hash=credential_hasher(Settings()).hash_pin(pin), created_at=now)
            record = directory.bump(session, user_id, now)
        out.print(f"user {user_id} added (directory version {record.version}); cabinets receive it within seconds")
    finally:
        db.dispose()


@user_app.command("disable")
def user_disable(user_id: str, database_url: CentralUrl) -> None:
    """Disable a user everywhere: no connected cabinet accepts the login seconds later."""
    _set_active(user_id, database_url, active=False)


@user_app.command("enable")
def user_enable(user_id: str, database_url: CentralUrl) -> None:
    _set_active(user_id, database_url, active=True)


def _set_active(user_id: str, database_url: str, *, active: bool) -> None:
    db = _open(database_url)
    try:
        with db.write() as session:
            record = directory.set_active(session, user_id, active, SystemClock().now())
        state = "enabled" if active else "disabled"
        out.print(f"user {user_id} {state} (directory version {record.version}); published by 'adc central serve'")
    finally:
        db.dispose()


@fleet_app.command("key")
def fleet_key() -> None:
    """Print the cabinet's public key (made on first use) to register it at the central."""
    from controller.cli.fleet_services import key_path, load_or_create_key

    settings = Settings()
    key = load_or_create_key(key_path(settings))
    out.print(p.public_key_text(key))
