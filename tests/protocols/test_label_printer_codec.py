"""Label printer codec: ~HS/~HI golden answers, stream splitting, vial label building and field escaping."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocols.label_printer import (
    PRINTER_TABLE,
    HostIdentification,
    HostStatus,
    ResponseError,
    VialLabel,
    ZplCommand,
    ZplDecodeError,
    ZplLabel,
    ZplSplitter,
    build_vial_label,
    encode_host_identification,
    encode_host_status,
    escape_field,
    label_fields,
    parse_host_identification,
    parse_host_status,
    unescape_field,
)

GOLDEN: dict[str, Any] = tomllib.loads(
    resources.files("firmware_protocols.label_printer").joinpath("golden.toml").read_text("utf-8")
)


def split_all(wire: bytes) -> list[Any]:
    splitter = ZplSplitter()
    return splitter.feed(wire) + splitter.flush()


@pytest.mark.parametrize("vector", GOLDEN["host_status"], ids=lambda v: v["name"])
def test_host_status_golden(vector: dict[str, Any]) -> None:
    wire = vector["wire"].encode("ascii")
    status = parse_host_status(wire)
    assert status == HostStatus(**vector["expect"])
    assert [f.flag for f in status.faults()] == vector["faults"]
    assert encode_host_status(status) == wire


@pytest.mark.parametrize("vector", GOLDEN["host_identification"], ids=lambda v: v["name"])
def test_host_identification_golden(vector: dict[str, Any]) -> None:
    wire = vector["wire"].encode("ascii")
    ident = parse_host_identification(wire)
    assert (ident.model, ident.firmware, ident.dots_per_mm, ident.memory_kb) == (
        vector["model"],
        vector["firmware"],
        vector["dots_per_mm"],
        vector["memory_kb"],
    )
    assert ident.is_simulator() is vector["is_simulator"]
    assert encode_host_identification(ident) == wire


@pytest.mark.parametrize("vector", GOLDEN["stream"], ids=lambda v: v["name"])
def test_stream_golden(vector: dict[str, Any]) -> None:
    got = []
    for item in split_all(vector["wire"].encode("ascii")):
        if isinstance(item, ZplLabel):
            got.append(["label", item.raw.decode()])
        elif isinstance(item, ZplCommand):
            got.append(["command", item.name])
        else:
            got.append(["error", item.reason])
    assert got == vector["items"]


@pytest.mark.parametrize("vector", GOLDEN["vial_label"], ids=lambda v: v["name"])
def test_vial_label_golden(vector: dict[str, Any]) -> None:
    names = {f.name for f in fields(VialLabel)}
    label = VialLabel(**{k: v for k, v in vector.items() if k in names})
    zpl = build_vial_label(label)
    assert zpl == vector["zpl"].encode("ascii")
    assert label_fields(zpl)[0] == f"{label.drug_name} {label.strength}"
    assert f"NDC {label.ndc}  Qty 30 tablets" in label_fields(zpl)


def test_fault_table_maps_every_flag_to_printer_fault() -> None:
    flags = {f.name for f in fields(HostStatus) if f.type in ("bool", bool)}
    assert {f.flag for f in PRINTER_TABLE.faults} <= flags
    assert {f.code for f in PRINTER_TABLE.faults} == {"device.printer_fault"}


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"\x02030,0,0\x03\r\n\x02001\x03\r\n\x020000,0\x03\r\n",  # too few fields
        b"\x02030,0,0,0254,000,0,0,0,000,0,0,0\x03\r\n",  # one string of three
        b"\x02030,0,0,0254,000,0,0,0,000,0,0,X\x03\r\n\x02001,0,0,0,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n",
        b"junk\x02030,0,0,0254,000,0,0,0,000,0,0,0\x03",
        b"\x02030,0,0,0254,000,0,0,0,000,0,0,0",  # no ETX
    ],
)
def test_bad_host_status_answers_raise_response_error(wire: bytes) -> None:
    with pytest.raises(ResponseError):
        parse_host_status(wire)


def test_over_long_label_is_dropped_and_the_splitter_resyncs() -> None:
    splitter = ZplSplitter()
    items = splitter.feed(b"^XA^FD" + b"x" * (PRINTER_TABLE.max_label_bytes + 5))
    items += splitter.feed(b"yyy^XZ~HS^XA^XZ")
    assert [type(i) for i in items] == [ZplDecodeError, ZplCommand, ZplLabel]
    assert items[0].reason == "over_long"


# --- hypothesis -------------------------------------------------------------------------------------------

TEXT = st.text(min_size=0, max_size=40)


@given(TEXT)
def test_escape_round_trip_and_escaped_data_is_safe(text: str) -> None:
    escaped = escape_field(text)
    assert escaped.isascii() and not set(escaped) & {"^", "~", "\r", "\n"}
    assert unescape_field(escaped) == text


LABELS = st.builds(
    VialLabel,
    drug_name=TEXT,
    strength=TEXT,
    ndc=st.from_regex(r"\d{4,5}-\d{3,4}-\d{1,2}", fullmatch=True),
    lot=TEXT,
    expiry=st.dates(),
    count=st.integers(0, 10_000),
    unit=TEXT,
    patient=TEXT,
    rx_number=TEXT,
)


@given(LABELS)
def test_built_labels_split_back_as_one_label_with_their_fields(label: VialLabel) -> None:
    zpl = build_vial_label(label)
    assert split_all(zpl) == [ZplLabel(zpl)]
    got = label_fields(zpl)
    assert got[0] == f"{label.drug_name} {label.strength}"
    assert got[3] == label.patient and got[-1] == label.rx_number


ITEMS = st.one_of(LABELS.map(build_vial_label), st.sampled_from([b"~HS", b"~HI", b"~JA"]))


@settings(max_examples=100)
@given(
    st.lists(ITEMS, min_size=1, max_size=5),
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"^", b"").replace(b"~", b"")), min_size=6, max_size=6),
    st.integers(1, 97),
)
def test_junk_between_items_never_raises_and_every_item_survives(
    items: list[bytes], junk: list[bytes], chunk: int
) -> None:
    wire = junk[0] + b"".join(item + junk[i + 1] for i, item in enumerate(items))
    splitter = ZplSplitter()
    out = []
    for start in range(0, len(wire), chunk):
        out += splitter.feed(wire[start : start + chunk])
    out += splitter.flush()
    good = [i for i in out if not isinstance(i, ZplDecodeError)]
    expected = [ZplCommand(i.decode()) if i.startswith(b"~") else ZplLabel(i) for i in items]
    assert good == expected


@given(st.binary(max_size=300), st.integers(1, 40))
def test_pure_garbage_never_raises(noise: bytes, chunk: int) -> None:
    splitter = ZplSplitter()
    for start in range(0, len(noise), chunk):
        splitter.feed(noise[start : start + chunk])
    splitter.flush()
    assert splitter.pending == 0


@given(st.builds(HostStatus, **{f.name: st.booleans() for f in fields(HostStatus) if f.type in ("bool", bool)}))
def test_host_status_round_trip(status: HostStatus) -> None:
    assert parse_host_status(encode_host_status(status)) == status


def test_host_identification_refuses_separators() -> None:
    with pytest.raises(ValueError):
        encode_host_identification(HostIdentification("A,B", "1", 8, 1, ""))
