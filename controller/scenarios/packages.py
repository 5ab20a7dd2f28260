"""The barcode a package carries, as the scanner simulator is asked to present it: a GS1 DataMatrix (``]d2``: GTIN-14
from the NDC, expiry, lot, serial), a UPC-A (``]E0``), or raw text with the symbology the author gives."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from controller.domain.ndc import Ndc, gtin14_from_ndc, upca_from_ndc
from controller.scenarios.cabinet_doc import CabinetIndex

GS = "\x1d"


def barcode_of(package: Mapping[str, Any], index: CabinetIndex) -> tuple[str, str]:
    """(barcode text, AIM symbology identifier) of a scenario's package."""
    if "barcode" in package:
        return str(package["barcode"]).replace("<GS>", GS), str(package.get("symbology", "]d2"))
    ndc = Ndc.parse(str(package["ndc"]) if "ndc" in package else index.ndc_of(str(package["item"])))
    if package.get("form") == "upc":
        return upca_from_ndc(ndc), "]E0"
    expiry = date.fromisoformat(str(package["expiry"])).strftime("%y%m%d")
    text = f"01{gtin14_from_ndc(ndc)}17{expiry}10{package['lot']}{GS}21{package['serial']}"
    return text, "]d2"
