"""HL7 v2 inbound over MLLP: ADT and pharmacy orders (RDE) in, one ACK per message, every frame archived.

``MllpListener`` (server) hands each frame to ``InboundProcessor`` (processor), which reads it (inbound, message,
fields), refuses what it cannot take (structures, errors), applies ADT (adt, census) and RDE (rde, orders,
give_code) in one transaction with the archive row, and answers with an ACK (ack). ``open_listener`` wires them
on a store.

Audit: the record of what the hospital told the cabinet is ``hl7_inbound_messages`` (every frame as received,
its outcome, the reason of a refusal, the ACK sent), not the ledger. The ledger is the cabinet's own custody
record (doses, counts, drawers) and stays so: census and order traffic is the hospital's record, replayable
from its systems, and hundreds of messages a day per unit would crowd the per-cabinet chain whose head every
dose append locks. What the ledger needs from HL7 it already carries: a removal names its order and patient,
and an A40 merge leaves ``hl7_patient_merges`` linking the identifier old entries were written with.
Not responsible for: outbound messages (dispense and charges: ``outbound``) or FHIR (``controller.api.fhir``).
"""

from __future__ import annotations

from controller.domain.clock import Clock
from controller.integration.hl7.ack import Acknowledger
from controller.integration.hl7.mllp import DEFAULT_MAX_FRAME_BYTES
from controller.integration.hl7.processor import InboundProcessor, Outcome, Result
from controller.integration.hl7.server import MllpListener
from controller.store.database import Database


async def open_listener(
    db: Database,
    clock: Clock,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    facility: str = "",
    application: str = "OPEN-ADC",
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> MllpListener:
    """A started listener on ``host:port`` (0: ephemeral) applying messages to ``db``; close it when done."""
    processor = InboundProcessor(db, clock, Acknowledger(application=application, facility=facility))
    listener = MllpListener(processor, max_frame_bytes=max_frame_bytes)
    await listener.start(host, port)
    return listener


__all__ = ["Acknowledger", "InboundProcessor", "MllpListener", "Outcome", "Result", "open_listener"]
