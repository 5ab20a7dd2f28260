"""What a package's barcode says: the GS1 element string or UPC-A read into GTIN, NDC10, lot, expiry and serial.

Responsible for:

- parsing GS1 element strings with biip (AI 01 GTIN, 17 expiry, 10 lot, 21 serial and every other AI biip knows),
  from a GS1 DataMatrix (``]d2``), GS1-128 (``]C1``), DataBar (``]e0``), GS1 QR (``]Q3``) or a GS1 Digital Link
  URI; an expiry day of ``00`` is the last day of the month (biip's reading);
- text whose group separators a scanner dropped (``01<gtin>17<yymmdd>10<lot>21<serial>`` with no 0x1D): it is
  read only when one reading exists. Alternative readings are searched among the AIs a drug package carries
  (``PACKAGE_AIS``), and the tail of a last variable-length field among every AI biip knows; ``10ABC21XYZ``
  could be lot ``ABC21XYZ`` or lot ``ABC`` and serial ``XYZ``, and ``10T230571`` lot ``T230571`` or lot ``T2``
  and count ``(30)571``, so both are refused with ``identifier.ambiguous_gs1`` naming the two readings. Text
  from a source known to keep separators (the camera decoder) is taken as it is: without a GS the last field
  simply runs to the end;
- the NDC: from a UPC-A (number system 3) or a GTIN-14 with ``03`` after the indicator (``controller.domain.ndc``,
  which checks every check digit).

Never raises for bad input: a ``PackageLabel`` without an NDC carries a ``LabelProblem`` saying whether the code
was damaged or malformed (``unreadable``) or is a sound code that carries no NDC (``not_an_ndc``), with the
catalogue code and a sentence saying why.

Not responsible for: finding the item an NDC belongs to or judging the package (``package_verification``), or the
hyphenation of the NDC (10 bare digits need the formulary: ``Ndc.candidates_from_ndc10``).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import biip
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message

from controller.domain.ndc import gs1_check_digit, ndc10_from_gtin, ndc10_from_upca
from controller.errors import InvalidIdentifierError

GS = "\x1d"
# AIM identifiers whose data is a GS1 element string (ISO/IEC 15424 modifiers for FNC1 in first position).
GS1_SYMBOLOGIES = frozenset({"]d2", "]C1", "]e0", "]Q3", "]J1"})
_EAN_UPC = frozenset({"]E0", "]E3"})
_DIGITS = frozenset("0123456789")
# The GS1 "AI encodable character set 82" a lot or serial is written in (biip's pattern for AI 10 and 21).
_CSET82 = re.compile(r"[!%-?A-Z_a-z\"]+")
_MAX_VARIABLE = 20  # AI 10 and 21 hold up to 20 characters

# The AIs a drug package carries: alternative readings of separator-less text are searched among these.
_FIXED_DATE_AIS = ("11", "15", "16", "17")  # production, best before, sell by, expiry: YYMMDD
_VARIABLE_AIS = ("10", "21")  # lot, serial
PACKAGE_AIS = frozenset({"01", *_FIXED_DATE_AIS, *_VARIABLE_AIS})


class LabelStatus(StrEnum):
    NDC = "ndc"  # an NDC was read
    NOT_AN_NDC = "not_an_ndc"  # a sound code that carries no NDC
    UNREADABLE = "unreadable"  # damaged, malformed or ambiguous


@dataclass(frozen=True, slots=True)
class LabelProblem:
    status: LabelStatus  # NOT_AN_NDC or UNREADABLE
    code: str  # catalogue code
    detail: str


@dataclass(frozen=True, slots=True)
class PackageLabel:
    """One barcode's content. ``ndc10`` is set only when nothing failed; ``problem`` says why it is not."""

    text: str  # as decoded or scanned, GS kept
    symbology_id: str
    gtin: str | None = None  # 14 digits (a UPC-A zero-padded)
    ndc10: str | None = None
    lot: str | None = None
    expiry: date | None = None
    serial: str | None = None
    elements: tuple[tuple[str, str], ...] = ()  # every AI and value, in order
    problem: LabelProblem | None = None

    @property
    def status(self) -> LabelStatus:
        return self.problem.status if self.problem is not None else LabelStatus.NDC

    @property
    def is_gs1(self) -> bool:
        return bool(self.elements)

    def gs1_view(self) -> dict[str, str | None] | None:
        """The GS1 identification as the CLI prints it; None when the code carries neither a GTIN nor AIs."""
        if self.gtin is None and not self.elements:
            return None
        return {
            "gtin": self.gtin,
            "ndc10": self.ndc10,
            "expiry": self.expiry.isoformat() if self.expiry else None,
            "lot": self.lot,
            "serial": self.serial,
        }


