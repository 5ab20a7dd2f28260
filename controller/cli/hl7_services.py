"""The HL7 interfaces ``adc serve`` runs beside the API, from the settings: the MLLP listener for ADT and orders
(``ADC_HL7_LISTEN=host:port``) and the outbox of dispense and charge messages (``ADC_HL7_OUTBOUND=host:port``:
every dose entry is queued by a ledger observer and a sender delivers the queue).

Composed here, at the top layer, because the API may not import ``controller.integration``: the API takes the
ledger observers and the services as plain callables. A bad setting fails before anything starts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.integration.hl7 import open_listener
from controller.integration.hl7.outbound import OutboxRecorder, open_sender, parse_endpoint
from controller.settings import Settings
from controller.store.ledger import LedgerObserver

if TYPE_CHECKING:
    from controller.api.app import Service
    from controller.api.runtime import ApiRuntime

log = logging.getLogger("controller.hl7")


@dataclass(frozen=True)
class Hl7Interfaces:
    ledger_observers: list[LedgerObserver] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)


def hl7_interfaces(settings: Settings) -> Hl7Interfaces:
    interfaces = Hl7Interfaces()
    if settings.hl7_listen:
        host, port = parse_endpoint(settings.hl7_listen, "ADC_HL7_LISTEN")
        interfaces.services.append(functools.partial(_listening, settings.cabinet_id, host, port))
    if settings.hl7_outbound:
        parse_endpoint(settings.hl7_outbound, "ADC_HL7_OUTBOUND")
        interfaces.ledger_observers.append(OutboxRecorder())
        interfaces.services.append(functools.partial(_sending, settings.cabinet_id, settings.hl7_outbound))
    return interfaces


@asynccontextmanager
async def _listening(cabinet_id: str, host: str, port: int, runtime: ApiRuntime) -> AsyncIterator[object]:
    listener = await open_listener(runtime.db, runtime.clock, host=host, port=port, facility=cabinet_id)
    log.info("HL7 listener on %s:%d", *listener.address)
    try:
        yield listener
    finally:
        await listener.close()


@asynccontextmanager
async def _sending(cabinet_id: str, endpoint: str, runtime: ApiRuntime) -> AsyncIterator[object]:
    sender = await open_sender(runtime.db, runtime.clock, cabinet_id=cabinet_id, endpoint=endpoint)
    log.info("HL7 outbox sending to %s", endpoint)
    try:
        yield sender
    finally:
        await sender.close()
