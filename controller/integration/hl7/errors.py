"""Why an inbound message was refused, and where in the message: the error an ACK's MSA and ERR segments carry.

Each refusal names a catalogue code (``hl7.*`` in ``controller/errors/catalogue.toml``, whose ``hl7_error`` is the
table 0357 code for ERR-3) and, where it can, the segment/field at fault (ERR-2). Whether the ACK says AR (the
receiver rejects what it does not support or cannot parse: MSH-level problems) or AE (the message was read but
is wrong or inconsistent) follows from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from controller.errors import Category, ControllerError


class AckCode(StrEnum):
    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


# Refusals of the message as a whole, decided from its framing and MSH: "application reject".
_REJECTS = frozenset(
    {
        "hl7.not_a_message",
        "hl7.batch_not_supported",
        "hl7.bad_encoding_characters",
        "hl7.unparseable",
        "hl7.message_too_large",
        "hl7.unsupported_message_type",
        "hl7.unsupported_event",
        "hl7.unsupported_processing_id",
        "hl7.unsupported_version",
        "hl7.unsupported_order_control",
    }
)


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a message, as ERR-2 (ERL) names it: segment id, which occurrence of that segment (1-based),
    field, repetition, component, subcomponent. Fields after ``segment`` are None when not narrowed down."""

    segment: str
    occurrence: int = 1
    field: int | None = None
    repetition: int | None = None
    component: int | None = None
    subcomponent: int | None = None

    def erl(self) -> list[str]:
        """The ERL components, trailing empty ones dropped."""
        parts = [self.segment, str(self.occurrence)]
        for value in (self.field, self.repetition, self.component, self.subcomponent):
            if value is None:
                break
            parts.append(str(value))
        return parts

    def __str__(self) -> str:
        text = self.segment if self.occurrence == 1 else f"{self.segment}[{self.occurrence}]"
        if self.field is not None:
            text += f"-{self.field}"
            if self.component is not None:
                text += f".{self.component}"
                if self.subcomponent is not None:
                    text += f".{self.subcomponent}"
        return text


class Hl7Error(ControllerError):
    """An inbound message refused: the code names the rule, the detail says what was wrong, ``location`` where."""

    category = Category.INTEGRATION

    def __init__(self, code: str, detail: str, *, location: Location | None = None, **context: Any) -> None:
        super().__init__(code, detail, **context)
        self.location = location

    @property
    def ack_code(self) -> AckCode:
        return AckCode.REJECT if self.code in _REJECTS else AckCode.ERROR

    @property
    def hl7_error(self) -> int:
        return self.definition.hl7_error

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location is not None else ""
        return f"[{self.code}]{where} {self.detail}"
