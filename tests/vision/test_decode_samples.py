"""The decoder on others' images: zxing-cpp's 52 black-box samples (expected text in NAME.txt, UPC-A as 13 digits,
symbology identifier in NAME.result.txt) and the FDA's Viagra label photographs (real NDC UPC-As).

Every sample must give either its expected text or nothing: a wrong value is never acceptable. The two samples
zxing-cpp's own runner keeps as hard may go unread; the rest must read, and the count is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.domain.package_label import read_label
from controller.vision.decode import decode
from controller.vision.images import load_image

HARD = {"datamatrix-5/issue794-13-4.webp", "upca-5/01.webp"}  # SOURCES.md: no result with zxing-cpp's defaults
IMAGE_SUFFIXES = (".png", ".webp", ".jpg")


def zxing_samples(root: Path) -> list[tuple[str, Path, Path]]:
    samples = []
    for expected in sorted((root / "barcodes").glob("*/*.txt")):
        if expected.name.endswith(".result.txt") or expected.parent.name == "fda-spl-viagra":
            continue
        image = next(p for p in expected.parent.iterdir() if p.stem == expected.stem and p.suffix in IMAGE_SUFFIXES)
        samples.append((f"{expected.parent.name}/{image.name}", image, expected))
    return samples


def expected_symbology(expected: Path) -> str | None:
    result = expected.with_name(expected.stem + ".result.txt")
    if not result.is_file():
        return None
    for line in result.read_text("utf-8").splitlines():
        key, _, value = line.partition("=")
        if key == "symbologyIdentifier":
            return value
    return None


def test_every_sample_reads_or_stays_silent(shared_external: Path) -> None:
    samples = zxing_samples(shared_external)
    assert len(samples) == 52
    read: list[str] = []
    for name, image, expected_path in samples:
        expected = expected_path.read_bytes().decode("utf-8")
        symbols = decode(load_image(image)).symbols
        texts = [s.text for s in symbols]
        assert all(text == expected for text in texts), f"{name}: wrong value {texts!r}, expected {expected!r}"
        if texts:
            read.append(name)
            symbology = expected_symbology(expected_path)
            if symbology is not None:
                assert symbols[0].symbology_id == symbology, name
        else:
            assert name in HARD, f"{name} was not read"
    unread = sorted({name for name, *_ in samples} - set(read))
    print(f"zxing-cpp samples read: {len(read)} of {len(samples)}; unread: {unread}")
    assert len(read) >= 50


def test_gs1_samples_keep_their_group_separators(shared_external: Path) -> None:
    image = shared_external / "barcodes" / "datamatrix-3" / "#794.png"
    (symbol,) = decode(load_image(image)).symbols
    assert (symbol.format, symbol.symbology_id, symbol.is_gs1) == ("DataMatrix", "]d2", True)
    assert "\x1d" in symbol.text
    label = read_label(symbol.text, symbol.symbology_id, is_gs1=True, separators_kept=True)
    assert (label.gtin, label.lot, label.serial, str(label.expiry)) == (
        "08903819987659",
        "BNav4Cam2",
        "S1ND6MPPFCGG6B869XES",
        "2031-06-30",
    )


def test_upca_is_reported_as_upca_with_its_ndc(shared_external: Path) -> None:
    (symbol,) = decode(load_image(shared_external / "barcodes" / "upca-5" / "03.webp")).symbols
    assert (symbol.format, symbol.symbology_id, symbol.text) == ("UPC-A", "]E0", "0312547701310")
    assert read_label(symbol.text, symbol.symbology_id).ndc10 == "1254770131"


@pytest.mark.parametrize(("name", "ndc10"), [("viagra-11", "0069420030"), ("viagra-12", "0069421030"),
                                             ("viagra-13", "0069422030")])  # fmt: skip
def test_fda_label_photographs(shared_external: Path, name: str, ndc10: str) -> None:
    """Small, JPEG-compressed, barcode turned a quarter: found by the 1-D detector and read from a smoothed patch."""
    folder = shared_external / "barcodes" / "fda-spl-viagra"
    expected = (folder / f"{name}.txt").read_text("utf-8").strip()
    result = decode(load_image(folder / f"{name}.jpg"))
    assert [s.text for s in result.symbols] == [expected]
    assert result.passes[-1] != "direct"  # raw zxing-cpp finds nothing here
    assert read_label(expected, "]E0").ndc10 == ndc10


def test_label_without_barcode_gives_nothing(shared_external: Path) -> None:
    result = decode(load_image(shared_external / "barcodes" / "fda-spl-viagra" / "viagra-01.jpg"))
    assert result.symbols == () and result.passes[0] == "direct" and len(result.passes) > 1