def read_label(
    text: str, symbology_id: str = "", *, is_gs1: bool = False, separators_kept: bool = False
) -> PackageLabel:
    """Read a barcode's text. ``is_gs1``: the reader said the data is a GS1 element string (e.g. zxing-cpp's
    content type) even if ``symbology_id`` does not; ``separators_kept``: the source is known never to drop the
    group separator (a GS1 string without one is then unambiguous by construction)."""
    body = text.strip("\r\n")
    if is_gs1 or symbology_id in GS1_SYMBOLOGIES:
        return _read_gs1(body, symbology_id, separators_kept=separators_kept)
    if _DIGITS.issuperset(body) and len(body) in (12, 13, 14):
        return _read_digits(body, symbology_id)
    if symbology_id in ("", "]Q1") and body.startswith(("01", "http://", "https://")):
        # No identifier (a keyboard-wedge scanner) or a plain QR: a GS1 string or Digital Link, if it parses as one.
        label = _read_gs1(body, symbology_id, separators_kept=separators_kept)
        if label.gtin is not None:
            return label
    what = "EAN/UPC" if symbology_id in _EAN_UPC else f"symbology {symbology_id or 'none'}"
    return PackageLabel(
        text,
        symbology_id,
        problem=LabelProblem(
            LabelStatus.NOT_AN_NDC,
            "identifier.not_an_ndc",
            f"{what} text {_shown(body)} is neither a GS1 element string nor a UPC-A/GTIN; it carries no NDC",
        ),
    )


# -- UPC-A / EAN-13 / GTIN as bare digits -------------------------------------------------------------------------


def _read_digits(digits: str, symbology_id: str) -> PackageLabel:
    gtin = digits.zfill(14)
    try:
        ndc10 = ndc10_from_gtin(gtin) if len(digits) == 14 else ndc10_from_upca(digits)
    except InvalidIdentifierError as error:
        status = LabelStatus.UNREADABLE if error.code == "identifier.bad_check_digit" else LabelStatus.NOT_AN_NDC
        shown_gtin = None if status is LabelStatus.UNREADABLE else gtin
        return PackageLabel(
            digits, symbology_id, gtin=shown_gtin, problem=LabelProblem(status, error.code, error.detail)
        )
    return PackageLabel(digits, symbology_id, gtin=gtin, ndc10=ndc10)


# -- GS1 element strings ------------------------------------------------------------------------------------------


def _read_gs1(text: str, symbology_id: str, *, separators_kept: bool) -> PackageLabel:
    try:
        elements = parse_element_string(text, separators_kept=separators_kept)
    except InvalidIdentifierError as error:
        return PackageLabel(text, symbology_id, problem=LabelProblem(LabelStatus.UNREADABLE, error.code, error.detail))
    values = {element.ai.ai: element for element in elements}
    pairs = tuple((element.ai.ai, element.value) for element in elements)
    expiry = values["17"].date if "17" in values else None
    lot = values["10"].value if "10" in values else None
    serial = values["21"].value if "21" in values else None
    if "01" not in values:
        problem = LabelProblem(
            LabelStatus.NOT_AN_NDC,
            "identifier.not_an_ndc",
            f"GS1 element string {_shown(text)} has no AI 01 (GTIN), so it names no NDC",
        )
        return PackageLabel(text, symbology_id, None, None, lot, expiry, serial, pairs, problem)
    gtin = values["01"].value
    try:
        ndc10 = ndc10_from_gtin(gtin)
    except InvalidIdentifierError as error:
        status = LabelStatus.UNREADABLE if error.code == "identifier.bad_check_digit" else LabelStatus.NOT_AN_NDC
        problem = LabelProblem(status, error.code, error.detail)
        # A GTIN whose check digit fails is not handed on.
        shown_gtin = None if status is LabelStatus.UNREADABLE else gtin
        return PackageLabel(text, symbology_id, shown_gtin, None, lot, expiry, serial, pairs, problem)
    return PackageLabel(text, symbology_id, gtin, ndc10, lot, expiry, serial, pairs)


