"""What ``adc central serve`` runs in one process, until SIGINT or SIGTERM: the ingest workers and the downlink
publishers (``CentralService``), the fleet console (uvicorn), and optionally the hospital's HL7 interfaces: the
MLLP listener for ADT and orders and the sender of every cabinet's dispense messages (queued by ``CentralOutbox``
in the ingest's own transaction). A stop ends the console and the listener first, then the ingest, then the
sender. Imported only when the command runs: the other ``adc`` commands need not load the web stack."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from rich.console import Console

from controller.api.central.app import create_central_app
from controller.domain.clock import Clock
from controller.domain.credentials import CredentialHasher
from controller.errors import ConfigurationError
from controller.fleet.central_service import CentralConfig, CentralService
from controller.integration.hl7 import open_listener
from controller.integration.hl7.outbound import OutboxSender, open_sender, parse_endpoint
from controller.integration.hl7.outbound.central import CentralOutbox
from controller.integration.hl7.server import MllpListener
from controller.store.database import Database


@dataclass(frozen=True)
class CentralOptions:
    nats_url: str
    workers: int
    host: str
    port: int  # 0: no console
    hl7_listen: str | None
    hl7_outbound: str | None
    client_key: bytes | None = None  # the HS256 key of integrators' tokens, shared by every central process


class ConsoleServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the process owns SIGINT/SIGTERM and stops everything together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class CentralProcess:
    def __init__(self, db: Database, clock: Clock, hasher: CredentialHasher, options: CentralOptions) -> None:
        self.db = db
        self.clock = clock
        self.options = options
        self.feed = parse_endpoint(options.hl7_listen, "--hl7-listen") if options.hl7_listen else None
        if options.hl7_outbound:
            parse_endpoint(options.hl7_outbound, "--hl7-outbound")
        # Every dose entry's messages are queued with the batch that applies it; sent from the primary, never a
        # replica (a replica behind the primary would send a delivered message again).
        self.primary = Database(db.writer, db.writer)
        observers = [CentralOutbox()] if options.hl7_outbound else []
        config = CentralConfig(workers=options.workers)
        self.service = CentralService(db, options.nats_url, clock, config=config, observers=observers)
        self.console = None
        if options.port:
            app = create_central_app(db, clock, hasher, client_key=options.client_key)
            config_ = uvicorn.Config(app, host=options.host, port=options.port, access_log=False, log_level="warning")
            self.console = ConsoleServer(config_)

    async def run(self, out: Console) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        o = self.options
        where = f"; fleet console on http://{o.host}:{o.port}/" if self.console else ""
        out.print(f"central: {o.workers} ingest worker(s) on {o.nats_url}{where}; Ctrl-C stops")
        listener = await self._listen(out)
        sender: OutboxSender | None = None
        if o.hl7_outbound:
            sender = await open_sender(self.primary, self.clock, cabinet_id=None, endpoint=o.hl7_outbound)
            out.print(f"HL7 dispense messages of every cabinet to {o.hl7_outbound} (MLLP)")
        tasks = [asyncio.create_task(self.service.run(stop))]
        if self.console is not None:
            tasks.append(asyncio.create_task(self.console.serve()))
        await stop.wait()
        if self.console is not None:
            self.console.should_exit = True
        if listener is not None:
            await listener.close()
        await asyncio.gather(*tasks)
        if sender is not None:
            await sender.close()

    async def _listen(self, out: Console) -> MllpListener | None:
        if self.feed is None:
            return None
        try:
            listener = await open_listener(self.db, self.clock, host=self.feed[0], port=self.feed[1],
                                           facility="CENTRAL")  # fmt: skip
        except OSError as exc:
            raise ConfigurationError("config.invalid", f"cannot listen for HL7 on {self.options.hl7_listen}: "
                                     f"{exc}") from exc  # fmt: skip
        out.print(f"HL7 ADT and orders on {listener.address[0]}:{listener.address[1]} (MLLP)")
        return listener

    @property
    def console_failed(self) -> bool:
        return self.console is not None and not self.console.started

    @property
    def applied(self) -> int:
        return sum(w.stats.applied for w in self.service.workers)
