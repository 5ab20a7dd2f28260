"""``adc db``, ``adc ledger``, ``adc inventory``, ``adc devices`` and ``adc sim``: create and migrate the store,
verify the ledger, show the inventory, probe the configured devices, run the device simulators. Loaded only when
one of them runs (``controller.cli.app`` lists them without importing this)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from controller.bootstrap import StoreContext, build_store, credential_hasher
from controller.cli.options import DatabaseUrl, settings_from_env
from controller.errors import ControllerError
from controller.store import schema
from controller.store.formulary_file import load_formulary
from controller.store.inventory import list_pockets
from controller.store.ledger import count_entries, verify_chain
from controller.store.seed import demo_layout, load_layout, seed_cabinet

db_app = typer.Typer(help="Create and migrate the database.", no_args_is_help=True)
ledger_app = typer.Typer(help="The tamper-evident ledger.", no_args_is_help=True)

out = Console()
err = Console(stderr=True)


def _open(database_url: str | None, *, create: bool = False) -> StoreContext:
    return build_store(settings_from_env(database_url), create=create)


@db_app.command("init")
def db_init(
    database_url: DatabaseUrl = None,
    demo: Annotated[bool, typer.Option("--demo", help="Create the demo cabinet, users and stock.")] = False,
    layout: Annotated[Path | None, typer.Option(help="Cabinet layout file to load (TOML).")] = None,
    formulary: Annotated[Path | None, typer.Option(help="Formulary file (TOML); default: the demo formulary.")] = None,
) -> None:
    """Create the schema (or bring it up to date) and optionally load a cabinet."""
    store = _open(database_url, create=True)
    try:
        schema.upgrade(store.db)
        out.print(f"database ready at schema {schema.head_revision()}: {_shown_url(store)}")
        if demo or layout is not None:
            cabinet_layout = load_layout(layout) if layout is not None else demo_layout()
            entries = load_formulary(formulary)
            ledger = store.ledger(is_simulator=demo)
            with store.db.write() as session:
                summary = seed_cabinet(
                    session,
                    cabinet_layout,
                    entries,
                    ledger=ledger,
                    hasher=credential_hasher(store.settings),
                    clock=store.clock,
                )
            out.print(
                f"cabinet {summary.cabinet_id}: {summary.medications} formulary items, {summary.pockets} pockets, "
                f"{summary.units_loaded} units loaded, {summary.users} users, {summary.patients} patients, "
                f"{summary.orders} orders"
            )
    finally:
        store.close()


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply pending migrations."""
    store = _open(database_url)
    try:
        before = schema.current_revision(store.db)
        if before is None:
            raise ControllerError("store.not_initialised", "database is not initialised; run 'adc db init'")
        schema.upgrade(store.db)
        out.print(f"schema {before} -> {schema.head_revision()}")
    finally:
        store.close()


