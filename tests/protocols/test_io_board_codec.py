"""I/O board wire contract: golden vectors (checked against our codec AND pymodbus' own framer), value
round-trips, RTU frame decoding that resynchronises through garbage, and the register map of each protocol
version (version 2 only adds; a version 1 map is version 2 without the opening counters)."""

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
from firmware_protocols.io_board.register_map import CabinetLayout, load_register_map, parse_register_map

MAP = load_register_map()
V1 = load_register_map(1)
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


@pytest.mark.parametrize("vector", VECTORS["counters"], ids=lambda v: f"{v['openings']}-{v['seen']}")
def test_golden_counters(vector: dict[str, Any]) -> None:
    assert codec.unrecorded_openings(vector["openings"], vector["seen"]) == vector["unrecorded"]


def test_counter_wraps_and_refuses_non_words() -> None:
    assert codec.count_opening(65535) == 0 and codec.count_opening(41) == 42
    with pytest.raises(ValueError):
        codec.unrecorded_openings(65536, 0)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_unrecorded_openings_follow_the_counter_through_the_wrap(seen: int, more: int) -> None:
    openings = seen
    for _ in range(more % 70):
        openings = codec.count_opening(openings)
    assert codec.unrecorded_openings(openings, seen) == more % 70


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


@pytest.mark.parametrize("register_map", [V1, MAP], ids=["v1", "v2"])
def test_addresses_follow_the_documented_formulas(register_map: Any) -> None:
    assert register_map.drawer_address(1, "lock_command") == 24
    assert register_map.drawer_address(3, "hold_time") == 24 + 2 * 6 + 1
    assert register_map.pocket_address(2, 3, "light") == 200 + 64 + 2 * 4 + 2
    assert register_map.snapshot_span(16) == (0, 120)
    assert register_map.snapshot_span(16)[1] <= register_map.protocol.max_registers_per_read


def test_version_2_addresses_follow_the_documented_formulas() -> None:
    assert MAP.drawer_counter_address(1, "openings") == 120
    assert MAP.drawer_counter_address(3, "openings_seen") == 120 + 2 * 4 + 1
    assert MAP.drawer_counter_address(16, "reserved") == 183  # the block ends inside v1's unused 120..199
    assert MAP.drawer_counters_span(16) == (120, 64) and MAP.protocol.max_registers_per_read >= 64
    # the pocket counters start right after the last register of the version 1 pocket block
    assert MAP.pocket_address(16, 16, "pocket_status") + 1 == MAP.pocket_counters_base(1, 1) == 1224
    assert MAP.pocket_counter_address(2, 1, "lid_openings_seen") == 1224 + 32 + 1
    assert MAP.pocket_counter_address(16, 16, "lid_openings_seen") == 1735
    assert MAP.bit("drawer_status", "opened").bit == 6 and MAP.bit("pocket_status", "lid_opened").bit == 3


def test_a_version_1_and_a_version_2_map_both_load() -> None:
    assert (V1.protocol.protocol_version, MAP.protocol.protocol_version) == (1, 2)
    assert V1.newest_version == MAP.newest_version == 2
    assert not V1.counts_openings and MAP.counts_openings
    assert V1.drawer_counters is None and V1.pocket_counters is None
    assert V1.for_version(2) is MAP and MAP.for_version(1) == V1 and load_register_map(2) is MAP
    # version 1 addresses and meanings are untouched
    for name in ("board", "environment", "drawer", "pocket"):
        assert getattr(V1, name) == getattr(MAP, name)
    assert {b.name for b in V1.bitfields["drawer_status"]} == {b.name for b in MAP.bitfields["drawer_status"]} - {
        "opened"
    }
    assert V1.known_mask("drawer_status") == 0x3F and MAP.known_mask("drawer_status") == 0x7F
    assert V1.known_mask("pocket_status") == 0x07 and MAP.known_mask("pocket_status") == 0x0F
    assert V1.board.register("protocol_version").accepts(1) and MAP.board.register("protocol_version").accepts(2)
    with pytest.raises(KeyError):
        V1.drawer_counter_address(1, "openings")
    with pytest.raises(KeyError):
        V1.bit("drawer_status", "opened")
    with pytest.raises(ValueError):
        MAP.for_version(3)


@pytest.mark.parametrize("register_map", [V1, MAP], ids=["v1", "v2"])
def test_every_full_size_address_is_unique_and_located(register_map: Any) -> None:
    seen: dict[int, str] = {}
    for first, count in register_map.mapped_ranges(16, 16):
        for address in range(first, first + count):
            location = register_map.locate(address, 16, 16)
            assert location is not None
            key = f"{location.block}{location.drawer}.{location.pocket}.{location.register.name}"
            assert address not in seen, (address, key, seen.get(address))
            seen[address] = key
    assert register_map.locate(190, 16, 16) is None  # unused in every version
    assert register_map.locate(register_map.drawer_base(5), 4, 4) is None  # beyond a 4-drawer cabinet


def test_version_2_addresses_are_not_mapped_on_version_1() -> None:
    v1_addresses = {a for first, count in V1.mapped_ranges(16, 16) for a in range(first, first + count)}
    v2_addresses = {a for first, count in MAP.mapped_ranges(16, 16) for a in range(first, first + count)}
    added = v2_addresses - v1_addresses
    assert v1_addresses < v2_addresses  # add, don't move
    assert added == set(range(120, 184)) | set(range(1224, 1736))
    for address in sorted(added):
        assert V1.locate(address, 16, 16) is None
        location = MAP.locate(address, 16, 16)
        assert location is not None and location.block in ("drawer_counters", "pocket_counters")
        assert location.register.since == 2
    for address in v1_addresses:  # and every version 1 address means the same on version 2
        assert V1.locate(address, 16, 16) == MAP.locate(address, 16, 16)
    counters = MAP.locate(MAP.drawer_counters_base(5), 4, 4)
    assert counters is None  # beyond a 4-drawer cabinet, the counters are not mapped either
    assert MAP.locate(MAP.pocket_counters_base(1, 5), 4, 4) is None


def test_a_since_beyond_the_newest_version_is_refused() -> None:
    raw = tomllib.loads(resources.files("firmware_protocols.io_board").joinpath("register_map.toml").read_text())
    raw["bitfields"]["drawer_status"].append({"name": "future", "bit": 7, "since": 3})
    with pytest.raises(ValueError, match="since 3"):
        parse_register_map(raw, 1)  # the table as a whole is checked, whichever version is asked for
    raw["bitfields"]["drawer_status"].pop()
    assert parse_register_map(raw, 1) == V1


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
