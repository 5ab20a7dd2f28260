"""The cabinet's side of the fleet link as a service of ``adc serve``: the forwarder, when ``ADC_FLEET_NATS_URL``
is set, signing with the cabinet's key (``fleet.key`` in the data directory, made on first use; register its
public half at the central with ``adc central register``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.fleet import protocol as p
from controller.fleet.configuration import through_engine
from controller.fleet.forwarder import Forwarder
from controller.settings import Settings
from controller.store.ledger import Ledger

if TYPE_CHECKING:
    from controller.api.runtime import ApiRuntime

Service = Callable[["ApiRuntime"], AbstractAsyncContextManager[object]]


def key_path(settings: Settings) -> Path:
    return settings.fleet_key_file or settings.data_dir / "fleet.key"


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        return p.load_private_key(path.read_text().strip())
    key = p.new_signing_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by this account only
    with os.fdopen(descriptor, "w") as handle:
        handle.write(p.private_key_text(key) + "\n")
    return key


def fleet_services(settings: Settings, *, is_simulator: bool) -> list[Service]:
    if not settings.fleet_nats_url:
        return []
    p.check_cabinet_id(settings.cabinet_id)
    key = load_or_create_key(key_path(settings))
    link = _Link(settings.cabinet_id, settings.fleet_nats_url, key, is_simulator)
    return [functools.partial(_forwarding, link)]


@dataclass(frozen=True)
class _Link:
    cabinet_id: str
    nats_url: str
    key: Ed25519PrivateKey
    is_simulator: bool


@asynccontextmanager
async def _forwarding(link: _Link, runtime: ApiRuntime) -> AsyncIterator[object]:
    ledger = Ledger(link.cabinet_id, runtime.clock, is_simulator=link.is_simulator)
    forwarder = Forwarder(runtime.db, ledger, link.key, link.nats_url, runtime.clock,
                          configure=through_engine(runtime.running_engine))  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(forwarder.run(stop), name="fleet:forwarder")
    try:
        yield forwarder
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
