"""The checks every decoded symbol passes before anyone sees it, whichever pass or backend decoded it.

Responsible for: refusing an EAN/UPC whose GS1 mod-10 check digit fails (zxing-cpp checks it too; pyzbar's and
any future backend's results get the same treatment), merging the same symbol found twice, and refusing two
different texts read from the same place: zxing-cpp can read an upside-down UPC-A both ways, and the backward
reading passes its check digit one time in ten, so neither reading is trusted then.

Not responsible for: what the text means (``controller.domain.package_label``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from controller.domain.ndc import gs1_check_digit
from controller.vision.symbols import DecodedSymbol, Quad

_NEAR_PX = 4.0  # a point this close to a symbol's outline counts as on it (a linear symbol's quad is thin)


def screen(symbols: Sequence[DecodedSymbol]) -> tuple[list[DecodedSymbol], list[str]]:
    """The symbols kept (duplicates merged) and the texts refused."""
    rejected: list[str] = []
    good: list[DecodedSymbol] = []
    for symbol in _unique(symbols):
        if symbol.format in ("UPC-A", "EAN-13") and not ean_upc_check_digit_holds(symbol.text):
            rejected.append(symbol.text)
        else:
            good.append(symbol)
    clashing: set[int] = set()
    for i, a in enumerate(good):
        for j in range(i + 1, len(good)):
            b = good[j]
            if a.text != b.text and (_on(_centre(a.position), b.position) or _on(_centre(b.position), a.position)):
                clashing |= {i, j}
    rejected += [good[i].text for i in sorted(clashing)]
    return [s for i, s in enumerate(good) if i not in clashing], rejected


def ean_upc_check_digit_holds(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) in (8, 12, 13) and gs1_check_digit(text[:-1]) == text[-1]


def _unique(symbols: Sequence[DecodedSymbol]) -> list[DecodedSymbol]:
    seen: set[tuple[str, str]] = set()
    unique: list[DecodedSymbol] = []
    for symbol in symbols:
        key = (symbol.format, symbol.text)
        if key not in seen:
            seen.add(key)
            unique.append(symbol)
    return unique


def _centre(quad: Quad) -> tuple[float, float]:
    return sum(p[0] for p in quad) / 4, sum(p[1] for p in quad) / 4


def _on(point: tuple[float, float], quad: Quad) -> bool:
    contour = np.array(quad, np.float32).reshape(-1, 1, 2)
    return cv2.pointPolygonTest(contour, point, True) >= -_NEAR_PX
