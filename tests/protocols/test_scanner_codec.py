"""Scanner codec: golden vectors (payloads from real barcode images' expected texts), round trips, garbage."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocols.scanner import SCANNER_TABLE, Scan, ScanDecodeError, ScanDecoder, encode_scan
from firmware_protocols.scanner.codec import SUFFIXES, IdentifyReply, encode_identify_reply

GOLDEN: dict[str, Any] = tomllib.loads(
    resources.files("firmware_protocols.scanner").joinpath("golden.toml").read_text("utf-8")
)


def decode_all(wire: bytes, **options: Any) -> list[Any]:
    decoder = ScanDecoder(**options)
    return decoder.feed(wire) + decoder.flush()


@pytest.mark.parametrize("vector", GOLDEN["vector"], ids=lambda v: v["name"])
def test_golden_vectors_decode(vector: dict[str, Any]) -> None:
    substitute = vector.get("gs_substitute")
    items = decode_all(bytes.fromhex(vector["wire"]), gs_substitute=substitute.encode() if substitute else None)
    assert items == [
        Scan(
            symbology_id=vector["symbology_id"],
            symbology=vector["symbology"],
            is_gs1=vector["is_gs1"],
            data=bytes.fromhex(vector["data"]),
        )
    ]


@pytest.mark.parametrize("vector", [v for v in GOLDEN["vector"] if "source" in v], ids=lambda v: v["name"])
def test_golden_payloads_are_the_expected_texts_of_real_barcodes(vector: dict[str, Any], shared_external: Path) -> None:
    # The expected decoded text of the image, as zxing-cpp's black-box test runner checks it (raw 0x1D kept).
    expected = (shared_external / "barcodes" / vector["source"]).read_bytes()
    assert bytes.fromhex(vector["data"]) == expected
    result_file = (shared_external / "barcodes" / vector["source"]).with_suffix(".result.txt")
    if result_file.exists():  # the image's AIM identifier, where the sample records one
        for line in result_file.read_text("utf-8").splitlines():
            if line.startswith("symbologyIdentifier="):
                assert vector["symbology_id"] == line.split("=", 1)[1]


def test_pharma_datamatrix_from_external_file_keeps_group_separator(shared_external: Path) -> None:
    text = (shared_external / "barcodes" / "datamatrix-3" / "#794.txt").read_bytes()
    [scan] = decode_all(encode_scan(text, symbology_id="]d2", suffix=b"\r\n"))
    assert isinstance(scan, Scan)
    assert scan.is_gs1 and scan.symbology == "gs1_datamatrix"
    assert scan.data == text and b"\x1d17310630" in scan.data
    assert scan.text.startswith("0108903819987659")


def test_upca_ndc_from_external_file(shared_external: Path) -> None:
    text = (shared_external / "barcodes" / "upca-5" / "03.txt").read_bytes()
    [scan] = decode_all(encode_scan(text, symbology_id="]E0", suffix=b"\n"))
    assert isinstance(scan, Scan)
    assert scan.text == "0312547701310" and scan.symbology == "ean_upc" and not scan.is_gs1


@pytest.mark.parametrize("vector", GOLDEN["error"], ids=lambda v: v["name"])
def test_golden_errors(vector: dict[str, Any]) -> None:
    good = b"]C0OK\r"
    items = decode_all(good + bytes.fromhex(vector["wire"]) + good)
    assert [type(i) for i in items] == [Scan, ScanDecodeError, Scan]
    assert items[1].reason == vector["reason"]


def test_table_loads_every_documented_symbology() -> None:
    ids = set(SCANNER_TABLE.symbologies)
    assert {"]d2", "]d1", "]C1", "]C0", "]E0", "]e0", "]Q3", "]Q1"} <= ids
    assert {s.id for s in SCANNER_TABLE.symbologies.values() if s.gs1} == {"]d2", "]C1", "]e0", "]Q3"}


def test_over_long_line_is_an_error_and_the_decoder_resyncs() -> None:
    decoder = ScanDecoder()
    limit = SCANNER_TABLE.max_line_bytes
    items = decoder.feed(b"]C0" + b"9" * (limit + 10))
    items += decoder.feed(b"9" * 1000 + b"\r]C0NEXT\r")
    assert [type(i) for i in items] == [ScanDecodeError, Scan]
    assert items[0].reason == "over_long" and items[1].data == b"NEXT"


def test_flush_reports_a_line_left_unfinished_and_never_a_scan() -> None:
    decoder = ScanDecoder()
    assert decoder.feed(b"]d2010030") == []
    [error] = decoder.flush()
    assert isinstance(error, ScanDecodeError) and error.reason == "truncated"
    assert decoder.feed(b"]C0A\r") == [Scan("]C0", "code128", False, b"A")]


def test_substitute_is_restored_only_in_gs1_symbologies() -> None:
    items = decode_all(b"]d2AB^]CD\r]C0AB^]CD\r", gs_substitute=b"^]")
    assert [i.data for i in items] == [b"AB\x1dCD", b"AB^]CD"]


def test_identify_reply_round_trip() -> None:
    wire = encode_identify_reply({"model": "X-SIMULATOR", "firmware": "1.2", "simulator": "1"}, suffix=b"\r\n")
    [reply] = decode_all(wire)
    assert isinstance(reply, IdentifyReply)
    assert reply.get("model") == "X-SIMULATOR" and reply.get("simulator") == "1"


# --- hypothesis -------------------------------------------------------------------------------------------

AIM_IDS = st.sampled_from([*SCANNER_TABLE.symbologies, "]X9", "]z0"])
SUFFIX = st.sampled_from(list(SUFFIXES.values()))
PRINTABLE = st.integers(0x20, 0x7E).map(lambda b: bytes([b]))
DATA = st.lists(st.one_of(PRINTABLE, st.just(b"\x1d")), min_size=1, max_size=80).map(b"".join)


def _expected(aim: str, data: bytes) -> Scan:
    symbology = SCANNER_TABLE.symbology(aim)
    return Scan(aim, symbology.name if symbology else "unknown", bool(symbology and symbology.gs1), data)


@given(st.lists(st.tuples(AIM_IDS, DATA, SUFFIX), min_size=1, max_size=8), st.integers(1, 17))
def test_round_trip_any_symbology_gs_and_terminator_any_chunking(
    scans: list[tuple[str, bytes, bytes]], chunk: int
) -> None:
    wire = b"".join(encode_scan(data, symbology_id=aim, suffix=suffix) for aim, data, suffix in scans)
    decoder = ScanDecoder()
    items = []
    for start in range(0, len(wire), chunk):
        items += decoder.feed(wire[start : start + chunk])
    assert items == [_expected(aim, data) for aim, data, _ in scans]
    assert decoder.pending == 0


@given(st.lists(st.tuples(st.sampled_from(["]d2", "]C1", "]e0", "]Q3"]), DATA), min_size=1, max_size=5))
def test_round_trip_with_gs_substitute(scans: list[tuple[str, bytes]]) -> None:
    # "^]" in the data itself would be ambiguous: a scanner set to send "^]" for GS cannot send a literal "^]".
    scans = [(aim, data.replace(b"^]", b"^")) for aim, data in scans]
    wire = b"".join(encode_scan(data, symbology_id=aim, gs_substitute=b"^]") for aim, data in scans)
    assert decode_all(wire, gs_substitute=b"^]") == [_expected(aim, data) for aim, data in scans]


GARBAGE = st.binary(min_size=0, max_size=60)


@settings(max_examples=150)
@given(
    st.lists(st.tuples(AIM_IDS, DATA, SUFFIX), min_size=1, max_size=5),
    st.lists(GARBAGE, min_size=6, max_size=6),
    st.integers(1, 23),
)
def test_garbage_before_between_and_after_never_raises_and_good_scans_survive(
    scans: list[tuple[str, bytes, bytes]], garbage: list[bytes], chunk: int
) -> None:
    # Garbage ends at a terminator (line noise between reads); every good scan must come out intact and in order.
    wire = garbage[0] + b"\r"
    for index, (aim, data, suffix) in enumerate(scans):
        wire += encode_scan(data, symbology_id=aim, suffix=suffix) + garbage[index + 1] + b"\n"
    decoder = ScanDecoder()
    items = []
    for start in range(0, len(wire), chunk):
        items += decoder.feed(wire[start : start + chunk])
    items += decoder.flush()
    expected = [_expected(aim, data) for aim, data, _ in scans]
    it = iter(items)
    assert all(any(item == want for item in it) for want in expected), (expected, items)


@given(st.binary(max_size=400), st.integers(1, 50))
def test_pure_garbage_never_raises(noise: bytes, chunk: int) -> None:
    decoder = ScanDecoder()
    for start in range(0, len(noise), chunk):
        for item in decoder.feed(noise[start : start + chunk]):
            assert isinstance(item, Scan | ScanDecodeError | IdentifyReply)
    decoder.flush()
    assert decoder.pending == 0


@given(
    DATA,
    GARBAGE.filter(
        lambda g: b"\r" not in g and b"\n" not in g and any(b < 0x20 and b not in b"\x04\t\x1c\x1d\x1e\x1f" for b in g)
    ),
)
def test_noise_inside_a_line_is_rejected_not_returned_as_a_scan(data: bytes, noise: bytes) -> None:
    cut = len(data) // 2
    items = decode_all(b"]d2" + data[:cut] + noise + data[cut:] + b"\r]C0NEXT\r")
    assert isinstance(items[0], ScanDecodeError)
    assert items[1:] == [Scan("]C0", "code128", False, b"NEXT")]