@ledger_app.command("verify")
def ledger_verify(
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Recompute the hash chain; name the first bad entry and exit 1 if it does not verify."""
    store = _open(database_url)
    try:
        schema.require_current(store.db)
        with store.db.reader.connect() as connection:
            total = count_entries(connection)
            show_bar = total >= 50_000 and not as_json and sys.stderr.isatty()
            with Progress(
                TextColumn("verifying ledger"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                disable=not show_bar,
                transient=True,
            ) as bar:
                task = bar.add_task("verify", total=total)
                report = verify_chain(connection, progress=lambda n: bar.update(task, completed=n))
    finally:
        store.close()
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "ok": report.ok,
                    "entries_checked": report.entries_checked,
                    "cabinets": list(report.cabinets),
                    "problems": [
                        {"cabinet_id": p.cabinet_id, "seq": p.seq, "kind": p.kind, "detail": p.detail}
                        for p in report.problems
                    ],
                }
            )
        )
    elif report.ok:
        out.print(f"ledger verified: {report.entries_checked} entries in {len(report.cabinets)} cabinet(s)")
    else:
        for problem in report.problems:
            err.print(f"LEDGER BROKEN: {problem}", markup=False, highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def inventory(
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the inventory as JSON.")] = False,
) -> None:
    """Pockets with their item, quantity, lots and expiry."""
    store = _open(database_url)
    try:
        schema.require_current(store.db)
        with store.db.read() as session:
            pockets = list_pockets(session, store.settings.cabinet_id)
    finally:
        store.close()
    if as_json:
        document = [
            {
                "pocket": p.pocket_id,
                "drawer": p.drawer_id,
                "drawer_kind": p.drawer_kind,
                "item_id": p.item_id,
                "item": p.item_name,
                "dea_schedule": p.dea_schedule,
                "quantity": p.quantity,
                "par": p.par,
                "min": p.min,
                "max": p.max,
                "lots": [
                    {"lot": lot.lot_number, "expiry": lot.expiry.isoformat(), "quantity": lot.quantity}
                    for lot in p.lots
                ],
            }
            for p in pockets
        ]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    if not pockets:
        out.print(f"cabinet {store.settings.cabinet_id} has no pockets (run 'adc db init --demo')")
        return
    table = Table(title=f"Inventory of cabinet {store.settings.cabinet_id}", box=box.SIMPLE_HEAD)
    table.add_column("pocket", no_wrap=True)
    table.add_column("item", overflow="fold", min_width=20, ratio=1)
    table.add_column("sched", no_wrap=True)
    table.add_column("qty", justify="right", no_wrap=True)
    table.add_column("par/min/max", no_wrap=True)
    table.add_column("lot ×qty, expiry", min_width=12)
    for p in pockets:
        lots = "\n".join(f"{lot.lot_number} ×{lot.quantity}, {lot.expiry.isoformat()}" for lot in p.lots)
        table.add_row(
            f"{p.pocket_id}\n[dim]{p.drawer_kind}[/dim]",
            p.item_name or "—",
            p.dea_schedule and f"C{p.dea_schedule}",
            str(p.quantity),
            f"{p.par}/{p.min}/{p.max}",
            lots or "—",
        )
    out.print(table)


def devices(as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False) -> None:
    """Connect the devices named by ADC_IO_BOARD, ADC_PILL_COUNTER, ADC_SCANNER, ADC_LABEL_PRINTER and ADC_CAMERA
    and show who each says it is (firmware, simulator or real). Exit 1 if one is configured but does not answer."""
    from controller.bootstrap.hardware import DeviceReport, connect_hardware  # the drivers: only for this command

    settings = settings_from_env(None)

    async def probe() -> list[DeviceReport]:
        hardware = await connect_hardware(settings)
        try:
            return hardware.reports
        finally:
            await hardware.close()

    reports = asyncio.run(probe())
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(r) for r in reports], indent=2) + "\n")
    elif not reports:
        out.print(
            "no devices configured: set ADC_IO_BOARD, ADC_PILL_COUNTER, ADC_SCANNER, ADC_LABEL_PRINTER or ADC_CAMERA"
        )
    else:
        table = Table(title="Devices")
        for column in ("device", "url", "state", "simulator", "identity"):
            table.add_column(column)
        for r in reports:
            state = "ok" if r.connected and r.error is None else (r.error or "not connected")
            identity = ", ".join(f"{k}={v}" for k, v in r.identity.items())
            table.add_row(r.device, r.url, state, "yes" if r.is_simulator else "no", identity)
        out.print(table)
    if any(r.error is not None for r in reports):
        raise typer.Exit(1)


def sim(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless you mean otherwise).")] = "127.0.0.1",
    serial_over: Annotated[
        str, typer.Option("--serial", help="Serve serial devices on a pseudo-terminal ('pty') or on TCP ('tcp').")
    ] = "pty",
    io_board: Annotated[
        str, typer.Option("--io-board", help="Serve the I/O board as Modbus 'tcp' or as 'rtu' on a pseudo-terminal.")
    ] = "tcp",
) -> None:
    """Start every device simulator; print one ADC_<DEVICE>=<url> line each once all listen; run until Ctrl-C.

    The simulators run as their own process (``python -m simulators``): the controller never imports them. SIGTERM
    stops them as Ctrl-C does; either way they are gone within 5 s (killed if they have not stopped by then).
    """
    import contextlib

    from controller.cli.serve import CHILD_STOP_S, StopSignals, stop_child

    command = [sys.executable, "-m", "simulators", "--host", host, "--serial", serial_over, "--io-board", io_board]
    with StopSignals(interrupt=True, forward=True) as stop:
        process: subprocess.Popen[str] | None = None
        with contextlib.suppress(KeyboardInterrupt):  # the stop signal, already passed on to the simulators
            with stop.deferred():
                process = stop.adopt(subprocess.Popen(command, text=True))
            process.wait()
        stop.interrupt = False  # from here on a signal must not cut the wait short
        if process is None:  # stopped before it was started
            return
        code = stop_child(process, deadline=stop.deadline(CHILD_STOP_S), signum=None)
    stopped = {0, 130, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM}  # as a stop signal ends them
    if code != 0 and not (stop.requested and code in stopped):
        raise typer.Exit(code if code > 0 else 1)


def _shown_url(store: StoreContext) -> str:
    return store.db.url.render_as_string(hide_password=True)
