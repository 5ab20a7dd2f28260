"""What a drug package's barcode carries, built from the printed NDC: UPC-A, GTIN-14 and GS1 element strings.

Responsible for the ground truth of a rendered package: the exact text a decoder must return (GS1 group
separators as 0x1D, UPC-A as the 13-digit EAN form zxing-cpp returns) and the HRI form the barcode writer takes.
The simulator may not import the controller, so the GS1 mod-10 arithmetic lives here too (a few lines; the
controller's own copy in ``controller.domain.ndc`` is checked against this one by the tests).

Not responsible for: drawing anything (``barcodes.py``, ``packages.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

GS = "\x1d"
_VARIABLE_LENGTH_AIS = frozenset({"10", "21"})


def check_digit(body: str) -> str:
    """GS1 mod-10: weights 3, 1, 3, ... from the right."""
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(body)))
    return str(-total % 10)


def ndc10_digits(printed_ndc: str) -> str:
    """The 10 digits of a hyphenated 10-digit NDC (4-4-2, 5-3-2 or 5-4-1)."""
    digits = printed_ndc.replace("-", "")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{printed_ndc!r} is not a 10-digit NDC")
    return digits


def upca_of(ndc10: str) -> str:
    """UPC-A (12 digits): number system 3, the NDC digits, the check digit."""
    body = "3" + ndc10
    return body + check_digit(body)


def gtin14_of(ndc10: str, indicator: int = 0) -> str:
    body = f"{indicator}03{ndc10}"
    return body + check_digit(body)


def yymmdd(expiry: date, *, day_zero: bool = False) -> str:
    """Expiry as AI 17 writes it; ``day_zero`` writes day 00 (meaning the last day of the month)."""
    return expiry.strftime("%y%m") + ("00" if day_zero else expiry.strftime("%d"))


@dataclass(frozen=True, slots=True)
class ElementString:
    """GS1 element strings in the order the package prints them."""

    elements: tuple[tuple[str, str], ...]  # (AI, value)

    @property
    def raw(self) -> str:
        """As a decoder returns it: FNC1 in first position dropped, a GS after each variable-length field that
        is not the last one."""
        parts: list[str] = []
        for index, (ai, value) in enumerate(self.elements):
            parts.append(ai + value)
            if ai in _VARIABLE_LENGTH_AIS and index < len(self.elements) - 1:
                parts.append(GS)
        return "".join(parts)

    @property
    def hri(self) -> str:
        """The human-readable form, ``(01)...(17)...``: what zxing-cpp's writer takes with ``gs1=True``."""
        return "".join(f"({ai}){value}" for ai, value in self.elements)

    def value(self, ai: str) -> str | None:
        return next((v for a, v in self.elements if a == ai), None)
