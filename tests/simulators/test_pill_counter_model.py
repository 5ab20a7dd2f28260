"""The pill counter model's pure core on a manual clock, and its transports spoken to with raw bytes."""

from __future__ import annotations

import asyncio
import json

from firmware_protocols.pill_counter import codec
from firmware_protocols.pill_counter.codec import Frame
from simulators import pill_counter as sim
from simulators.common.clock import ManualClock
from simulators.common.control import ControlSurface
from simulators.common.faults import Fault, FaultKind, FaultPlan
from simulators.pill_counter.model import PillCounterModel

ERR = {spec.name: code for code, spec in codec.TABLE.errors.items()}


def ask(model: PillCounterModel, seq: int, request: codec.Request) -> codec.Reply:
    return codec.decode_reply(model.handle(codec.decode_frame(codec.encode_request(seq, request))))


def test_counting_takes_time_on_the_injected_clock() -> None:
    clock = ManualClock()
    model = PillCounterModel(clock=clock, rate=10.0, hopper=50)
    assert ask(model, 1, codec.StartCount(30)) == codec.Accepted(codec.START_COUNT)
    clock.advance(1.0)
    assert ask(model, 2, codec.Status()) == codec.StatusReply(codec.CounterState.COUNTING, 0, 10, 30)
    assert ask(model, 3, codec.Result()) == codec.DeviceError(codec.RESULT, ERR["wrong_state"])
    clock.advance(2.5)
    assert ask(model, 4, codec.Status()) == codec.StatusReply(codec.CounterState.DONE, 0, 30, 30)
    assert ask(model, 5, codec.Result()) == codec.ResultReply(30, 30, uncertain=False, stopped_early=False)
    assert (model.vial, model.hopper) == (30, 20)


def test_a_repeated_seq_is_answered_from_the_cache_without_acting_again() -> None:
    model = PillCounterModel()
    ask(model, 1, codec.SelectCanister(1))
    first = model.handle(Frame(2, codec.DISPENSE, (5).to_bytes(2, "big")))
    again = model.handle(Frame(2, codec.DISPENSE, (5).to_bytes(2, "big")))
    assert first == again
    assert (model.vial, model.dispense_actions, model.requests) == (5, 1, 3)
    # The same SEQ with different content is a new command (a controller bug, but not a duplicate).
    ask(model, 2, codec.Dispense(6))
    assert model.vial == 11
    # SEQ 0 opens a session: never deduplicated.
    model.handle(Frame(0, codec.DISPENSE, (1).to_bytes(2, "big")))
    model.handle(Frame(0, codec.DISPENSE, (1).to_bytes(2, "big")))
    assert model.vial == 13


def test_unknown_command_and_bad_payload_are_answered_with_err() -> None:
    model = PillCounterModel()
    assert codec.decode_reply(model.handle(Frame(1, 0x7E))) == codec.DeviceError(0x7E, ERR["unknown_command"])
    reply = codec.decode_reply(model.handle(Frame(2, codec.START_COUNT, b"\x00")))
    assert reply == codec.DeviceError(codec.START_COUNT, ERR["bad_parameter"])


def test_faults_fire_at_a_time() -> None:
    clock = ManualClock()
    model = PillCounterModel(clock=clock, faults=FaultPlan([Fault(FaultKind.FOREIGN_OBJECT, at_time=0.5)]), hopper=9)
    ask(model, 1, codec.StartCount(9))
    clock.advance(0.6)
    reply = ask(model, 2, codec.Status())
    assert isinstance(reply, codec.StatusReply)
    assert reply.state is codec.CounterState.FAULT and reply.fault == ERR["foreign_object"]


def test_raw_bytes_over_tcp_nak_resync_and_control_socket() -> None:
    async def body() -> None:
        control = ControlSurface()
        running = await sim.start(control=control, hopper=3)
        control_port = await control.serve()
        try:
            assert running.env_var == "ADC_PILL_COUNTER" and running.url.startswith("socket://127.0.0.1:")
            port = int(running.url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            bad = bytearray(codec.encode_request(5, codec.Status()))
            bad[-2] ^= 0xFF
            writer.write(b"\x00\x55" + bytes(bad))
            async with asyncio.timeout(2):
                nak = codec.FrameDecoder().feed(await reader.readexactly(8))
            assert nak == [Frame(5, codec.NAK, b"\x01")]
            writer.write(b"\x02\xf0garbage" + codec.encode_request(6, codec.Status()))
            async with asyncio.timeout(2):
                decoder = codec.FrameDecoder()
                frames: list[Frame] = []
                while not any(frame.seq == 6 for frame in frames):
                    frames += [i for i in decoder.feed(await reader.read(64)) if isinstance(i, Frame)]
            # The false candidate (STX, LEN 240) expires after the inter-byte timeout and is NAKed with the SEQ byte it
            # seemed to carry ("g"); the rescan then finds the real request and answers it.
            assert frames[:-1] == [Frame(ord("g"), codec.NAK, b"\x03")]
            assert frames[-1].seq == 6 and frames[-1].command == codec.ACK
            writer.close()
            c_reader, c_writer = await asyncio.open_connection("127.0.0.1", control_port)
            c_writer.write(json.dumps({"device": "pill_counter", "action": "pour", "args": {"n": 4}}).encode() + b"\n")
            async with asyncio.timeout(2):
                assert json.loads(await c_reader.readline()) == {"ok": True, "result": 7}
            c_writer.close()
        finally:
            await control.close()
            await running.close()

    asyncio.run(body())
