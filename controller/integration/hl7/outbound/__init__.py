"""HL7 v2 outbound: dispense (RDS^O13) and charge (DFT^P03) messages through a durable outbox.

Every dose removal, return and waste queues its messages in ``hl7_outbox`` in the transaction of its ledger entry
(``OutboxRecorder``, a ledger observer: compose, facts); ``OutboxSender`` delivers them over MLLP (client), one
at a time and in order per patient, records every ACK (queue) and retries as ``RetryPolicy`` says. The message
text and its MSH-10 are fixed when queued, so a resend after a crash is the same message and the receiver can
recognise it.

Not responsible for: inbound messages (``controller.integration.hl7``), or choosing the receiver (the settings
``ADC_HL7_OUTBOUND`` and whoever starts the sender).
"""

from __future__ import annotations

from controller.domain.clock import Clock
from controller.integration.hl7.outbound.client import parse_endpoint
from controller.integration.hl7.outbound.errors import OutboundError
from controller.integration.hl7.outbound.policy import RetryPolicy
from controller.integration.hl7.outbound.recorder import OutboxRecorder
from controller.integration.hl7.outbound.sender import OutboxSender
from controller.store.database import Database


async def open_sender(
    db: Database, clock: Clock, *, cabinet_id: str | None, endpoint: str, policy: RetryPolicy | None = None
) -> OutboxSender:
    """A started sender of ``cabinet_id``'s outbox (None: every cabinet's, at the central) to ``endpoint``
    (host:port); close it when done."""
    host, port = parse_endpoint(endpoint, "ADC_HL7_OUTBOUND")
    sender = OutboxSender(db, clock, cabinet_id=cabinet_id, host=host, port=port, policy=policy)
    await sender.start()
    return sender


__all__ = ["OutboundError", "OutboxRecorder", "OutboxSender", "RetryPolicy", "open_sender", "parse_endpoint"]
