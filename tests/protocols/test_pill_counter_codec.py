"""Pill counter codec: golden vectors, round trips of every message, and a decoder that survives any garbage."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from firmware_protocols.pill_counter import codec
from firmware_protocols.pill_counter.codec import (
    DecodeError,
    DecodeErrorKind,
    Frame,
    FrameDecoder,
    MessageError,
)
from firmware_protocols.pill_counter.table import load_table

VECTORS: dict[str, Any] = tomllib.loads(
    resources.files("firmware_protocols.pill_counter").joinpath("golden_vectors.toml").read_text("utf-8")
)


def _fields(message: object) -> dict[str, Any]:
    out = {}
    for field in dataclasses.fields(message):  # type: ignore[arg-type]
        name = field.name
        value = getattr(message, name)
        if isinstance(value, tuple):
            value = [list(item) for item in value]
        elif isinstance(value, codec.CounterState):
            value = value.value
        out[name] = value
    return out


def test_crc_check_value() -> None:
    assert codec.crc16_ccitt_false(b"123456789") == 0x29B1


def test_table_maps_every_device_error_to_the_catalogue() -> None:
    from controller.errors import CATALOGUE

    table = load_table()
    names = {spec.name: spec.catalogue for spec in table.errors.values()}
    assert names["jam"] == "device.counter_jam"
    assert names["hopper_empty"] == "device.hopper_empty"
    assert names["foreign_object"] == "device.foreign_object"
    assert names["cover_open"] == "device.cover_open"
    assert names["count_uncertain"] == "device.count_uncertain"
    assert names["unknown_command"] == names["bad_parameter"] == "comm.protocol"
    assert all(code in CATALOGUE for code in names.values())
    assert all(spec.catalogue in CATALOGUE for spec in table.nak_reasons.values())


@pytest.mark.parametrize("vector", VECTORS["requests"], ids=lambda v: v["name"])
def test_golden_requests(vector: dict[str, Any]) -> None:
    frame = codec.decode_frame(bytes.fromhex(vector["hex"]))
    assert frame.seq == vector["seq"]
    request = codec.decode_request(frame)
    assert type(request).__name__ == vector["type"]
    assert _fields(request) == vector["fields"]
    assert codec.encode_request(vector["seq"], request) == bytes.fromhex(vector["hex"])


@pytest.mark.parametrize("vector", VECTORS["replies"], ids=lambda v: v["name"])
def test_golden_replies(vector: dict[str, Any]) -> None:
    frame = codec.decode_frame(bytes.fromhex(vector["hex"]))
    reply = codec.decode_reply(frame)
    assert type(reply).__name__ == vector["type"]
    assert _fields(reply) == vector["fields"]
    assert codec.encode_reply(vector["seq"], reply) == bytes.fromhex(vector["hex"])


@pytest.mark.parametrize("vector", VECTORS["rejects"], ids=lambda v: v["name"])
def test_golden_rejects(vector: dict[str, Any]) -> None:
    items = FrameDecoder().feed(bytes.fromhex(vector["hex"]))
    items += FrameDecoder().expire() if not items else []
    assert items and isinstance(items[0], DecodeError)
    assert items[0].kind == vector["first_error"]
    assert not any(isinstance(item, Frame) for item in items)


def test_unknown_command_and_bad_payload_are_message_errors() -> None:
    with pytest.raises(MessageError) as unknown:
        codec.decode_request(Frame(1, 0x7E))
    assert unknown.value.reason == "unknown_command"
    with pytest.raises(MessageError) as short:
        codec.decode_request(Frame(1, codec.START_COUNT, b"\x01"))
    assert short.value.reason == "bad_parameter"
    with pytest.raises(MessageError):
        codec.decode_reply(Frame(1, codec.ACK, bytes([codec.STATUS, 9, 0, 0, 0, 0, 0])))


# --- hypothesis --------------------------------------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
seqs = u8
text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)

requests = st.one_of(
    st.builds(codec.Identify),
    st.builds(codec.StartCount, u16),
    st.builds(codec.Stop),
    st.builds(codec.Status),
    st.builds(codec.Result),
    st.builds(codec.Clear),
    st.builds(codec.SelectCanister, u8),
    st.builds(codec.Dispense, u16),
    st.builds(codec.Report),
)
replies = st.one_of(
    st.builds(codec.IdentifyReply, text, text, text, st.booleans(), st.booleans(), u8),
    st.builds(codec.Accepted, st.sampled_from([codec.START_COUNT, codec.STOP, codec.CLEAR])),
    st.builds(codec.StatusReply, st.sampled_from(list(codec.CounterState)), u8, u16, u16),
    st.builds(codec.ResultReply, u16, u16, st.booleans(), st.booleans()),
    st.builds(codec.CanisterSelected, u8, u16),
    st.builds(codec.DispenseReply, u8, u16),
    st.builds(codec.ReportReply, u8, u16, st.lists(st.tuples(u8, u16), max_size=40).map(tuple)),
    st.builds(codec.DeviceError, u8, u8, u16),
    st.builds(codec.Nak, u8),
)


@given(seqs, requests)
def test_every_request_round_trips(seq: int, request: codec.Request) -> None:
    frame = codec.decode_frame(codec.encode_request(seq, request))
    assert frame.seq == seq
    assert codec.decode_request(frame) == request


@given(seqs, replies)
def test_every_reply_round_trips(seq: int, reply: codec.Reply) -> None:
    frame = codec.decode_frame(codec.encode_reply(seq, reply))
    assert frame.seq == seq
    assert codec.decode_reply(frame) == reply


frames = st.builds(Frame, seqs, u8, st.binary(max_size=codec.MAX_PAYLOAD))


@st.composite
def noisy_streams(draw: st.DrawFn) -> tuple[bytes, list[Frame], bool, list[int]]:
    """Frames with garbage before, inside (corrupting that frame) and after; chopped at random points."""
    good: list[Frame] = []
    stream = bytearray()
    dirty = False
    for frame in draw(st.lists(frames, max_size=6)):
        before = draw(st.binary(max_size=20))
        stream += before
        dirty |= bool(before)
        wire = codec.encode_frame(frame)
        if draw(st.booleans()):
            cut = draw(st.integers(1, len(wire) - 1))
            inside = draw(st.binary(min_size=1, max_size=10))
            corrupted = wire[:cut] + inside + wire[cut:]
            # Garbage that re-creates the intact frame behind it (ending in STX right after the frame's own STX, or
            # repeating its first bytes) leaves that frame whole on the wire: the decoder rightly resyncs onto it.
            assume(wire not in corrupted)
            stream += corrupted
            dirty = True
        else:
            stream += wire
            good.append(frame)
    after = draw(st.binary(max_size=20))
    stream += after
    dirty |= bool(after)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    return bytes(stream), good, dirty, cuts


@settings(max_examples=300, deadline=None)
@given(noisy_streams())
def test_decoder_resyncs_on_garbage(case: tuple[bytes, list[Frame], bool, list[int]]) -> None:
    stream, good, dirty, cuts = case
    decoder = FrameDecoder()
    items: list[Frame | DecodeError] = []
    previous = 0
    for cut in [*cuts, len(stream)]:
        items += decoder.feed(stream[previous:cut])
        previous = cut
    items += decoder.expire()  # the inter-byte timeout after the last byte
    assert decoder.pending == 0
    decoded = [item for item in items if isinstance(item, Frame)]
    # Every intact frame comes out, in order. (A false frame in random garbage would need a 1-in-2^24 match of
    # CRC and ETX; hypothesis does not search for CRC collisions.)
    assert decoded == good
    if dirty:
        assert any(isinstance(item, DecodeError) for item in items)
    else:
        assert items == good


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(1, 64), max_size=20))
def test_decoder_never_raises_and_never_holds_more_than_one_frame(data: bytes, chunks: list[int]) -> None:
    decoder = FrameDecoder()
    at = 0
    for size in [*chunks, len(data)]:
        decoder.feed(data[at : at + size])
        at += size
        assert decoder.pending < codec.MAX_FRAME
        assert 1 <= decoder.bytes_wanted() <= codec.MAX_FRAME
    decoder.expire()
    assert decoder.pending == 0


def test_garbage_kinds_are_reported() -> None:
    good = codec.encode_request(7, codec.Status())
    items = FrameDecoder().feed(b"\x55\x02\xf9" + good)
    kinds = [item.kind for item in items if isinstance(item, DecodeError)]
    assert DecodeErrorKind.NOISE in kinds and DecodeErrorKind.BAD_LENGTH in kinds
    assert items[-1] == Frame(7, codec.STATUS)
