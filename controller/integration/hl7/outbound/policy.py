"""When to try an outbox message again.

- A link failure (receiver unreachable, connection dropped, no ACK in time, an answer that is not this
  message's ACK) is the link's fault, not the message's: the sender waits ``delay(n)`` after the n-th failure in a
  row, then reconnects and resends the same message. It never gives up on a link failure.
- A refusal (MSA-1 AE, the receiver found the message wrong; AR, it rejected it, which HL7 also allows for a
  receiver that is down) is retried after ``delay(n)`` for the n-th refusal of that message, as the receiver's
  reference data (the patient, the charge code) may arrive in the meantime; after ``max_refusals`` the message
  is parked for an operator (``adc hl7 outbox --requeue ID`` after fixing the cause). Either way the patient's
  later messages wait behind it, so a credit never reaches billing before its charge.

Delays grow exponentially from ``base_s`` to ``cap_s`` with "equal jitter" (between half and all of the step), so
cabinets that lost the same receiver do not all come back at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 1.0
    cap_s: float = 300.0
    max_refusals: int = 5

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 or more)."""
        step = min(self.cap_s, self.base_s * 2 ** min(max(failures - 1, 0), 60))
        return float(step / 2 + rng.uniform(0.0, step / 2))
