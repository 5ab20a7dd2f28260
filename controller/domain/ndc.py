"""National Drug Codes and the UPC-A / GTIN-14 barcodes that carry them.

Responsible for:

- holding an NDC canonically as its three digit segments (labeler, product, package) in the segmentation
  it was printed in: 4-4-2, 5-3-2 or 5-4-1 (10 digits), 5-4-2 (the 11-digit billing form) or 6-4-2 (the
  12-digit form the FDA finalised for 2033);
- parsing printed NDCs strictly, and converting between the 10-digit forms and the 11-digit billing form
  as far as arithmetic alone decides;
- the GS1 arithmetic: UPC-A = ``3`` + NDC10 + check digit; GTIN-14 = packaging indicator + ``03`` + NDC10
  + check digit (mod-10, weights 3,1 from the right), both ways. Nothing leaves this module with a failed
  check digit.

Not responsible for:

- looking anything up. A bare 10-digit NDC (all a barcode carries) may be 4-4-2, 5-3-2 or 5-4-1, and an
  11-digit billing NDC may come from up to three 10-digit NDCs. This module lists the candidates
  (``Ndc.candidates_from_ndc10``, ``Ndc.candidates_from_ndc11``); choosing among them is the formulary's
  job, since it holds the product directory.
- scanner input: AIM symbology prefixes (``]E0``, ``]C1``), GS1 element strings (AI 01, 17, 10, 21) and
  the CR/LF a keyboard-wedge scanner appends are taken off by the scanning layer before the digits get here.
- the 12-digit transition: a 6-4-2 NDC parses and prints, but it has no 10- or 11-digit form here and no
  UPC-A or GTIN-14 encoding; how today's NDCs map onto 12 digits is a directory matter.

Every refusal is an ``InvalidIdentifierError`` whose code is in the catalogue and whose detail says what was
given and what was expected; ``context["value"]`` holds the input as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from controller.errors import InvalidIdentifierError

_ASCII_DIGITS = frozenset("0123456789")
_SHOWN_CHARS = 40  # scanner garbage can be long; details quote a prefix of it


class NdcFormat(StrEnum):
    """Segment lengths of an NDC as labeler-product-package."""

    F4_4_2 = "4-4-2"
    F5_3_2 = "5-3-2"
    F5_4_1 = "5-4-1"
    F5_4_2 = "5-4-2"  # the 11-digit billing (HIPAA) form: a 10-digit NDC with its short segment zero-padded
    F6_4_2 = "6-4-2"  # the 12-digit form

    @property
    def segment_lengths(self) -> tuple[int, int, int]:
        labeler, product, package = (int(n) for n in self.value.split("-"))
        return labeler, product, package

    @property
    def digit_count(self) -> int:
        return sum(self.segment_lengths)

    @property
    def is_ten_digit(self) -> bool:
        return self.digit_count == 10


# Candidate order everywhere: 4-4-2, 5-3-2, 5-4-1.
_TEN_DIGIT_FORMATS = (NdcFormat.F4_4_2, NdcFormat.F5_3_2, NdcFormat.F5_4_1)
_FORMAT_BY_LENGTHS = {fmt.segment_lengths: fmt for fmt in NdcFormat}
_NDC_DIGIT_COUNTS = (10, 11, 12)


def _show(text: str) -> str:
    """Quote an input for an error detail, cut short if it is long."""
    if len(text) > _SHOWN_CHARS:
        return f"{text[:_SHOWN_CHARS]!r}… ({len(text)} characters)"
    return repr(text)


def _first_foreign_char(text: str, allowed: frozenset[str]) -> tuple[int, str] | None:
    for position, char in enumerate(text):
        if char not in allowed:
            return position, char
    return None


def _describe_char(position: int, char: str) -> str:
    # The code point makes look-alikes visible: Arabic-Indic or full-width digits, en dashes, no-break spaces.
    return f"{char!r} (U+{ord(char):04X}) at position {position + 1}"


def _or_list(items: tuple[object, ...]) -> str:
    words = [str(item) for item in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _require_digits(code: str, lengths: tuple[int, ...], what: str) -> None:
    """Refuse anything but ASCII digits (``str.isdigit`` accepts '٣'), then a length not in ``lengths``."""
    foreign = _first_foreign_char(code, _ASCII_DIGITS)
    if foreign is not None:
        raise InvalidIdentifierError(
            "identifier.not_digits",
            f"{what} {_show(code)} contains {_describe_char(*foreign)}; expected only the ASCII digits 0-9",
            value=code,
        )
    if len(code) not in lengths:
        raise InvalidIdentifierError(
            "identifier.bad_length",
            f"{what} {_show(code)} has {len(code)} digits; expected {_or_list(lengths)}",
            value=code,
        )


def _require_check_digit(code: str, what: str) -> None:
    expected = gs1_check_digit(code[:-1])
    if code[-1] != expected:
        raise InvalidIdentifierError(
            "identifier.bad_check_digit",
            f"{what} {code!r} ends in check digit {code[-1]}, but its first {len(code) - 1} digits give "
            f"{expected} (GS1 mod-10); the code was misread or mistyped",
            value=code,
        )


@dataclass(frozen=True, slots=True)
class Ndc:
    """One National Drug Code as printed: three ASCII digit strings whose lengths are one of ``NdcFormat``.

    Equality is by segments, so ``0069-4200-30`` and its billing form ``00069-4200-30`` are different values;
    ``same_product_package`` compares them as the same package.
    """

    labeler: str
    product: str
    package: str

    def __post_init__(self) -> None:
        segments = (("labeler", self.labeler), ("product", self.product), ("package", self.package))
        for name, segment in segments:
            foreign = _first_foreign_char(segment, _ASCII_DIGITS)
            if foreign is not None:
                raise InvalidIdentifierError(
                    "identifier.not_digits",
                    f"NDC {name} segment {_show(segment)} contains {_describe_char(*foreign)}; "
                    "expected only the ASCII digits 0-9",
                    value=f"{self.labeler}-{self.product}-{self.package}",
                )
        lengths = (len(self.labeler), len(self.product), len(self.package))
        if lengths not in _FORMAT_BY_LENGTHS:
            layout = "-".join(str(n) for n in lengths)
            raise InvalidIdentifierError(
                "identifier.bad_segmentation",
                f"NDC segments {self.labeler!r}, {self.product!r}, {self.package!r} have lengths {layout}; "
                f"expected {_or_list(tuple(NdcFormat))}",
                value=f"{self.labeler}-{self.product}-{self.package}",
            )

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> Ndc:
        """Parse an NDC as printed or as billed.

        Accepts the hyphenated forms 4-4-2, 5-3-2, 5-4-1, 5-4-2 and 6-4-2, a bare 11-digit string (taken
        as 5-4-2) and a bare 12-digit string (taken as 6-4-2), with surrounding whitespace ignored. A bare
        10-digit string is refused as ambiguous: its hyphenation needs the product directory
        (``candidates_from_ndc10``).
        """
        cleaned = text.strip()
        foreign = _first_foreign_char(cleaned, _ASCII_DIGITS | {"-"})
        if foreign is not None:
            raise InvalidIdentifierError(
                "identifier.not_digits",
                f"NDC {_show(text)} contains {_describe_char(*foreign)}; expected ASCII digits 0-9 and "
                "hyphens only, as in 0069-4200-30",
                value=text,
            )
        segments = cleaned.split("-")
        digits = "".join(segments)
        if len(digits) not in _NDC_DIGIT_COUNTS:
            raise InvalidIdentifierError(
                "identifier.bad_length",
                f"NDC {_show(text)} has {len(digits)} digits; expected 10 (4-4-2, 5-3-2, 5-4-1), "
                "11 (5-4-2) or 12 (6-4-2)",
                value=text,
            )
        if len(segments) == 1:
            if len(digits) == 10:
                raise InvalidIdentifierError(
                    "identifier.ambiguous_ndc",
                    f"NDC {_show(text)} is 10 bare digits, which may be 4-4-2, 5-3-2 or 5-4-1; write it with "
                    "hyphens, or use Ndc.candidates_from_ndc10 and let the formulary pick",
                    value=text,
                )
            return cls.from_digits(digits, NdcFormat.F5_4_2 if len(digits) == 11 else NdcFormat.F6_4_2)
        lengths = _three_lengths(segments)
        if lengths is None or lengths not in _FORMAT_BY_LENGTHS:
            allowed = tuple(f for f in NdcFormat if f.digit_count == len(digits))
            layout = "-".join(str(len(s)) for s in segments)
            raise InvalidIdentifierError(
                "identifier.bad_segmentation",
                f"NDC {_show(text)} is hyphenated {layout}; {len(digits)} digits are written {_or_list(allowed)}",
                value=text,
            )
        return cls(segments[0], segments[1], segments[2])

    @classmethod
    def from_digits(cls, digits: str, fmt: NdcFormat) -> Ndc:
        """Split bare digits by a known format (as stored: digits plus their segmentation)."""
        _require_digits(digits, (fmt.digit_count,), f"{fmt} NDC")
        labeler, product, _ = fmt.segment_lengths
        return cls(digits[:labeler], digits[labeler : labeler + product], digits[labeler + product :])

    @classmethod
    def candidates_from_ndc10(cls, digits: str) -> tuple[Ndc, ...]:
        """The three readings of 10 bare digits, in the order 4-4-2, 5-3-2, 5-4-1. Only one is a real NDC;
        which one is known to the product directory, not to the digits."""
        _require_digits(digits, (10,), "bare NDC10")
        return tuple(cls.from_digits(digits, fmt) for fmt in _TEN_DIGIT_FORMATS)

    @classmethod
    def candidates_from_ndc11(cls, digits: str) -> tuple[Ndc, ...]:
        """The 10-digit NDCs whose billing form is these 11 digits, in the order 4-4-2, 5-3-2, 5-4-1.

        Padding added one leading zero to the short segment, so each segment of the 5-4-2 reading that starts
        with 0 gives one candidate. None at all means the 11 digits are not the billing form of any 10-digit
        NDC.
        """
        _require_digits(digits, (11,), "bare NDC11")
        labeler, product, package = digits[:5], digits[5:9], digits[9:]
        candidates: list[Ndc] = []
        if labeler.startswith("0"):
            candidates.append(cls(labeler[1:], product, package))
        if product.startswith("0"):
            candidates.append(cls(labeler, product[1:], package))
        if package.startswith("0"):
            candidates.append(cls(labeler, product, package[1:]))
        return tuple(candidates)

    # -- views ----------------------------------------------------------------------------------------------

    @property
    def format(self) -> NdcFormat:
        return _FORMAT_BY_LENGTHS[(len(self.labeler), len(self.product), len(self.package))]

    @property
    def digits(self) -> str:
        """The segments joined: 10, 11 or 12 digits."""
        return self.labeler + self.product + self.package

    @property
    def is_ten_digit(self) -> bool:
        return self.format.is_ten_digit

    @property
    def ndc10(self) -> str:
        """The 10 digits a UPC-A or GTIN-14 carries. Only a 10-digit NDC has them: an 11-digit one may pad any
        of up to three 10-digit NDCs (``identifier.ambiguous_ndc``), and a 12-digit one has no 10-digit form
        (``identifier.bad_length``)."""
        fmt = self.format
        if fmt.is_ten_digit:
            return self.digits
        if fmt is NdcFormat.F5_4_2:
            raise InvalidIdentifierError(
                "identifier.ambiguous_ndc",
                f"NDC {self} is the 11-digit 5-4-2 form; its 10 digits depend on which segment was padded "
                "(4-4-2, 5-3-2 or 5-4-1); use Ndc.candidates_from_ndc11 and let the formulary pick",
                value=str(self),
            )
        raise InvalidIdentifierError(
            "identifier.bad_length",
            f"NDC {self} has 12 digits (6-4-2); a 10-digit form exists only for 4-4-2, 5-3-2 and 5-4-1 NDCs",
            value=str(self),
        )

    @property
    def ndc11(self) -> str:
        """The 11-digit 5-4-2 billing form as bare digits: a 10-digit NDC's short segment gets a leading zero.

        A 12-digit NDC has no 11-digit form; that refusal is ``identifier.bad_length`` (the catalogue has no
        code of its own for it, and ``identifier.no_barcode_form`` is about barcodes).
        """
        fmt = self.format
        if fmt is NdcFormat.F4_4_2:
            return "0" + self.digits
        if fmt is NdcFormat.F5_3_2:
            return self.labeler + "0" + self.product + self.package
        if fmt is NdcFormat.F5_4_1:
            return self.labeler + self.product + "0" + self.package
        if fmt is NdcFormat.F5_4_2:
            return self.digits
        raise InvalidIdentifierError(
            "identifier.bad_length",
            f"NDC {self} has 12 digits (6-4-2); the 11-digit 5-4-2 billing form exists only for 10- and 11-digit NDCs",
            value=str(self),
        )

    def same_product_package(self, other: Ndc) -> bool:
        """True when both name the same package: 10- and 11-digit NDCs compare by their billing form.

        A 12-digit NDC matches only the same 12 digits: without a directory crosswalk this module cannot tell
        that a 12-digit NDC and an older one are the same package, so it answers False (not known to be).
        """
        if self.format is NdcFormat.F6_4_2 or other.format is NdcFormat.F6_4_2:
            return self.format is other.format and self.digits == other.digits
        return self.ndc11 == other.ndc11

    def __str__(self) -> str:
        return f"{self.labeler}-{self.product}-{self.package}"


def _three_lengths(segments: list[str]) -> tuple[int, int, int] | None:
    if len(segments) != 3:
        return None
    return len(segments[0]), len(segments[1]), len(segments[2])


# -- GS1 ---------------------------------------------------------------------------------------------------


def gs1_check_digit(body: str) -> str:
    """GS1 mod-10 check digit of ``body`` (all digits but the check digit): weights 3,1,3,... from the right.

    It catches every single-digit error and every swap of adjacent digits except those differing by 5.
    """
    _require_digits(body, tuple(range(1, 18)), "GS1 key body")  # up to 17: the SSCC is the longest GS1 key
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(body)))
    return str(-total % 10)


def _ten_digit_for_barcode(ndc: Ndc, indicator: int | None = None) -> str:
    if ndc.is_ten_digit:
        return ndc.ndc10
    if ndc.format is NdcFormat.F5_4_2:
        why = (
            "an 11-digit 5-4-2 NDC must first be resolved to its 10-digit NDC "
            "(Ndc.candidates_from_ndc11 and the formulary)"
        )
    else:
        why = "UPC-A and GTIN-14 carry 10 NDC digits; no encoding of a 12-digit 6-4-2 NDC is defined here"
    target = "UPC-A" if indicator is None else f"GTIN-14 (indicator {indicator})"
    raise InvalidIdentifierError(
        "identifier.no_barcode_form",
        f"NDC {ndc} ({ndc.format}) has no {target}: {why}",
        value=str(ndc),
    )


def upca_from_ndc(ndc: Ndc) -> str:
    """UPC-A (12 digits) of a 10-digit NDC: number system 3, the 10 NDC digits, the check digit."""
    body = "3" + _ten_digit_for_barcode(ndc)
    return body + gs1_check_digit(body)


def gtin14_from_ndc(ndc: Ndc, indicator: int = 0) -> str:
    """GTIN-14 of a 10-digit NDC: packaging indicator (0 = the unit itself, 1-8 = cases), ``03``, the 10 NDC
    digits, the check digit. With indicator 0 it is the UPC-A with two leading zeros.

    Indicator 9 means variable measure, which an NDC package never is; it and anything outside 0-8 are refused
    with ``identifier.no_barcode_form``.
    """
    if isinstance(indicator, bool) or not isinstance(indicator, int) or not 0 <= indicator <= 8:
        raise InvalidIdentifierError(
            "identifier.no_barcode_form",
            f"packaging indicator {indicator!r} for NDC {ndc} is not allowed; expected a digit 0-8 "
            "(9 marks variable-measure items, which never carry an NDC)",
            value=str(ndc),
            indicator=indicator,
        )
    body = f"{indicator}03" + _ten_digit_for_barcode(ndc, indicator)
    return body + gs1_check_digit(body)


def ndc10_from_upca(code: str) -> str:
    """The 10 NDC digits of a UPC-A, given as 12 digits or as the 13-digit EAN form with a leading 0
    (zxing-cpp returns UPC-A that way). The check digit must hold and the number system must be 3."""
    _require_digits(code, (12, 13), "UPC-A")
    _require_check_digit(code, "UPC-A")
    if len(code) == 13 and code[0] != "0":
        raise InvalidIdentifierError(
            "identifier.not_an_ndc",
            f"{code!r} is an EAN-13 with GS1 prefix {code[:3]}, not a UPC-A; an NDC barcode is a UPC-A "
            "(13 digits only with a leading 0) with number system 3",
            value=code,
        )
    upca = code[-12:]
    if upca[0] != "3":
        raise InvalidIdentifierError(
            "identifier.not_an_ndc",
            f"UPC-A {upca!r} has number system {upca[0]}; an NDC is carried only under number system 3",
            value=code,
        )
    return upca[1:11]


def ndc10_from_gtin(code: str) -> str:
    """The 10 NDC digits of a GTIN-14 (a GTIN-12 or GTIN-13 is read zero-padded to 14 digits). The check digit
    must hold, the indicator must be 0-8, and the two digits after it must be ``03``."""
    _require_digits(code, (12, 13, 14), "GTIN")
    _require_check_digit(code, "GTIN")
    gtin14 = code.zfill(14)
    if gtin14[0] == "9":
        raise InvalidIdentifierError(
            "identifier.not_an_ndc",
            f"GTIN {gtin14!r} has indicator 9 (variable measure); NDC packages use indicators 0-8",
            value=code,
        )
    if gtin14[1:3] != "03":
        raise InvalidIdentifierError(
            "identifier.not_an_ndc",
            f"GTIN {gtin14!r} has {gtin14[1:3]!r} after its indicator digit; a GTIN carrying an NDC has '03' "
            "there (indicator + 03 + NDC10 + check digit)",
            value=code,
        )
    return gtin14[3:13]


def ndc10_from_barcode(code: str) -> str:
    """The 10 NDC digits of a scanned code: 12 or 13 digits are read as UPC-A, 14 digits as GTIN-14.
    ``code`` is bare digits: symbology prefixes and GS1 element strings are the scanning layer's business."""
    _require_digits(code, (12, 13, 14), "NDC barcode (UPC-A or GTIN-14)")
    if len(code) == 14:
        return ndc10_from_gtin(code)
    return ndc10_from_upca(code)


__all__ = [
    "Ndc",
    "NdcFormat",
    "gs1_check_digit",
    "gtin14_from_ndc",
    "ndc10_from_barcode",
    "ndc10_from_gtin",
    "ndc10_from_upca",
    "upca_from_ndc",
]
