"""``adc serve``: the whole cabinet in one command: the store (the demo cabinet on first run), the device simulators
(or the real endpoints the settings name), and the API with its pages, until Ctrl-C.

The simulators run as their own process (``python -m simulators``, as ``adc sim`` does): the controller never
imports them; their printed ``ADC_<DEVICE>=<url>`` lines are the only link. They are stopped on the way out.
"""

from __future__ import annotations

import contextlib
import copy
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.table import Table
from uvicorn.config import LOGGING_CONFIG

from controller.api.settings import ApiSettings
from controller.bootstrap import build_store, credential_hasher
from controller.errors import ConfigurationError
from controller.settings import Settings
from controller.store import schema
from controller.store.formulary_file import load_formulary
from controller.store.seed import demo_layout, seed_cabinet

out = Console()
DEVICE_SETTINGS = {
    "ADC_IO_BOARD": "io_board",
    "ADC_PILL_COUNTER": "pill_counter",
    "ADC_SCANNER": "scanner",
    "ADC_LABEL_PRINTER": "label_printer",
    "ADC_CAMERA": "camera",
}
SIMULATOR_START_S = 60.0


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    simulators: Annotated[
        bool | None,
        typer.Option(
            "--simulators/--no-simulators",
            help="Start the device simulators (default: unless ADC_IO_BOARD names a device).",
        ),
    ] = None,
) -> None:
    """Run the simulated cabinet: store, device simulators, API and pages; print the URL and demo credentials."""
    from controller.api.app import create_app  # here: the other adc commands need not load the web stack
    from controller.cli.hl7_services import hl7_interfaces

    settings = Settings()
    api = ApiSettings()
    hl7 = hl7_interfaces(settings)  # ADC_HL7_LISTEN / ADC_HL7_OUTBOUND, run with the API; a bad one stops us here
    first_run = _prepare_store(settings)
    use_simulators = settings.io_board is None if simulators is None else simulators
    process: subprocess.Popen[str] | None = None
    try:
        if use_simulators:
            process, endpoints = _start_simulators()
            devices = {DEVICE_SETTINGS[name]: url for name, url in endpoints.items() if name in DEVICE_SETTINGS}
            settings = settings.model_copy(update=devices)
            api = api.model_copy(update={"sim_control": endpoints.get("ADC_SIM_CONTROL")})
        scheme = "https" if api.tls_cert and api.tls_key else "http"
        banner = _banner(f"{scheme}://{host}:{port}/", settings, simulated=use_simulators, first_run=first_run)
        config = uvicorn.Config(
            create_app(settings, api, ledger_observers=hl7.ledger_observers, services=hl7.services),
            host=host,
            port=port,
            access_log=False,  # the app logs each request by route template: no ids (MRNs) from paths in logs
            ssl_certfile=str(api.tls_cert) if api.tls_cert and api.tls_key else None,
            ssl_keyfile=str(api.tls_key) if api.tls_cert and api.tls_key else None,
            log_level="info",
            log_config=_log_config(),
        )
        server = _AnnouncingServer(config, banner)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled: a normal stop
            server.run()
        if not server.started:
            raise typer.Exit(1)
    finally:
        if process is not None:
            _stop(process)


def _log_config() -> dict[str, Any]:
    """uvicorn's logging plus the controller's own loggers (the API's access log by route template, warnings)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["controller"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


class _AnnouncingServer(uvicorn.Server):
    """Prints the URL and credentials once the socket listens (not before: the port may be taken)."""

    def __init__(self, config: uvicorn.Config, banner: Any) -> None:
        super().__init__(config)
        self._banner = banner

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            out.print(self._banner)


def _prepare_store(settings: Settings) -> bool:
    """Create the schema and the demo cabinet when the store is new; bring an existing one up to date."""
    url = settings.resolved_database_url()
    new_file = url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()
    store = build_store(settings, create=new_file)
    try:
        fresh = schema.current_revision(store.db) is None
        schema.upgrade(store.db)
        if fresh:
            with store.db.write() as session:
                summary = seed_cabinet(
                    session,
                    demo_layout(),
                    load_formulary(None),
                    ledger=store.ledger(is_simulator=True),
                    hasher=credential_hasher(settings),
                    clock=store.clock,
                )
            out.print(f"created the demo cabinet {summary.cabinet_id} in {url}")
        return fresh
    finally:
        store.close()


def _start_simulators() -> tuple[subprocess.Popen[str], dict[str, str]]:
    command = [sys.executable, "-m", "simulators", "--host", "127.0.0.1", "--serial", "tcp"]
    # A session of their own: Ctrl-C reaches this process only, which stops the API first and the simulators after.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    endpoints: dict[str, str] = {}
    timer = threading.Timer(SIMULATOR_START_S, process.kill)  # a simulator that never prints must not hang us
    timer.start()
    try:
        assert process.stdout is not None
        while "ADC_SIM_CONTROL" not in endpoints:
            line = process.stdout.readline()
            if not line:
                raise ConfigurationError("config.invalid", f"the simulators did not start (exit {process.wait()})")
            name, sep, value = line.strip().partition("=")
            if sep:
                endpoints[name] = value
    finally:
        timer.cancel()
    return process, endpoints


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _banner(url: str, settings: Settings, *, simulated: bool, first_run: bool) -> Any:
    table = Table(title=f"open-adc: cabinet {settings.cabinet_id} at {url}", title_justify="left")
    for column in ("user", "name", "role", "PIN"):
        table.add_column(column)
    layout = demo_layout()
    if layout["cabinet"]["id"] == settings.cabinet_id:
        for user in layout["user"]:
            table.add_row(user["id"], user["name"], ", ".join(user["roles"]), str(user["pin"]))
    lines = [
        f"cabinet touchscreen: {url}cabinet/   pharmacy console: {url}pharmacy/   API: {url}docs",
        "devices: simulated (python -m simulators)" if simulated else "devices: as ADC_* settings name them",
    ]
    if first_run:
        lines.append("demo data created on this first run")
    grid = Table.grid()
    grid.add_row(table)
    for line in lines:
        grid.add_row(line)
    grid.add_row("Ctrl-C stops the cabinet (and the simulators).")
    return grid
