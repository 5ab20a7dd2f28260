"""Where scenarios run: the simulated cabinet in process (the default), or a running ``adc serve`` by URL."""

from __future__ import annotations

from dataclasses import dataclass

SIMULATED = "simulated cabinet"


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """A running ``adc serve`` and, for expectations that read the ledger, stock or compartments, an integrator
    client (``adc api client add NAME --scopes 'ledger:read inventory:read devices:read'``)."""

    url: str
    client_id: str | None = None
    client_secret: str | None = None
