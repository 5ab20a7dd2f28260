"""From a frame's bytes to a parsed message and its header, or to the reason it cannot be one. Never raises.

Real feeds differ from the standard in small ways this module absorbs before parsing: segments ended by LF or
CRLF instead of CR, a UTF-8 byte-order mark, blank lines, trailing spaces. Text is read as UTF-8 (the preferred
HL7 character set since v2.8) and, when it is not valid UTF-8, as ISO 8859-1 (the usual older MSH-18 value),
which cannot fail, so a stray byte never stops a message.

``content_hash`` identifies what the message says: SHA-256 of the normalised text with MSH-7 (its timestamp)
left out, because interface engines restamp a message when they resend it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from controller.integration.hl7.errors import Hl7Error, Location
from controller.integration.hl7.message import Hl7Message, Segment

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LEADING = "\ufeff \t\r\n\x00"
_V2_VERSION = re.compile(r"2\.\d+(\.\d+)*")
MAX_SENDER = 255
MAX_CONTROL_ID = 199
PROCESSING_IDS = frozenset({"P", "T", "D"})  # HL7 table 0103: production, training, debugging


@dataclass(frozen=True, slots=True)
class Party:
    """An application and facility (MSH-3/4 or MSH-5/6), each as its HD components, unescaped."""

    application: tuple[str, ...]
    facility: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MessageHeader:
    sender: Party
    receiver: Party
    message_type: str  # MSH-9.1
    trigger_event: str  # MSH-9.2
    structure: str  # MSH-9.3 as sent; not trusted (feeds send wrong ones)
    control_id: str  # MSH-10
    processing_id: str  # MSH-11.1
    version: str  # MSH-12.1
    sender_key: str  # MSH-3 "|" MSH-4 as received: with MSH-10, what identifies a message

    @property
    def type_label(self) -> str:
        return f"{self.message_type}^{self.trigger_event}" if self.trigger_event else self.message_type


@dataclass(frozen=True, slots=True)
class Inbound:
    payload: bytes
    content_hash: str
    message: Hl7Message | None = None
    header: MessageHeader | None = None
    problem: Hl7Error | None = None  # set when the frame cannot be processed at all


def decode(payload: bytes) -> str:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def normalise(text: str) -> str:
    """CR between segments, no BOM, no blank lines, no trailing whitespace."""
    lines = (line.rstrip() for line in _LINE_BREAK.split(text.lstrip(_LEADING)))
    return "\r".join(line for line in lines if line)


def read_frame(payload: bytes) -> Inbound:
    text = normalise(decode(payload))
    fallback_hash = hashlib.sha256(payload).hexdigest()
    try:
        _check_envelope(text)
        content_hash = _content_hash(text)
        message = Hl7Message.parse(text)
        header = read_header(message.header)
    except Hl7Error as problem:
        return Inbound(payload, fallback_hash, problem=problem)
    try:
        _check_header(header, message.header)
    except Hl7Error as problem:
        return Inbound(payload, content_hash, message, header, problem)
    return Inbound(payload, content_hash, message, header)


def _check_envelope(text: str) -> None:
    if text[:3] in ("FHS", "BHS"):
        raise Hl7Error(
            "hl7.batch_not_supported",
            f"the frame holds an HL7 batch ({text[:3]} first); send each message in its own MLLP frame",
            location=Location(text[:3]),
        )
    if text[:3] != "MSH":
        shown = "".join(c if c.isascii() and c.isprintable() else "?" for c in text[:20]) if text else "nothing"
        raise Hl7Error(
            "hl7.not_a_message",
            f"the frame starts with {shown!r}; an HL7 v2 message starts with MSH",
            location=Location("MSH"),
        )
    separator = text[3:4]
    if not separator or separator.isalnum() or separator.isspace():
        raise Hl7Error(
            "hl7.bad_encoding_characters",
            f"MSH-1 field separator {separator!r} is not a printable non-alphanumeric character",
            location=Location("MSH", field=1),
        )
    end = text.find(separator, 4)
    encoding = text[4:end] if end >= 0 else ""
    distinct = set(encoding) | {separator}
    if (
        len(encoding) not in (4, 5)  # v2.7 adds a fifth, the truncation character
        or len(distinct) != len(encoding) + 1
        or any(c.isalnum() or c.isspace() for c in encoding)
    ):
        raise Hl7Error(
            "hl7.bad_encoding_characters",
            f"MSH-2 encoding characters {encoding!r} must be 4 (or 5) distinct printable non-alphanumeric "
            f"characters other than the field separator {separator!r}, as in ^~\\&",
            location=Location("MSH", field=2),
        )


def _content_hash(text: str) -> str:
    header, _, rest = text.partition("\r")
    fields = header.split(header[3])
    if len(fields) > 6:
        fields[6] = ""  # MSH-7 (MSH-1 is the separator itself, so MSH-n is fields[n - 1])
    return hashlib.sha256((header[3].join(fields) + "\r" + rest).encode("utf-8")).hexdigest()


def _hd(segment: Segment, field: int) -> tuple[str, ...]:
    return tuple(segment.value(field, component) for component in (1, 2, 3))


def _raw_field(text: str, field: int) -> str:
    fields = text.split(text[3])
    return fields[field - 1] if len(fields) >= field else ""


def read_header(msh: Segment) -> MessageHeader:
    raw = msh.text  # as received: the sender key keeps MSH-3/4 byte for byte
    return MessageHeader(
        sender=Party(_hd(msh, 3), _hd(msh, 4)),
        receiver=Party(_hd(msh, 5), _hd(msh, 6)),
        message_type=msh.value(9, 1).upper(),
        trigger_event=msh.value(9, 2).upper(),
        structure=msh.value(9, 3).upper(),
        control_id=msh.value(10),
        processing_id=msh.value(11, 1).upper(),
        version=msh.value(12, 1),
        sender_key=f"{_raw_field(raw, 3)}|{_raw_field(raw, 4)}",
    )


def is_v2_version(version: str) -> bool:
    return bool(_V2_VERSION.fullmatch(version))


def _check_header(header: MessageHeader, msh: Segment) -> None:
    if not header.control_id:
        raise Hl7Error(
            "hl7.field_missing",
            "MSH-10 message control id is empty; without it a resend cannot be recognised",
            location=msh.location(10),
        )
    if len(header.control_id) > MAX_CONTROL_ID:
        raise Hl7Error(
            "hl7.bad_value",
            f"MSH-10 message control id has {len(header.control_id)} characters; at most {MAX_CONTROL_ID}",
            location=msh.location(10),
        )
    if len(header.sender_key) > MAX_SENDER:
        raise Hl7Error(
            "hl7.bad_value",
            f"MSH-3 and MSH-4 together have {len(header.sender_key)} characters; at most {MAX_SENDER}",
            location=msh.location(3),
        )
    if header.processing_id not in PROCESSING_IDS:
        raise Hl7Error(
            "hl7.unsupported_processing_id",
            f"MSH-11 processing id {header.processing_id!r} is not P, T or D (HL7 table 0103)",
            location=msh.location(11),
        )
    if not is_v2_version(header.version):
        raise Hl7Error(
            "hl7.unsupported_version",
            f"MSH-12 version {header.version!r} is not an HL7 version 2.x",
            location=msh.location(12),
        )
    if not header.message_type:
        raise Hl7Error("hl7.unsupported_message_type", "MSH-9 message type is empty", location=msh.location(9, 1))
