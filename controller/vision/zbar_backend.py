"""pyzbar as an optional second decoder, used only when ``import pyzbar.pyzbar`` works (it needs Debian's
``libzbar0``; install the ``zbar`` extra and ``apt-get install --no-install-recommends libzbar0``).

Responsible for: saying whether the backend is there and, if not, why (``status()``); decoding linear codes and QR
with it (zbar reads no DataMatrix) into ``DecodedSymbol`` records with their AIM identifiers.

Not responsible for: check digits (``decode.py`` re-checks EAN/UPC for every backend) or choosing when to run.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from controller.vision.images import Image
from controller.vision.symbols import DecodedSymbol, Quad

# zbar symbol type -> (our format name, AIM identifier). zbar does not report FNC1, so Code 128 is "]C0".
_TYPES = {
    "EAN13": ("EAN-13", "]E0"),
    "UPCA": ("UPC-A", "]E0"),
    "CODE128": ("Code128", "]C0"),
    "DATABAR": ("DataBar", "]e0"),
    "DATABAR_EXP": ("DataBarExpanded", "]e0"),
    "QRCODE": ("QRCode", "]Q1"),
}


@dataclass(frozen=True, slots=True)
class _Backend:
    module: ModuleType | None
    why_not: str


def _load() -> _Backend:
    try:
        module = importlib.import_module("pyzbar.pyzbar")
    except ImportError as error:  # pyzbar missing, or present without libzbar0
        return _Backend(None, f"pyzbar unavailable: {error}")
    return _Backend(module, "")


@functools.cache  # loaded once: the import probes for a shared library
def _backend() -> _Backend:
    return _load()


def available() -> bool:
    return _backend().module is not None


def status() -> str:
    """``"available"`` or why not (the import error), for reports and ``--json`` output."""
    backend = _backend()
    return "available" if backend.module is not None else backend.why_not


def decode(image: Image) -> list[DecodedSymbol]:
    """Symbols zbar finds in a grey image; [] when the backend is not installed."""
    module = _backend().module
    if module is None:
        return []
    height, width = image.shape[:2]
    results: list[Any] = module.decode((image.tobytes(), width, height))
    symbols: list[DecodedSymbol] = []
    for result in results:
        kind = str(result.type)
        if kind not in _TYPES:
            continue
        name, aim = _TYPES[kind]
        text = bytes(result.data).decode("utf-8", errors="replace")
        if kind == "UPCA" and len(text) == 12:
            text = "0" + text  # the 13-digit form zxing-cpp returns, so both backends agree
        symbols.append(
            DecodedSymbol(
                name,
                aim,
                text,
                _quad(result.rect),
                is_gs1=kind.startswith("DATABAR"),
                backend="pyzbar",
                decode_pass="zbar",
            )
        )
    return symbols


def _quad(rect: Any) -> Quad:
    left, top, width, height = int(rect.left), int(rect.top), int(rect.width), int(rect.height)
    return (left, top), (left + width, top), (left + width, top + height), (left, top + height)
