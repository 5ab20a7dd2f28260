"""A barcode symbol as the decoders report it: format, AIM symbology identifier, raw text, where it is.

Responsible for the one record every decoding backend returns, so the GS1/NDC layer and the CLI never see a
library's own result type. The text is raw: GS1 group separators stay as 0x1D, a UPC-A comes as the 13-digit EAN
form zxing-cpp returns (``0`` + the 12 digits).

Not responsible for: decoding (``decode.py``) or what the text means (``controller.domain.package_label``).
"""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[int, int]
Quad = tuple[Point, Point, Point, Point]  # top-left, top-right, bottom-right, bottom-left in the symbol's own frame


@dataclass(frozen=True, slots=True)
class DecodedSymbol:
    format: str  # "DataMatrix", "UPC-A", "EAN-13", "Code128", "DataBar", "DataBarExpanded", "DataBarLimited", "QRCode"
    symbology_id: str  # AIM identifier: "]d2" GS1 DataMatrix, "]E0" EAN/UPC, "]C1" GS1-128, "]e0" DataBar, "]Q1" QR
    text: str  # raw: GS kept as 0x1D
    position: Quad  # corners in the pixels of the image that was decoded
    is_gs1: bool  # the symbol says it carries a GS1 element string (FNC1 first, or DataBar)
    backend: str = "zxing-cpp"
    decode_pass: str = "direct"  # which pass of the retry ladder found it

    def as_json(self) -> dict[str, object]:
        return {
            "format": self.format,
            "symbology_id": self.symbology_id,
            "text": self.text,
            "position": [list(p) for p in self.position],
        }