def parse_element_string(text: str, *, separators_kept: bool = False) -> tuple[GS1ElementString, ...]:
    """The element strings of ``text`` (raw, GS as 0x1D, optionally a GS1 Digital Link URI).

    Raises ``identifier.bad_gs1`` when it does not parse and ``identifier.ambiguous_gs1`` when separators may
    have been dropped and more than one reading exists.
    """
    if text.startswith(("http://", "https://")):
        return _parse_digital_link(text)
    message: GS1Message | None = None
    error = "empty text"
    if text:
        try:
            parsed = biip.parse(text)
            message, error = parsed.gs1_message, parsed.gs1_message_error or "not a GS1 element string"
        except biip.ParseError as exc:
            error = str(exc)
    if message is not None:
        bad_gtin = next((e for e in message.element_strings if e.ai.ai == "01" and e.gtin is None), None)
        if bad_gtin is not None:
            raise _bad_check_digit(bad_gtin.value)
    if separators_kept or GS in text:
        if message is None:
            raise InvalidIdentifierError("identifier.bad_gs1", f"{_shown(text)}: {error}", value=text)
        return tuple(message.element_strings)
    return _parse_without_separators(text, message, error)


def _parse_digital_link(text: str) -> tuple[GS1ElementString, ...]:
    try:
        uri = biip.parse(text).gs1_digital_link_uri
    except biip.ParseError as exc:
        raise InvalidIdentifierError("identifier.bad_gs1", f"{_shown(text)}: {exc}", value=text) from exc
    if uri is None:
        raise InvalidIdentifierError("identifier.bad_gs1", f"{_shown(text)} is not a GS1 Digital Link URI", value=text)
    bad_gtin = next((e for e in uri.element_strings if e.ai.ai == "01" and e.gtin is None), None)
    if bad_gtin is not None:
        raise _bad_check_digit(bad_gtin.value)
    return tuple(uri.element_strings)


def _bad_check_digit(gtin: str) -> InvalidIdentifierError:
    expected = gs1_check_digit(gtin[:-1]) if _DIGITS.issuperset(gtin) and len(gtin) > 1 else "?"
    return InvalidIdentifierError(
        "identifier.bad_check_digit",
        f"GTIN {gtin!r} in AI 01 ends in check digit {gtin[-1:]}, but its first digits give {expected} (GS1 mod-10); "
        "the code was misprinted or misread",
        value=gtin,
    )


def _parse_without_separators(text: str, message: GS1Message | None, error: str) -> tuple[GS1ElementString, ...]:
    """Separator-less text: accept only the one reading there is."""
    readings = _package_readings(text, limit=3)
    if len(readings) > 1:
        # Name the standard reading (a field without a separator runs on) first, then another one.
        first = message.as_hri() if message is not None else _hri(readings[0])
        second = next(hri for hri in map(_hri, readings) if hri != first)
        raise _ambiguous(text, first, second)
    if len(readings) == 1:
        delimited = GS.join(ai + value for ai, value in readings[0])
        try:
            reparsed = biip.parse(delimited).gs1_message
        except biip.ParseError as exc:  # the package grammar is stricter than biip; this is a bug if it happens
            raise InvalidIdentifierError("identifier.bad_gs1", f"{_shown(text)}: {exc}", value=text) from exc
        if reparsed is None:
            raise InvalidIdentifierError("identifier.bad_gs1", f"{_shown(text)}: not a GS1 element string", value=text)
        elements = tuple(reparsed.element_strings)
    elif message is None:
        raise InvalidIdentifierError("identifier.bad_gs1", f"{_shown(text)}: {error}", value=text)
    else:
        # AIs beyond a package's usual set: safe only if no variable-length field could have swallowed another.
        elements = tuple(message.element_strings)
        variable = [i for i, e in enumerate(elements) if e.ai.separator_required]
        if variable and variable != [len(elements) - 1]:
            raise InvalidIdentifierError(
                "identifier.ambiguous_gs1",
                f"{_shown(text)} has no group separator and its variable-length field "
                f"({elements[variable[0]].ai.ai}) is not the last one, so where it ends is a guess; "
                "set the scanner to transmit GS (0x1D)",
                value=text,
            )
    _refuse_swallowed_tail(text, elements)
    return elements


