"""``adc hl7``: the HL7 v2 interface of the controller.

``adc hl7 listen`` runs the MLLP listener (ADT and RDE in, one ACK each, every frame archived) until Ctrl-C.
``adc hl7 outbox`` shows the queue of outbound dispense and charge messages (``hl7_outbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Annotated

import typer

from controller.bootstrap import build_store
from controller.cli.hl7_outbox import outbox
from controller.cli.options import DatabaseUrl, settings_from_env
from controller.domain.clock import Clock
from controller.integration.hl7 import open_listener
from controller.store import schema
from controller.store.database import Database

MLLP_PORT = 2575  # the IANA port for HL7 over MLLP

hl7_app = typer.Typer(
    help="HL7 v2 interface: the MLLP listener for ADT and pharmacy orders; the outbox of dispenses and charges.",
    no_args_is_help=True,
)
hl7_app.command("outbox")(outbox)


@hl7_app.command("listen")
def listen(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless you mean otherwise).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.", min=0, max=65535)] = MLLP_PORT,
    database_url: DatabaseUrl = None,
) -> None:
    """Receive ADT and RDE messages over MLLP, apply them to the store and acknowledge each; run until Ctrl-C."""
    store = build_store(settings_from_env(database_url))
    try:
        schema.require_current(store.db)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(_serve(store.db, store.clock, host, port, store.settings.cabinet_id))
    finally:
        store.close()


async def _serve(db: Database, clock: Clock, host: str, port: int, cabinet_id: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on some platforms
            loop.add_signal_handler(sig, stop.set)
    listener = await open_listener(db, clock, host=host, port=port, facility=cabinet_id)
    bound_host, bound_port = listener.address
    sys.stdout.write(f"HL7 MLLP listening on {bound_host}:{bound_port} (cabinet {cabinet_id}); Ctrl-C stops\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await listener.close()
        sys.stdout.write(f"HL7 listener stopped after {listener.frames_answered} message(s)\n")
        sys.stdout.flush()
