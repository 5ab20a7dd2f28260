"""``adc serve``: the whole cabinet in one command: the store (the demo cabinet on first run), the device simulators
(or the real endpoints the settings name), and the API with its pages, until Ctrl-C or SIGTERM.

The simulators run as their own process (``python -m simulators``, as ``adc sim`` does): the controller never
imports them; their printed ``ADC_<DEVICE>=<url>`` lines are the only link. They are stopped on every way out
(a stop, a failed start-up, a port already taken), after the API, so it closes its device links first.

SIGTERM (what systemd sends) means what Ctrl-C means. From either signal to the end of this process and of every
process it started: ``STOP_BUDGET_S``. ``StopSignals`` and ``stop_child`` are shared with ``adc sim``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
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
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The stop, counted from the first SIGINT or SIGTERM. The budget is what the user is promised (README); the rest
# are its shares: uvicorn's wait for open requests (an int for uvicorn), when a child still running is killed,
# and when a watchdog ends whatever is still waiting (killing the children first) with exit status 1.
STOP_BUDGET_S = 5.0
GRACEFUL_S = 1
CHILD_STOP_S = 3.5
CHILD_MIN_WAIT_S = 0.5  # a child asked to stop late still gets this long before it is killed
KILL_WAIT_S = 0.5  # SIGKILL cannot be refused: this only bounds the wait for the kernel to confirm it
WATCHDOG_S = 4.7


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
    from controller.cli.fleet_services import fleet_services
    from controller.cli.hl7_services import hl7_interfaces

    with StopSignals(interrupt=True) as stop:
        settings = Settings()
        api = ApiSettings()
        hl7 = hl7_interfaces(settings)  # ADC_HL7_LISTEN / ADC_HL7_OUTBOUND, run with the API; a bad one stops us here
        first_run = _prepare_store(settings)
        use_simulators = settings.io_board is None if simulators is None else simulators
        process: subprocess.Popen[str] | None = None
        try:
            if use_simulators:
                process, endpoints = _start_simulators(stop)
                devices = {DEVICE_SETTINGS[name]: url for name, url in endpoints.items() if name in DEVICE_SETTINGS}
                settings = settings.model_copy(update=devices)
                api = api.model_copy(update={"sim_control": endpoints.get("ADC_SIM_CONTROL")})
            services = [*hl7.services, *fleet_services(settings, is_simulator=use_simulators)]
            scheme = "https" if api.tls_cert and api.tls_key else "http"
            banner = _banner(f"{scheme}://{host}:{port}/", settings, simulated=use_simulators, first_run=first_run)
            config = uvicorn.Config(
                create_app(settings, api, ledger_observers=hl7.ledger_observers, services=services),
                host=host,
                port=port,
                access_log=False,  # the app logs each request by route template: no ids (MRNs) from paths in logs
                ssl_certfile=str(api.tls_cert) if api.tls_cert and api.tls_key else None,
                ssl_keyfile=str(api.tls_key) if api.tls_cert and api.tls_key else None,
                log_level="info",
                log_config=_log_config(),
                timeout_graceful_shutdown=GRACEFUL_S,  # open requests and WebSockets; then the API's own close
            )
            server = _AnnouncingServer(config, banner, stop)
            # uvicorn handles SIGINT and SIGTERM while it runs, then raises the one it got again: a normal stop.
            with contextlib.suppress(KeyboardInterrupt):
                server.run()
            if not server.started:
                raise typer.Exit(1)
        finally:
            stop.interrupt = False  # a signal from here on must not cut the clean-up short
            if process is not None:
                stop_child(process, deadline=stop.deadline(CHILD_STOP_S))


class StopSignals:
    """SIGTERM means what Ctrl-C means: stop. Inside ``with StopSignals(...) as stop:`` the first SIGINT or SIGTERM
    notes when the stop was asked for (``deadline``), sends the same signal on to the ``children`` if ``forward``,
    and arms a watchdog: ``WATCHDOG_S`` later it kills the children still running and ends this process with exit
    status 1, whatever it is still waiting for. With ``interrupt`` that first signal also raises KeyboardInterrupt,
    as Ctrl-C does, except inside ``deferred()``, which raises it at its end. Any later signal kills the children.
    """

    def __init__(self, *, interrupt: bool, forward: bool = False) -> None:
        self.interrupt = interrupt
        self.forward = forward
        self.children: list[subprocess.Popen[str]] = []
        self.requested_at: float | None = None  # time.monotonic() of the first stop signal
        self._signals = 0
        self._deferring = 0
        self._interrupt_pending = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # Python runs signal handlers there only
            self._previous = {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def requested(self) -> bool:
        return self.requested_at is not None

    def deadline(self, share: float) -> float:
        """``share`` seconds after the stop signal (from now if there was none: a stop on another way out)."""
        return (self.requested_at if self.requested_at is not None else time.monotonic()) + share

    def adopt(self, child: subprocess.Popen[str]) -> subprocess.Popen[str]:
        """A child just started: killed with the others; sent the stop signal now if one came while it started."""
        self.children.append(child)
        if self.forward and self.requested:
            child.send_signal(signal.SIGTERM)
        return child

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block a KeyboardInterrupt must not cut in two (starting a child and adopting it): raised at its end."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if self._interrupt_pending and not self._deferring:
            self._interrupt_pending = False
            raise KeyboardInterrupt

    def request(self, signum: int) -> None:
        """A stop signal arrived (here, or in uvicorn's handler): start the clock and the watchdog, once."""
        if self.requested_at is not None:
            return
        self.requested_at = time.monotonic()
        if self.forward:
            for child in self.children:
                child.send_signal(signum)
        watchdog = threading.Timer(WATCHDOG_S, self._expired)
        watchdog.daemon = True
        watchdog.start()

    def kill_children(self) -> None:
        for child in self.children:
            with contextlib.suppress(OSError):
                child.kill()  # does nothing to a child already reaped

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            self.kill_children()  # asked twice: no more waiting
            return
        self.request(signum)
        if self.interrupt:
            if self._deferring:
                self._interrupt_pending = True
            else:
                raise KeyboardInterrupt

    def _expired(self) -> None:
        self.kill_children()
        with contextlib.suppress(OSError):
            os.write(2, f"adc: not stopped within {STOP_BUDGET_S:g} s: killed what was left\n".encode())
        os._exit(1)


def stop_child(process: subprocess.Popen[str], *, deadline: float, signum: int | None = signal.SIGTERM) -> int:
    """Stop ``process``: send it ``signum`` (None: it has it already), wait until ``deadline`` (``time.monotonic()``,
    at least ``CHILD_MIN_WAIT_S``), then kill it. Returns its exit status (``-SIGKILL`` if it had to be killed)."""
    if signum is not None:
        process.send_signal(signum)  # does nothing to a process already reaped
    try:
        return process.wait(timeout=max(CHILD_MIN_WAIT_S, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        print(f"adc: child process {process.pid} did not stop in time: killed", file=sys.stderr)
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(timeout=KILL_WAIT_S)
        return -signal.SIGKILL


def _log_config() -> dict[str, Any]:
    """uvicorn's logging plus the controller's own loggers (the API's access log by route template, warnings)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["controller"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


class _AnnouncingServer(uvicorn.Server):
    """Prints the URL and credentials once the socket listens (not before: the port may be taken)."""

    def __init__(self, config: uvicorn.Config, banner: Any, stop: StopSignals) -> None:
        super().__init__(config)
        self._banner = banner
        self._stop = stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._stop.request(sig)  # the stop's clock starts at the signal, not when uvicorn has finished
        super().handle_exit(sig, frame)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            out.print(self._banner)


def _prepare_store(settings: Settings) -> bool:
    """Create the schema and the demo cabinet (under ``ADC_CABINET_ID``) when the store is new; bring an existing
    one up to date."""
    url = settings.resolved_database_url()
    new_file = url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists()
    store = build_store(settings, create=new_file)
    try:
        fresh = schema.current_revision(store.db) is None
        schema.upgrade(store.db)
        if fresh:
            layout = demo_layout()
            layout["cabinet"]["id"] = settings.cabinet_id  # one demo layout for every simulated cabinet of a fleet
            with store.db.write() as session:
                summary = seed_cabinet(
                    session,
                    layout,
                    load_formulary(None),
                    ledger=store.ledger(is_simulator=True),
                    hasher=credential_hasher(settings),
                    clock=store.clock,
                )
            out.print(f"created the demo cabinet {summary.cabinet_id} in {url}")
        return fresh
    finally:
        store.close()


def _start_simulators(stop: StopSignals) -> tuple[subprocess.Popen[str], dict[str, str]]:
    command = [sys.executable, "-m", "simulators", "--host", "127.0.0.1", "--serial", "tcp"]
    process: subprocess.Popen[str] | None = None
    try:
        with stop.deferred():
            # A session of their own: Ctrl-C reaches this process only, which stops the API first and them after.
            process = stop.adopt(subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True))
        return process, _read_endpoints(process)
    except BaseException:  # a stop while they start, or they failed: none of them outlives this
        if process is not None:
            stop_child(process, deadline=stop.deadline(CHILD_STOP_S))
        raise


def _read_endpoints(process: subprocess.Popen[str]) -> dict[str, str]:
    endpoints: dict[str, str] = {}
    timer = threading.Timer(SIMULATOR_START_S, process.kill)  # a simulator that never prints must not hang us
    timer.start()
    try:
        assert process.stdout is not None
        while "ADC_SIM_CONTROL" not in endpoints:
            line = process.stdout.readline()
            if not line:
                with contextlib.suppress(subprocess.TimeoutExpired):  # still there: stop_child ends it
                    process.wait(timeout=CHILD_STOP_S)
                raise ConfigurationError("config.invalid", f"the simulators did not start (exit {process.returncode})")
            name, sep, value = line.strip().partition("=")
            if sep:
                endpoints[name] = value
    finally:
        timer.cancel()
    return endpoints


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
    grid.add_row("Ctrl-C (or SIGTERM) stops the cabinet and the simulators.")
    return grid
