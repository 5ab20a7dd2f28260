"""``adc central``: the hospital's central server (PostgreSQL only): create its database, register cabinets, run
the fleet ingest, keep the user directory, and show the fleet.

    adc central init      --database-url postgresql+psycopg://...        (loads the demo formulary unless --formulary)
    adc central register  CAB-4W --name "4 West" --care-area 4W --public-key <base64>   (adc fleet key prints it)
                          [--console-url http://cab-4w:8000/pharmacy/]
    adc central serve     --workers 2 --nats nats://127.0.0.1:4222 --port 8100 --hl7-listen 0.0.0.0:2575
                          [--read-url postgresql+psycopg://replica]
    adc central status
    adc central user add rn.kim --name "Kim, RN" --role nurse      (PIN asked for; only its hash is kept)
    adc central user disable rn.kim                                 (no connected cabinet accepts it seconds later)
    adc central client add his-fhir --scope fhir:read --scope orders:write   (its secret printed once)
    adc central layout CAB-4W layout.toml        (pocket assignments: [[pockets]] pocket, item, par, min, max)
    adc central policy CAB-4W policy.toml --reason "P&T 2026-12"    (the rules document, as ADC_POLICY_FILE)
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from controller.bootstrap import credential_hasher
from controller.domain.cabinet_config import LAYOUT, POLICY
from controller.domain.clock import SystemClock
from controller.domain.users import Role, User
from controller.errors import ConfigurationError
from controller.fleet import protocol as p
from controller.settings import Settings
from controller.store import repositories as repo
from controller.store.central import cabinet_config, directory
from controller.store.central import formulary as central_formulary
from controller.store.central import ledger as central
from controller.store.central import schema as central_schema
from controller.store.central import status as fleet_status
from controller.store.database import Database, parse_url
from controller.store.formulary_file import load_formulary

central_app = typer.Typer(help="The hospital's central server (PostgreSQL, NATS JetStream).", no_args_is_help=True)
user_app = typer.Typer(help="The hospital's user directory, published to every cabinet.", no_args_is_help=True)
central_app.add_typer(user_app, name="user")
client_app = typer.Typer(help="Integrators of the central's FHIR API.", no_args_is_help=True)
central_app.add_typer(client_app, name="client")
fleet_app = typer.Typer(help="The cabinet's side of the fleet link.", no_args_is_help=True)

out = Console()

CentralUrl = Annotated[
    str, typer.Option("--database-url", envvar="ADC_CENTRAL_DATABASE_URL", help="PostgreSQL URL of the central.")
]
NatsUrl = Annotated[str, typer.Option("--nats", envvar="ADC_FLEET_NATS_URL", help="NATS with JetStream.")]


def open_central(url: str, *, current: bool = True) -> Database:
    if parse_url(url).get_backend_name() != "postgresql":
        raise ConfigurationError("store.bad_url", "the central server runs on PostgreSQL only: give a postgresql URL")
    db = Database.open(url)
    if current:
        central_schema.require_current(db)
    return db


@central_app.command("init")
def init(
    database_url: CentralUrl,
    formulary: Annotated[Path | None, typer.Option(help="Formulary file (TOML); default: the demo formulary.")] = None,
) -> None:
    """Create (or bring up to date) the central database: the cabinet schema and the fleet tables, and the
    formulary's items the central does not hold yet (so the fleet pages show names)."""
    db = open_central(database_url, current=False)
    try:
        central_schema.upgrade(db)
        with db.write() as session:
            added = central_formulary.add_missing(session, load_formulary(formulary))
        out.print(f"central database ready at {central_schema.head_revision()}; {added} formulary items added")
    finally:
        db.dispose()


