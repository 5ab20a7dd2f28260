"""``adc fleet sim --cabinets N``: a simulated hospital on one machine. N whole cabinets (``adc serve`` each: its
own SQLite store seeded with the demo layout under its own id, its own device simulators, its own forwarder and
key, its touchscreen and pharmacy console on its own port) against one central (``adc central serve``: the
ingest, the directory and the fleet console), over the NATS JetStream and PostgreSQL the options name.

    adc fleet sim --cabinets 5 --nats nats://127.0.0.1:4222 --database-url postgresql+psycopg://... \
                  --hl7-listen 127.0.0.1:2575        (the hospital's one ADT/order feed, at the central)

Cabinets are ``SIM-01`` .. ``SIM-NN`` on ports ``--base-port`` + 1 .. N, kept under ``--data-dir`` (so a second
run continues the same hospital); each is registered at the central with its public key and console address.
Each child writes its log to ``<data-dir>/<id>.log``. Ctrl-C or SIGTERM stops every child (SIGTERM, then
SIGKILL after the stop budget).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from controller.cli.central import CentralUrl, NatsUrl, open_central
from controller.cli.fleet_services import load_or_create_key
from controller.cli.serve import CHILD_STOP_S, StopSignals, stop_child
from controller.domain.clock import SystemClock
from controller.fleet import protocol as p
from controller.store.central import formulary as central_formulary
from controller.store.central import ledger as central
from controller.store.central import schema as central_schema
from controller.store.formulary_file import load_formulary

out = Console()
READY_TIMEOUT_S = 120.0


def cabinet_ids(count: int) -> list[str]:
    return [f"SIM-{i:02d}" for i in range(1, count + 1)]


def fleet_sim(
    *,
    database_url: CentralUrl,
    nats_url: NatsUrl = "nats://127.0.0.1:4222",
    cabinets: Annotated[int, typer.Option(min=1, max=200, help="How many simulated cabinets.")] = 3,
    data_dir: Annotated[Path, typer.Option(help="Where the cabinets' stores, keys and logs live.")] = Path("var/fleet"),
    base_port: Annotated[int, typer.Option(min=1024, max=65000, help="Cabinet i listens on base-port + i.")] = 8100,
    central_port: Annotated[int, typer.Option(min=0, max=65535, help="The fleet console; 0: no central.")] = 8100,
    hl7_listen: Annotated[
        str | None, typer.Option(help="HOST:PORT where the central takes the hospital's ADT and orders (MLLP).")
    ] = None,
) -> None:
    """Run N simulated cabinets and one central until Ctrl-C."""
    ids = cabinet_ids(cabinets)
    ports = {cabinet_id: base_port + i for i, cabinet_id in enumerate(ids, start=1)}
    if central_port in ports.values():
        raise typer.BadParameter(f"--central-port {central_port} is one of the cabinets' ports")
    data_dir.mkdir(parents=True, exist_ok=True)
    _register(database_url, ids, ports, data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")} | {
        k: v
        for k, v in os.environ.items()
        if k.startswith("ADC_ARGON2_")  # a test's cheap hashing cost
    }
    with StopSignals(interrupt=True, forward=True) as stop:
        children: dict[str, subprocess.Popen[str]] = {}
        try:
            with contextlib.suppress(KeyboardInterrupt):
                if central_port:
                    serve_central = [
                        "central",
                        "serve",
                        "--nats",
                        nats_url,
                        "--port",
                        str(central_port),
                        "--key-dir",
                        str(data_dir / "central"),
                    ]
                    serve_central += ["--hl7-listen", hl7_listen] if hl7_listen else []
                    central_env = env | {"ADC_CENTRAL_DATABASE_URL": database_url}
                    children["central"] = _spawn(stop, serve_central, central_env, data_dir / "central.log")
                for cabinet_id in ids:
                    children[cabinet_id] = _spawn(
                        stop, ["serve", "--port", str(ports[cabinet_id])],
                        env | {"ADC_DATA_DIR": str(data_dir / cabinet_id), "ADC_CABINET_ID": cabinet_id,
                               "ADC_FLEET_NATS_URL": nats_url},
                        data_dir / f"{cabinet_id}.log",
                    )  # fmt: skip
                _wait_ready(children, ports, central_port)
                _announce(ids, ports, central_port, data_dir)
                while True:
                    for name, child in children.items():
                        if child.poll() is not None:
                            out.print(f"[red]{name} exited with status {child.returncode}[/red] "
                                      f"(see {data_dir / (name + '.log')}); stopping the fleet")  # fmt: skip
                            raise KeyboardInterrupt
                    time.sleep(0.5)
        finally:
            stop.interrupt = False
            if not stop.requested:  # a child ended, or the start failed: stop the others as a signal would
                stop.request(signal.SIGTERM)
            deadline = stop.deadline(CHILD_STOP_S)
            for child in children.values():  # each had the stop signal once: a second one would mean "kill"
                stop_child(child, deadline=deadline, signum=None)
    out.print(f"fleet stopped: {len(ids)} cabinets")


def _register(database_url: str, ids: list[str], ports: dict[str, int], data_dir: Path) -> None:
    db = open_central(database_url, current=False)
    try:
        central_schema.upgrade(db)
        with db.write() as session:
            central_formulary.add_missing(session, load_formulary())
        with db.writer.begin() as connection:
            for cabinet_id in ids:
                key = load_or_create_key(data_dir / cabinet_id / "fleet.key")
                central.register_cabinet(
                    connection, cabinet_id, name=f"Simulated {cabinet_id}", care_area="4W",
                    public_key=p.public_key_text(key), now=SystemClock().now(),
                    console_url=f"http://127.0.0.1:{ports[cabinet_id]}/pharmacy/",
                )  # fmt: skip
    finally:
        db.dispose()


def _spawn(stop: StopSignals, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "controller.cli.app", *args]
    with stop.deferred(), log.open("a") as handle:
        # A session of its own: a stop reaches it from here (forwarded), once, in order.
        return stop.adopt(subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True,
                                           start_new_session=True))  # fmt: skip


def _wait_ready(children: dict[str, subprocess.Popen[str]], ports: dict[str, int], central_port: int) -> None:
    probes = {cabinet_id: f"http://127.0.0.1:{port}/ready" for cabinet_id, port in ports.items()}
    if central_port:
        probes["central"] = f"http://127.0.0.1:{central_port}/health"
    waiting = dict(probes)
    deadline = time.monotonic() + READY_TIMEOUT_S
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("starting the fleet", total=len(probes))
        while waiting:
            for name, url in list(waiting.items()):
                if children[name].poll() is not None:
                    out.print(f"[red]{name} exited while starting (status {children[name].returncode})[/red]")
                    raise typer.Exit(1)
                if _answers(url):
                    del waiting[name]
                    progress.advance(task)
            if time.monotonic() > deadline:
                out.print(f"[red]not ready within {READY_TIMEOUT_S:.0f} s: {', '.join(sorted(waiting))}[/red]")
                raise typer.Exit(1)
            time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return int(answer.status) == 200
    except (OSError, ValueError):
        return False


def _announce(ids: list[str], ports: dict[str, int], central_port: int, data_dir: Path) -> None:
    table = Table(title="Simulated hospital")
    for column in ("cabinet", "touchscreen", "pharmacy console", "log"):
        table.add_column(column)
    for cabinet_id in ids:
        base = f"http://127.0.0.1:{ports[cabinet_id]}"
        table.add_row(cabinet_id, f"{base}/cabinet/", f"{base}/pharmacy/", str(data_dir / f"{cabinet_id}.log"))
    out.print(table)
    if central_port:
        out.print(f"fleet console: http://127.0.0.1:{central_port}/  (users: adc central user add)")
    out.print("Ctrl-C stops every cabinet and the central")
