"""Which message types and trigger events this listener applies, mapped to their structure and handler.

The trigger event comes from MSH-9.2 (for ADT, EVN-1 when MSH-9.2 is empty); MSH-9.3 is never trusted, since real
feeds send structure ids HL7 does not define (``ADT_A08``) or the wrong one. The structure is ours to know:
A01/A04/A08/A13 share ADT_A01, A11 and A12 have ADT_A09/ADT_A12, A40 is ADT_A39.

Everything else is refused with AR: an unknown message type (ORM, ORU, RSP, RDS, DFT, RGV, ACK ...) with table
0357 code 200, a known type with an event this cabinet does not act on with 201. An ACK arriving here is
misrouted (acknowledgements of our outbound messages come back on the outbound connection) and is refused too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from controller.integration.hl7 import adt, rde
from controller.integration.hl7.census import Context
from controller.integration.hl7.errors import Hl7Error
from controller.integration.hl7.inbound import MessageHeader
from controller.integration.hl7.message import Hl7Message

Handler = Callable[[Session, Hl7Message, Context], None]


@dataclass(frozen=True, slots=True)
class Route:
    message_type: str
    trigger_event: str
    structure: str
    handler: Handler


_ROUTES = {
    (r.message_type, r.trigger_event): r
    for r in (
        Route("ADT", "A01", "ADT_A01", adt.admit),
        Route("ADT", "A04", "ADT_A01", adt.admit),
        Route("ADT", "A08", "ADT_A01", adt.update_patient),
        Route("ADT", "A13", "ADT_A01", adt.admit),
        Route("ADT", "A02", "ADT_A02", adt.transfer),
        Route("ADT", "A03", "ADT_A03", adt.discharge),
        Route("ADT", "A11", "ADT_A09", adt.discharge),
        Route("ADT", "A12", "ADT_A12", adt.cancel_transfer),
        Route("ADT", "A40", "ADT_A39", adt.merge),
        Route("RDE", "O11", "RDE_O11", rde.apply),
        Route("RDE", "O25", "RDE_O25", rde.apply),
        Route("RDE", "O01", "RDE_O01", rde.apply),  # v2.3/2.4 name of the encoded order
    )
}
SUPPORTED = tuple(sorted(_ROUTES))


def trigger_of(header: MessageHeader, message: Hl7Message) -> str:
    if header.trigger_event:
        return header.trigger_event
    evn = message.first("EVN")
    return evn.value(1).upper() if evn is not None and header.message_type == "ADT" else ""


def find_route(header: MessageHeader, message: Hl7Message) -> Route:
    msh = message.header
    known_types = {t for t, _ in _ROUTES}
    if header.message_type not in known_types:
        raise Hl7Error(
            "hl7.unsupported_message_type",
            f"message type {header.message_type!r} is not processed here; this listener takes "
            f"{' and '.join(sorted(known_types))}",
            location=msh.location(9, 1),
        )
    trigger = trigger_of(header, message)
    route = _ROUTES.get((header.message_type, trigger))
    if route is None:
        events = ", ".join(e for t, e in SUPPORTED if t == header.message_type)
        raise Hl7Error(
            "hl7.unsupported_event",
            f"{header.message_type}^{trigger or '(no trigger event)'} is not processed here; "
            f"{header.message_type} events taken: {events}",
            location=msh.location(9, 2),
        )
    return route
