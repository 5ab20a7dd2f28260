"""Building the acknowledgement (original mode) a sender gets for each message.

::

    MSH|^~\\&|OPEN-ADC|CAB-4W|<MSH-3>|<MSH-4>|<now>||ACK^<MSH-9.2>^ACK|<our id>|<MSH-11>|<MSH-12>
    MSA|AA/AE/AR|<incoming MSH-10>|<short text>
    ERR|<ELD (v2.3/2.4 readers)>|<ERL: segment^occurrence^field^repetition^component>|<table 0357 code^text^HL70357>
       |E|<catalogue code^title^99ADC>|||<what was wrong, for a person>

The ACK always uses the standard separators, whatever the incoming message declared; every value copied into it
is escaped for them. MSA-2 echoes the incoming MSH-10 exactly, as the sender matches the ACK by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from controller.integration.hl7.errors import AckCode, Hl7Error
from controller.integration.hl7.inbound import PROCESSING_IDS, MessageHeader, is_v2_version

DEFAULT_VERSION = "2.5.1"
MSA_TEXT_LIMIT = 80

# HL7 table 0357, message error condition codes.
TABLE_0357 = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}

_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}


def escape(value: str) -> str:
    """A value made safe for a field under the standard separators (line breaks become spaces)."""
    return "".join(_ESCAPES.get(c, " " if c in "\r\n" else c) for c in value)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"


@dataclass(frozen=True, slots=True)
class Acknowledger:
    """Who we are in the ACK's MSH-3/MSH-4."""

    application: str = "OPEN-ADC"
    facility: str = ""

    def build(
        self,
        code: AckCode,
        header: MessageHeader | None,
        *,
        ack_control_id: str,
        now: datetime,
        error: Hl7Error | None = None,
    ) -> str:
        segments = [
            self._msh(header, ack_control_id, now),
            _join(["MSA", code.value, escape(header.control_id if header else ""), escape(_short(error))]),
        ]
        if error is not None:
            segments.append(_err(error))
        return "\r".join(segments) + "\r"

    def _msh(self, header: MessageHeader | None, ack_control_id: str, now: datetime) -> str:
        trigger = header.trigger_event if header else ""
        return _join(
            [
                "MSH",
                "^~\\&",
                escape(self.application),
                escape(self.facility),
                _components(header.sender.application if header else ()),
                _components(header.sender.facility if header else ()),
                timestamp(now),
                "",
                f"ACK^{escape(trigger)}^ACK" if trigger else "ACK",
                escape(ack_control_id),
                header.processing_id if header and header.processing_id in PROCESSING_IDS else "P",
                escape(header.version) if header and is_v2_version(header.version) else DEFAULT_VERSION,
            ]
        )


def _join(fields: list[str]) -> str:
    if fields[0] == "MSH":  # MSH-1 is the separator itself, so MSH-2 follows "MSH|" directly
        return "MSH|" + "|".join(fields[1:]).rstrip("|")
    return "|".join(fields).rstrip("|")


def _components(values: tuple[str, ...]) -> str:
    return "^".join(escape(v) for v in values).rstrip("^")


def _short(error: Hl7Error | None) -> str:
    if error is None:
        return ""
    text = str(error)
    return text if len(text) <= MSA_TEXT_LIMIT else text[: MSA_TEXT_LIMIT - 1] + "…"


def _err(error: Hl7Error) -> str:
    code = error.hl7_error
    meaning = TABLE_0357.get(code, "Application internal error")
    location = error.location
    erl = "^".join(escape(part) for part in location.erl()) if location else ""
    eld = (
        "^".join([escape(location.segment), str(location.occurrence), str(location.field or "")]) if location else "^^"
    ) + f"^{code}&{escape(meaning)}&HL70357"
    return _join(
        [
            "ERR",
            eld,
            erl,
            f"{code}^{escape(meaning)}^HL70357",
            "E",
            f"{escape(error.code)}^{escape(error.definition.title)}^99ADC",
            "",
            "",
            escape(str(error)),
        ]
    )
