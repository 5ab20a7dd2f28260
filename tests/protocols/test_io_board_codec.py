"""I/O board wire contract: golden vectors (checked against our codec AND pymodbus' own framer), value
round-trips, and RTU frame decoding that resynchronises through garbage."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer.rtu import FramerRTU
from pymodbus.pdu import DecodePDU

from firmware_protocols.io_board import codec
from firmware_protocols.io_board.register_map import CabinetLayout, load_register_map

MAP = load_register_map()
VECTORS: dict[str, Any] = tomllib.loads(
    resources.files("firmware_protocols.io_board").joinpath("golden_vectors.toml").read_text("utf-8")
)


def _frame(vector: dict[str, Any]) -> bytes:
    return bytes.fromhex(vector["hex"])


def _build(vector: dict[str, Any]) -> bytes:
    function, unit = vector["function"], vector["unit"]
    if "exception" in vector:
        return codec.rtu_frame(unit, codec.exception_response(function, vector["exception"]))
    if function == 3:
        pdu = (
            codec.read_holding_response(vector["values"])
            if vector.get("response")
            else codec.read_holding_request(vector["address"], vector["count"])
        )
    elif function == 6:
        pdu = codec.write_single_request(vector["address"], vector["values"][0])
    else:
        pdu = (
            codec.write_multiple_response(vector["address"], vector["count"])
            if vector.get("response")
            else codec.write_multiple_request(vector["address"], vector["values"])
        )
    return codec.rtu_frame(unit, pdu)


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=lambda v: v["name"])
def test_golden_frames_match_our_codec(vector: dict[str, Any]) -> None:
    assert _build(vector) == _frame(vector)
    unit, pdu = codec.parse_rtu_frame(_frame(vector))
    assert unit == vector["unit"] and pdu[0] & 0x7F == vector["function"]


@pytest.mark.parametrize("vector", VECTORS["frames"], ids=lambda v: v["name"])
def test_golden_frames_match_pymodbus_framer(vector: dict[str, Any]) -> None:
    framer = FramerRTU(DecodePDU(not vector.get("response", False)))
    used, pdu = framer.handleFrame(_frame(vector), 0, 0)
    assert pdu is not None and used == len(_frame(vector))
    assert pdu.dev_id == vector["unit"]
    if "exception" in vector:
        assert pdu.exception_code == vector["exception"]
    elif "values" in vector:
        assert list(pdu.registers) == vector["values"]
    if "address" in vector:
        assert pdu.address == vector["address"]
    pdu.transaction_id = 0
    assert framer.buildFrame(pdu) == _frame(vector)  # and pymodbus builds the same bytes back


def test_crc_matches_pymodbus() -> None:
    for vector in VECTORS["frames"]:
        body = _frame(vector)[:-2]
        assert FramerRTU.compute_CRC(body) == int.from_bytes(_frame(vector)[-2:], "big")


@pytest.mark.parametrize("vector", VECTORS["temperatures"], ids=lambda v: str(v["celsius"]))
def test_golden_temperatures(vector: dict[str, Any]) -> None:
    assert codec.encode_temperature(vector["celsius"]) == vector["word"]
    assert codec.decode_temperature(vector["word"]) == vector["celsius"]


@pytest.mark.parametrize("vector", VECTORS["lights"], ids=lambda v: f"{v['colour']}-{v['blink']}")
def test_golden_lights(vector: dict[str, Any]) -> None:
    light = codec.Light(vector["colour"], vector["blink"])
    assert codec.encode_light(MAP, light) == vector["word"]
    assert codec.decode_light(MAP, vector["word"]) == light


def test_golden_pocket_bits() -> None:
    for vector in VECTORS["pocket_bits"]:
        assert codec.pocket_bits(set(vector["pockets"])) == vector["word"]
        assert codec.pockets_from_bits(vector["word"]) == set(vector["pockets"])


@given(st.integers(-400, 1250))
def test_temperature_round_trip(tenths: int) -> None:
    word = codec.encode_temperature(tenths / 10)
    assert 0 <= word <= 0xFFFF and codec.decode_temperature(word) == tenths / 10


@given(st.integers(0, 0xFFFF))
def test_i16_round_trip(word: int) -> None:
    assert codec.encode_i16(codec.decode_i16(word)) == word


@given(st.sampled_from(sorted(MAP.colours)), st.sampled_from(sorted(MAP.blinks)))
def test_light_round_trip(colour: str, blink: str) -> None:
    light = codec.Light(colour, blink)
    assert codec.decode_light(MAP, codec.encode_light(MAP, light)) == light


@given(st.integers(0, 0xFFFF))
def test_light_decode_never_crashes(word: int) -> None:
    try:
        codec.decode_light(MAP, word)
    except ValueError:
        assert not codec.is_valid_light(MAP, word)


@given(st.frozensets(st.integers(1, 16)))
def test_pocket_bits_round_trip(pockets: frozenset[int]) -> None:
    assert codec.pockets_from_bits(codec.pocket_bits(pockets)) == pockets


def test_out_of_range_values_are_refused() -> None:
    for bad in (lambda: codec.encode_temperature(3276.8), lambda: codec.encode_humidity(100.1)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError):
        codec.encode_hold_time(0.5)
    with pytest.raises(ValueError):
        codec.encode_light(MAP, codec.Light("purple", "steady"))


request_frames = st.builds(
    lambda unit, address, count: codec.rtu_frame(unit, codec.read_holding_request(address, count)),
    st.integers(1, 247),
    st.integers(0, 0xFFFF),
    st.integers(1, 125),
)


@given(st.binary(max_size=40), request_frames, st.binary(max_size=40))
def test_rtu_decoder_resynchronises_after_garbage(before: bytes, frame: bytes, after: bytes) -> None:
    """pymodbus' framer as the simulator uses it: garbage, a silent gap (buffer reset), then a good frame decodes.
    Garbage alone never crashes or hangs it."""
    framer = FramerRTU(DecodePDU(True))
    buffer = before
    for _ in range(len(buffer) + 1):  # bounded: every pass consumes or stops
        try:
            used, _pdu = framer.handleFrame(buffer, 0, 0)
        except Exception:
            break
        if not used:
            break
        buffer = buffer[used:]
    used, pdu = framer.handleFrame(frame + after, 0, 0)  # after the inter-frame gap the buffer starts clean
    assert pdu is not None and pdu.function_code == 3
    unit, body = codec.parse_rtu_frame(frame)
    assert pdu.dev_id == unit and pdu.address == int.from_bytes(body[1:3], "big")


@given(request_frames, st.integers(0, 7), st.integers(1, 255))
def test_a_flipped_bit_fails_the_crc(frame: bytes, bit: int, position_seed: int) -> None:
    position = position_seed % len(frame)
    damaged = bytearray(frame)
    damaged[position] ^= 1 << bit
    with pytest.raises(codec.FrameError):
        codec.parse_rtu_frame(bytes(damaged))


# --- the map itself -------------------------------------------------------------------------------------------------


def test_addresses_follow_the_documented_formulas() -> None:
    assert MAP.drawer_address(1, "lock_command") == 24
    assert MAP.drawer_address(3, "hold_time") == 24 + 2 * 6 + 1
    assert MAP.pocket_address(2, 3, "light") == 200 + 64 + 2 * 4 + 2
    assert MAP.snapshot_span(16) == (0, 120)
    assert MAP.snapshot_span(16)[1] <= MAP.protocol.max_registers_per_read


def test_every_full_size_address_is_unique_and_located() -> None:
    seen: dict[int, str] = {}
    for first, count in MAP.mapped_ranges(16, 16):
        for address in range(first, first + count):
            location = MAP.locate(address, 16, 16)
            assert location is not None
            key = f"{location.block}{location.drawer}.{location.pocket}.{location.register.name}"
            assert address not in seen, (address, key, seen.get(address))
            seen[address] = key
    assert MAP.locate(150, 16, 16) is None
    assert MAP.locate(MAP.drawer_base(5), 4, 4) is None  # beyond a 4-drawer cabinet


def test_fault_table_codes_exist_in_the_catalogue() -> None:
    catalogue = tomllib.loads((resources.files("controller.errors") / "catalogue.toml").read_text("utf-8"))
    codes = set(catalogue["codes"])
    for rule in MAP.faults:
        assert rule.code in codes
        MAP.bit(rule.bitfield, rule.bit)
    assert set(MAP.modbus_exceptions.values()) <= codes


def test_layout_is_checked() -> None:
    with pytest.raises(ValueError):
        CabinetLayout(drawer_count=17).check(MAP)
    with pytest.raises(ValueError):
        CabinetLayout(drawer_count=2, lidded=frozenset({(3, 1)})).check(MAP)