@central_app.command("register")
def register(
    cabinet_id: str,
    *,
    public_key: Annotated[str, typer.Option(help="The cabinet's Ed25519 public key (adc fleet key prints it).")],
    database_url: CentralUrl,
    name: Annotated[str, typer.Option(help="What the pharmacy calls it.")] = "",
    care_area: Annotated[str, typer.Option(help="The care area it serves.")] = "",
    console_url: Annotated[
        str | None, typer.Option(help="The cabinet's own pharmacy console; the fleet page links to it.")
    ] = None,
) -> None:
    """Register a cabinet (or give it a new key): only registered cabinets' signed entries are applied."""
    p.check_cabinet_id(cabinet_id)
    db = open_central(database_url)
    try:
        with db.writer.begin() as connection:
            central.register_cabinet(
                connection, cabinet_id, name=name or cabinet_id, care_area=care_area, public_key=public_key,
                now=SystemClock().now(), console_url=_checked_url(console_url),
            )  # fmt: skip
        out.print(f"cabinet {cabinet_id} registered")
    finally:
        db.dispose()


def _checked_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not url.startswith(("http://", "https://")) or len(url) > 500:
        raise ConfigurationError("config.invalid", "the console URL must be an http:// or https:// address")
    return url


@central_app.command("serve")
def serve(
    *,
    database_url: CentralUrl,
    nats_url: NatsUrl = "nats://127.0.0.1:4222",
    workers: Annotated[int, typer.Option(min=1, max=32, help="Ingest workers in this process.")] = 1,
    host: Annotated[str, typer.Option(help="Where the fleet console listens.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="The fleet console's port; 0: no console.")] = 8100,
    read_url: Annotated[
        str | None, typer.Option(envvar="ADC_CENTRAL_READ_URL", help="A PostgreSQL replica the console reads.")
    ] = None,
    hl7_listen: Annotated[
        str | None,
        typer.Option(envvar="ADC_CENTRAL_HL7_LISTEN", help="HOST:PORT of the hospital's one ADT/order MLLP feed."),
    ] = None,
    hl7_outbound: Annotated[
        str | None,
        typer.Option(envvar="ADC_CENTRAL_HL7_OUTBOUND", help="HOST:PORT that takes every cabinet's dispense messages."),
    ] = None,
    key_dir: Annotated[
        Path,
        typer.Option(
            envvar="ADC_CENTRAL_KEY_DIR",
            help="Where the integrators' token key is kept (api_jwt.key, "
            "made on first start, 0600); every central process of the hospital must share it.",
        ),
    ] = Path("var/central"),
) -> None:
    """Run the fleet ingest, the downlink publishers (users, formulary, census), the fleet console
    (http://HOST:PORT/), with --hl7-listen the hospital's ADT and pharmacy order feed and with --hl7-outbound the
    dispense, return and waste messages of every cabinet, until Ctrl-C or SIGTERM.
    Run several side by side to share the ingest (give the others --port 0 or their own port, and one HL7
    listener): kill any one and nothing is lost or applied twice."""
    from controller.cli.central_serve import CentralOptions, CentralProcess  # only this command loads the web stack

    db = open_central(database_url)
    if read_url is not None:
        db.dispose()
        db = Database.open(database_url, read_url=read_url)
    from controller.api.client_tokens import load_or_create_key

    options = CentralOptions(nats_url, workers, host, port, hl7_listen, hl7_outbound, load_or_create_key(key_dir))
    try:
        process = CentralProcess(db, SystemClock(), credential_hasher(Settings()), options)
        asyncio.run(process.run(out))
    finally:
        db.dispose()
    if process.console_failed:
        out.print(f"the fleet console could not listen on {host}:{port}")
        raise typer.Exit(1)
    out.print(f"central stopped: {process.applied} entries applied in this run")


@central_app.command("status")
def status(database_url: CentralUrl) -> None:
    """Each cabinet: link, last contact, entries waiting to reach the central, chain head, open alarms and pockets
    with nothing usable (what the fleet console's Cabinets page shows)."""
    db = open_central(database_url)
    try:
        with db.reader.connect() as connection:
            cabinets = fleet_status.board(connection, datetime.now(UTC))
            alarms = fleet_status.open_alarms(connection, limit=20)
    finally:
        db.dispose()
    now = datetime.now(UTC)
    table = Table(title="Fleet")
    columns = ("cabinet", "care area", "link", "last contact", "queued", "central seq", "clock skew", "alarms",
               "stock-outs")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for c, outs in cabinets:
        contact = "—" if c.last_contact_at is None else f"{(now - c.last_contact_at).total_seconds():.0f} s ago"
        skew = "—" if c.clock_skew_s is None else f"{c.clock_skew_s:+.0f} s"
        table.add_row(
            c.cabinet_id, c.care_area, c.link(now), contact, "—" if c.queued is None else str(c.queued),
            str(c.central_seq), skew, str(c.open_alarms), str(outs),
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
    """Add a user to the hospital's directory (the PIN's argon2id hash only). User ids are kept in capitals, as
    the cabinets' and the console's sign-in forms send them."""
    user_id = user_id.strip().upper()
    db = open_central(database_url)
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
    user_id = user_id.strip().upper()
    db = open_central(database_url)
    try:
        with db.write() as session:
            record = directory.set_active(session, user_id, active, SystemClock().now())
        state = "enabled" if active else "disabled"
        out.print(f"user {user_id} {state} (directory version {record.version}); published by 'adc central serve'")
    finally:
        db.dispose()


@client_app.command("add")
def client_add(
    client_id: str,
    database_url: CentralUrl,
    scope: Annotated[list[str], typer.Option(help="A scope (repeatable): fhir:read, orders:write.")],
) -> None:
    """Register an integrator at the central (its secret printed once; only its argon2id hash is kept). It gets a
    token at the central's POST /oauth/token and calls the central's /fhir."""
    from controller.api.api_clients import add_client, parse_scopes

    db = open_central(database_url)
    try:
        scopes = parse_scopes(" ".join(scope))
        secret = add_client(db, credential_hasher(Settings()), client_id, scopes, now=SystemClock().now())
        out.print(f"client {client_id} added with {', '.join(sorted(scopes))}")
        out.print(f"secret (shown once): {secret}")
    finally:
        db.dispose()


@central_app.command("layout")
def layout(
    cabinet_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="TOML ([[pockets]]) or JSON.")],
    database_url: CentralUrl,
) -> None:
    """Set which item each pocket of a cabinet holds, with its par, minimum and maximum. Checked here; the cabinet
    applies it within seconds, or refuses it (a pocket that still holds another item's stock, or is in use) and
    records why. Pockets the file does not name keep their assignment; ``item`` left out empties a pocket."""
    text = file.read_text(encoding="utf-8")
    try:
        content = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError("fleet.layout_refused", f"{file}: not {file.suffix or 'TOML'}: {exc}") from exc
    _put_configuration(LAYOUT, cabinet_id, content, database_url)


@central_app.command("policy")
def policy(
    cabinet_id: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The rules document (TOML).")],
    database_url: CentralUrl,
    reason: Annotated[str, typer.Option(help="Why the rules change (it goes on the cabinet's ledger entry).")],
) -> None:
    """Put a rules document in force at a cabinet: validated here as the policy file is, then sent down."""
    _put_configuration(POLICY, cabinet_id, {"text": file.read_text(encoding="utf-8"), "reason": reason}, database_url)


def _put_configuration(kind: str, cabinet_id: str, content: dict[str, object], database_url: str) -> None:
    db = open_central(database_url)
    try:
        with db.writer.begin() as connection:
            version = cabinet_config.put(connection, kind, cabinet_id, content, SystemClock().now())
        out.print(f"{kind} of {cabinet_id} is version {version}; the cabinet applies it within seconds")
    finally:
        db.dispose()


@fleet_app.command("key")
def fleet_key() -> None:
    """Print the cabinet's public key (made on first use) to register it at the central."""
    from controller.cli.fleet_services import key_path, load_or_create_key

    settings = Settings()
    key = load_or_create_key(key_path(settings))
    out.print(p.public_key_text(key))
