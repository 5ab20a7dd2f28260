"""Barcodes in a camera frame: zxing-cpp restricted to what drug packages carry, with a cheap retry ladder.

Responsible for: finding and decoding DataMatrix, UPC-A/EAN-13, Code 128 (GS1-128), GS1 DataBar (every variant)
and QR symbols in one image, returning ``DecodedSymbol`` records with the raw text (GS kept), the AIM symbology
identifier and the corners in the image's own pixels. When the first pass finds nothing, further passes run until
one finds something or the time budget is spent, cheapest and most often useful first:

1. ``direct``: the image as it is, like raw zxing-cpp but without its inverted retry (light-on-dark symbols are
   rare on packages and get a pass of their own), so a frame that decodes here pays nothing more;
2. ``localise``: OpenCV's 1-D barcode detector finds bar patterns at any angle; each is cut out, turned level and
   enlarged when its bars are thin, then decoded alone with a few binarizers (linear codes beyond ~20 degrees of
   tilt, small or JPEG-smeared prints);
3. ``candidates``: symbols zxing-cpp located but could not decode (a checksum or format error) are cut out,
   enlarged and sharpened, then decoded alone (small or soft DataMatrix);
4. ``localise_fine``: the 1-D detector again at full resolution (it normally searches a copy 512 pixels high);
5. ``rotated``: the whole image turned 45 degrees (linear codes the detector missed);
6. ``inverted``, ``sharpened``, ``threshold``, ``smoothed``: light-on-dark; unsharp mask; a global binarizer
   instead of the local one (uneven light, glare); a mild blur (noise, JPEG blocks, halftone);
7. ``enlarged``: a small image (under 1000 pixels) scaled up (labels photographed from afar, low-resolution scans);
8. ``zbar``: pyzbar, when it and Debian's libzbar0 are installed.

Never returns a value that failed its check digit: zxing-cpp drops symbols whose own checks fail, candidates with
errors are never returned, and every symbol from any pass or backend goes through ``screen``: an EAN/UPC is
re-checked with the GS1 mod-10, and two different texts read from the same place are both refused (a misread).
(A GS1 DataMatrix whose GTIN check digit is wrong decoded faithfully; ``controller.domain.package_label`` refuses
that GTIN.)

Not responsible for: what the text means (``controller.domain.package_label``), or image files (``images.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import zxingcpp
from numpy.typing import NDArray

from controller.vision import zbar_backend
from controller.vision.images import Image, grey
from controller.vision.patches import (
    IDENTITY,
    Transform,
    as_uint8,
    enlarge,
    enlargement_of,
    level_patch,
    map_back,
    rotate,
    sharpen,
    side_lengths,
)
from controller.vision.screen import screen
from controller.vision.symbols import DecodedSymbol, Quad

F = zxingcpp.BarcodeFormat
# DataBar and QRCode name their whole families (Omni, Stacked, Limited, Expanded ...; Micro QR, rMQR).
FORMATS = zxingcpp.BarcodeFormats([F.DataMatrix, F.UPCA, F.EAN13, F.Code128, F.DataBar, F.QRCode])
LINEAR_FORMATS = zxingcpp.BarcodeFormats([F.UPCA, F.EAN13, F.Code128, F.DataBar])

_FORMAT_NAMES = {
    F.DataMatrix: "DataMatrix",
    F.UPCA: "UPC-A",
    F.EAN13: "EAN-13",
    F.Code128: "Code128",
    F.DataBar: "DataBar",
    F.DataBarOmni: "DataBar",
    F.DataBarStk: "DataBar",
    F.DataBarStkOmni: "DataBar",
    F.DataBarLtd: "DataBarLimited",
    F.DataBarExp: "DataBarExpanded",
    F.DataBarExpStk: "DataBarExpanded",
    F.QRCode: "QRCode",
    F.QRCodeModel1: "QRCode",
    F.QRCodeModel2: "QRCode",
    F.MicroQRCode: "MicroQRCode",
    F.RMQRCode: "rMQRCode",
}
_EAN_UPC = frozenset({F.UPCA, F.EAN13})
_DETECTOR_MIN_SIDE = 20  # pixels: smaller "barcodes" from the 1-D detector are texture, not symbols
_SMALL_IMAGE = 1000  # pixels on the longer side: below this the ``enlarged`` pass scales the image up
_MAX_REGIONS = 6  # 1-D detector regions tried per frame, largest first
# (patch length in pixels, binarizer, smoothing in source pixels) tried in turn on each 1-D region until one reads.
# Smoothing before a global threshold undoes JPEG ringing between thin bars (the FDA label photographs need it).
_PATCH_VARIANTS = (
    (1000.0, zxingcpp.Binarizer.LocalAverage, 0.0),
    (1000.0, zxingcpp.Binarizer.FixedThreshold, 0.0),
    (1000.0, zxingcpp.Binarizer.FixedThreshold, 0.5),
    (400.0, zxingcpp.Binarizer.GlobalHistogram, 0.0),
)
_PATCH_MARGIN = 0.12  # of the region's length, at both ends: the quiet zone and a little more


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    budget_s: float = 0.4  # the ladder stops starting new passes after this long
    use_zbar: bool = True  # use pyzbar as the last pass when it is installed


@dataclass(frozen=True, slots=True)
class DecodeResult:
    symbols: tuple[DecodedSymbol, ...]
    passes: tuple[str, ...]  # the passes that ran, in order
    elapsed_s: float
    rejected: tuple[str, ...] = ()  # texts a pass decoded but ``screen`` refused
    zbar: str = field(default_factory=zbar_backend.status)

    @property
    def found(self) -> bool:
        return bool(self.symbols)


def read_raw(image: Image) -> list[zxingcpp.Barcode]:
    """Raw zxing-cpp on the same formats with plain text: the baseline the benchmark compares ``decode`` with."""
    return zxingcpp.read_barcodes(image, formats=FORMATS, text_mode=zxingcpp.TextMode.Plain)


def decode(image: Image, settings: DecodeSettings = DecodeSettings()) -> DecodeResult:
    """Every symbol found in ``image`` (grey or BGR, 8-bit), by the first pass of the ladder that finds any."""
    started = time.perf_counter()
    deadline = started + settings.budget_s
    ladder = _Ladder(image)
    passes: list[str] = []
    for name, run in ladder.passes(use_zbar=settings.use_zbar):
        if passes and time.perf_counter() >= deadline:
            break
        passes.append(name)
        symbols = ladder.settle(run())
        if symbols:
            return DecodeResult(tuple(symbols), tuple(passes), time.perf_counter() - started, tuple(ladder.rejected))
    return DecodeResult((), tuple(passes), time.perf_counter() - started, tuple(ladder.rejected))


class _Ladder:
    """The passes over one image; they share the grey copy and what the direct pass located but could not read."""

    def __init__(self, image: Image) -> None:
        self.image = image
        self._grey: Image | None = None
        self.failed_at: list[Quad] = []  # symbols zxing-cpp located in the direct pass but could not decode
        self.rejected: list[str] = []

    @property
    def grey(self) -> Image:
        if self._grey is None:
            self._grey = grey(self.image)
        return self._grey

    def passes(self, *, use_zbar: bool) -> Iterable[tuple[str, Callable[[], list[DecodedSymbol]]]]:
        yield "direct", self.direct
        yield "localise", self.localise
        yield "candidates", self.candidates
        if max(self.image.shape[:2]) >= _SMALL_IMAGE:
            yield "localise_fine", lambda: self.localise(fine=True)
        yield "rotated", self.rotated
        yield "inverted", lambda: self.whole(as_uint8(cv2.bitwise_not(self.grey)), "inverted")
        yield "sharpened", lambda: self.whole(sharpen(self.grey), "sharpened")
        yield "threshold", lambda: self.whole(self.grey, "threshold", binarizer=zxingcpp.Binarizer.GlobalHistogram)
        yield "smoothed", lambda: self.whole(as_uint8(cv2.GaussianBlur(self.grey, (0, 0), 1.0)), "smoothed")
        if max(self.image.shape[:2]) < _SMALL_IMAGE:
            yield "enlarged", self.enlarged
        if use_zbar and zbar_backend.available():
            yield "zbar", lambda: zbar_backend.decode(self.grey)

    # -- passes ---------------------------------------------------------------------------------------------------

    def direct(self) -> list[DecodedSymbol]:
        # Light-on-dark symbols are rare on packages: they get a pass of their own rather than slowing every frame.
        found = zxingcpp.read_barcodes(
            self.grey, formats=FORMATS, text_mode=zxingcpp.TextMode.Plain, try_invert=False, return_errors=True
        )
        good = [b for b in found if b.valid and b.error is None]
        self.failed_at = [_symbol(b, IDENTITY, "direct").position for b in found if not (b.valid and b.error is None)]
        return self._accept(good, IDENTITY, "direct")

    def whole(
        self, image: Image, name: str, *, binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage
    ) -> list[DecodedSymbol]:
        found = zxingcpp.read_barcodes(
            image, formats=FORMATS, text_mode=zxingcpp.TextMode.Plain, binarizer=binarizer, try_invert=False
        )
        return self._accept(found, IDENTITY, name)

    def rotated(self) -> list[DecodedSymbol]:
        turned, back = rotate(self.grey, 45.0)
        found = zxingcpp.read_barcodes(
            turned, formats=LINEAR_FORMATS, text_mode=zxingcpp.TextMode.Plain, try_invert=False
        )
        return self._accept(found, back, "rotated")

    def localise(self, *, fine: bool = False) -> list[DecodedSymbol]:
        """Cut out each 1-D bar pattern OpenCV finds, level it and decode it alone. The detector works on a copy
        shrunk to 512 pixels high; ``fine`` searches the full resolution (slower; thin bars at a steep angle)."""
        detector = cv2.barcode.BarcodeDetector()  # cheap to make, and not shared between threads
        small = max(self.grey.shape[:2]) < _SMALL_IMAGE
        if fine:
            detector.setDownsamplingThreshold(max(self.grey.shape[:2]))
        # A small image is searched at twice its size: the detector misses short bars of a pixel or two.
        search = (
            as_uint8(cv2.resize(self.grey, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)) if small else self.grey
        )
        ok, corners = detector.detect(search)
        if not ok or corners is None:
            return []
        found = np.asarray(corners, np.float64).reshape(-1, 4, 2) / (2.0 if small else 1.0)
        largest = sorted(found, key=lambda q: -float(cv2.contourArea(q.astype(np.float32))))[:_MAX_REGIONS]
        symbols: list[DecodedSymbol] = []
        for quad in largest:
            if max(side_lengths(quad)) < _DETECTOR_MIN_SIDE:
                continue
            symbols += self._read_region(quad, "localise_fine" if fine else "localise")
        return symbols

    def _read_region(self, quad: NDArray[np.float64], name: str) -> list[DecodedSymbol]:
        patches: dict[float, tuple[Image, Transform]] = {}
        for side, binarizer, smoothing in _PATCH_VARIANTS:
            if side not in patches:
                patches[side] = level_patch(self.grey, quad, margin=_PATCH_MARGIN, target_side=side)
            patch, back = patches[side]
            if smoothing > 0:
                patch = as_uint8(cv2.GaussianBlur(patch, (0, 0), smoothing * enlargement_of(back)))
            found = zxingcpp.read_barcodes(
                patch, formats=LINEAR_FORMATS, text_mode=zxingcpp.TextMode.Plain, binarizer=binarizer, try_invert=False
            )
            accepted = self._accept(found, back, name)
            if accepted:
                return accepted
        return []

    def candidates(self) -> list[DecodedSymbol]:
        """Symbols zxing-cpp found but could not read: cut out, enlarged, sharpened, decoded alone."""
        symbols: list[DecodedSymbol] = []
        for quad in self.failed_at:
            points = np.array(quad, np.float64)
            patch, back = level_patch(self.grey, points, margin=0.35, target_side=360.0)
            for candidate in (sharpen(patch), patch):
                found = zxingcpp.read_barcodes(
                    candidate, formats=FORMATS, text_mode=zxingcpp.TextMode.Plain, try_invert=False
                )
                accepted = self._accept(found, back, "candidates")
                if accepted:
                    symbols += accepted
                    break
        return symbols

    def enlarged(self) -> list[DecodedSymbol]:
        big, back = enlarge(self.grey, min(4.0, 2000.0 / max(self.image.shape[:2])))
        for binarizer in (zxingcpp.Binarizer.LocalAverage, zxingcpp.Binarizer.FixedThreshold):
            found = zxingcpp.read_barcodes(
                big, formats=FORMATS, text_mode=zxingcpp.TextMode.Plain, binarizer=binarizer, try_invert=False
            )
            accepted = self._accept(found, back, "enlarged")
            if accepted:
                return accepted
        return []

    # -- checks ---------------------------------------------------------------------------------------------------

    def _accept(self, found: Sequence[zxingcpp.Barcode], back: Transform, name: str) -> list[DecodedSymbol]:
        return self._checked([_symbol(b, back, name) for b in found if b.valid and b.error is None])

    def settle(self, symbols: list[DecodedSymbol]) -> list[DecodedSymbol]:
        """One pass's symbols: duplicates merged, check digits and clashing readings screened."""
        kept, rejected = screen(symbols)
        self.rejected += rejected
        return kept

    def _checked(self, symbols: list[DecodedSymbol]) -> list[DecodedSymbol]:
        kept, rejected = screen(symbols)
        self.rejected += rejected
        return kept


def _symbol(barcode: zxingcpp.Barcode, back: Transform, name: str) -> DecodedSymbol:
    text = barcode.text
    fmt = barcode.format
    format_name = _FORMAT_NAMES.get(fmt, str(fmt))
    if fmt in _EAN_UPC and len(text) == 13 and text.startswith("0"):
        format_name = "UPC-A"  # zxing-cpp reports a UPC-A as the EAN-13 it is a subset of
    position = barcode.position
    corners = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
    a, b, c, d = map_back([(float(p.x), float(p.y)) for p in corners], back)
    return DecodedSymbol(
        format=format_name,
        symbology_id=barcode.symbology_identifier,
        text=text,
        position=(a, b, c, d),
        is_gs1=barcode.content_type == zxingcpp.ContentType.GS1,
        decode_pass=name,
    )
