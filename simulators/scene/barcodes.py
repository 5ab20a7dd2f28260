"""Barcode symbols as a package prints them, drawn by zxing-cpp's writer, with the text a decoder must return.

Responsible for: one symbol per package — a GS1 DataMatrix (AI 01, 17, 10, 21), a UPC-A carrying the NDC, or a
GS1-128 (AI 01, 17, 10) — as a bitmap of one pixel per module (0 = bar, 255 = space, quiet zone included), plus
its expected decoded text and AIM symbology identifier.

Not responsible for: placing, warping or degrading the symbol (``packages.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import zxingcpp
from numpy.typing import NDArray

from simulators.scene.gs1_payloads import ElementString, upca_of


class BarcodeKind(StrEnum):
    GS1_DATAMATRIX = "gs1_datamatrix"
    UPC_A = "upc_a"
    GS1_128 = "gs1_128"
    NONE = "none"  # a label with no barcode at all


@dataclass(frozen=True, slots=True)
class Symbol:
    kind: BarcodeKind
    modules: NDArray[np.uint8]  # one pixel per module, quiet zone included; 0 = dark
    text: str  # what a decoder returns: GS kept, UPC-A as 13 digits (EAN form)
    symbology_id: str  # "]d2", "]E0", "]C1"
    quiet_zone: int  # modules of quiet zone on each side (the symbol's own corners sit this far in)
    is_linear: bool


def datamatrix(elements: ElementString) -> Symbol:
    # Square ECC 200, as drug packs print it (the writer would otherwise pick a DMRE strip for some lengths).
    barcode = zxingcpp.create_barcode(elements.hri, zxingcpp.BarcodeFormat.DataMatrix, gs1=True, force_square=True)
    modules = np.ascontiguousarray(np.asarray(barcode.to_image(scale=1, add_quiet_zones=True)), dtype=np.uint8)
    return Symbol(BarcodeKind.GS1_DATAMATRIX, modules, elements.raw, "]d2", _quiet_zone(modules), False)


def gs1_128(elements: ElementString) -> Symbol:
    barcode = zxingcpp.create_barcode(elements.hri, zxingcpp.BarcodeFormat.Code128, gs1=True)
    modules = np.ascontiguousarray(np.asarray(barcode.to_image(scale=1, add_quiet_zones=True)), dtype=np.uint8)
    return Symbol(BarcodeKind.GS1_128, _tall(modules, 0.18), elements.raw, "]C1", _quiet_zone(modules), True)


def upc_a(ndc10: str) -> Symbol:
    code = upca_of(ndc10)
    barcode = zxingcpp.create_barcode(code[:11], zxingcpp.BarcodeFormat.UPCA)
    modules = np.ascontiguousarray(np.asarray(barcode.to_image(scale=1, add_quiet_zones=True)), dtype=np.uint8)
    return Symbol(BarcodeKind.UPC_A, _tall(modules, 0.45), "0" + code, "]E0", _quiet_zone(modules), True)


def _tall(modules: NDArray[np.uint8], height_ratio: float) -> NDArray[np.uint8]:
    """A linear symbol as one row of modules stretched to a printable height (a share of its width)."""
    row = modules[modules.shape[0] // 2]
    height = max(round(modules.shape[1] * height_ratio), 12)
    return np.ascontiguousarray(np.repeat(row[np.newaxis, :], height, axis=0))


def _quiet_zone(modules: NDArray[np.uint8]) -> int:
    dark_columns = np.flatnonzero((modules < 128).any(axis=0))
    return int(dark_columns[0]) if dark_columns.size else 0