def _refuse_swallowed_tail(text: str, elements: tuple[GS1ElementString, ...]) -> None:
    """The last field, if variable-length, runs to the end of the text; refuse when its tail is itself a complete
    element string of AIs not yet used (any AI biip knows: a ``(30)`` count, a ``(400)`` order number ...), since
    a dropped separator may have stood there."""
    if not elements or not elements[-1].ai.separator_required:
        return
    last = elements[-1]
    used = {e.ai.ai for e in elements}
    for cut in range(1, len(last.value)):
        try:
            tail = GS1Message.parse(last.value[cut:])
        except biip.ParseError:
            continue
        if tail.element_strings and not used & {e.ai.ai for e in tail.element_strings}:
            head = "".join(f"({e.ai.ai}){e.value}" for e in elements[:-1])
            first = f"{head}({last.ai.ai}){last.value}"
            raise _ambiguous(text, first, f"{head}({last.ai.ai}){last.value[:cut]}{tail.as_hri()}")


def _ambiguous(text: str, first: str, second: str) -> InvalidIdentifierError:
    return InvalidIdentifierError(
        "identifier.ambiguous_gs1",
        f"{_shown(text)} has no group separator and reads as {first} or as {second}; the scanner dropped the "
        "separator (0x1D): set it to transmit GS, or scan the package with the camera",
        value=text,
        readings=[first, second],
    )


Reading = tuple[tuple[str, str], ...]


def _package_readings(text: str, *, limit: int) -> list[Reading]:
    """Every way ``text`` splits into package AIs (each at most once), up to ``limit`` readings."""
    found: list[Reading] = []

    def walk(at: int, used: frozenset[str], sofar: Reading) -> None:
        if len(found) >= limit:
            return
        if at == len(text):
            if sofar:
                found.append(sofar)
            return
        ai = text[at : at + 2]
        if ai in used or ai not in PACKAGE_AIS:
            return
        start = at + 2
        if ai == "01":
            value = text[start : start + 14]
            if len(value) == 14 and _DIGITS.issuperset(value) and gs1_check_digit(value[:-1]) == value[-1]:
                walk(start + 14, used | {ai}, (*sofar, (ai, value)))
        elif ai in _FIXED_DATE_AIS:
            value = text[start : start + 6]
            if _is_yymmdd(value):
                walk(start + 6, used | {ai}, (*sofar, (ai, value)))
        else:
            for end in range(start + 1, min(start + _MAX_VARIABLE, len(text)) + 1):
                value = text[start:end]
                if not _CSET82.fullmatch(value):
                    break
                walk(end, used | {ai}, (*sofar, (ai, value)))

    walk(0, frozenset(), ())
    return found


def _is_yymmdd(value: str) -> bool:
    if len(value) != 6 or not _DIGITS.issuperset(value):
        return False
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:])
    return 1 <= month <= 12 and day <= calendar.monthrange(year, month)[1]


def _hri(reading: Reading) -> str:
    return "".join(f"({ai}){value}" for ai, value in reading)


def _shown(text: str) -> str:
    shown = text.replace(GS, "<GS>")
    return repr(shown if len(shown) <= 80 else shown[:80] + "…")


__all__ = [
    "GS",
    "GS1_SYMBOLOGIES",
    "PACKAGE_AIS",
    "LabelProblem",
    "LabelStatus",
    "PackageLabel",
    "parse_element_string",
    "read_label",
]
