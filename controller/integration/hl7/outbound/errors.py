"""Why a delivery attempt failed: a typed error whose catalogue code (``hl7.outbound_*``) says which way."""

from __future__ import annotations

from controller.errors import Category, ControllerError

# Failures of the link, not of the message: retried for as long as it takes.
LINK_FAILURES = frozenset(
    {"hl7.outbound_unreachable", "hl7.outbound_disconnected", "hl7.outbound_no_ack", "hl7.outbound_bad_ack"}
)


class OutboundError(ControllerError):
    category = Category.INTEGRATION

    @property
    def is_link_failure(self) -> bool:
        return self.code in LINK_FAILURES
