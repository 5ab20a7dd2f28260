"""The pill counter / counting robot driver over ``SerialLink`` (a serial port, a pseudo-terminal or ``socket://``).

Responsible for the link discipline of ``firmware_protocols/pill_counter/SPEC.md``: one request on the wire at a
time, sequence numbers (SEQ 0 opens the session, then 1..255 wrapping to 1), retransmission of the SAME frame after
a NAK, a damaged answer or a timeout (at most ``retries`` times), resynchronisation on garbage (the shared
``FrameDecoder``), answers with a stale SEQ ignored, and device error codes mapped to catalogue errors by the
``errors`` table of ``messages.toml``. Not responsible for deciding what to count: the engine does that.

Retransmitting the same SEQ is safe even for DISPENSE, because the device answers a repeated SEQ from its cache and
does not act again. What the driver never does is send a *new* DISPENSE after the retries ran out: it raises, and
the caller must ``report()`` to learn what reached the vial.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from controller.errors import CATALOGUE, Category, CommunicationError, ControllerError, DeviceFaultError
from controller.hardware.pill_counter.interface import (
    CounterState,
    CounterStatus,
    CountResult,
    DeviceIdentity,
    DispenseResult,
    RobotReport,
)
from controller.hardware.serial_transport import SerialLink, SerialSettings
from firmware_protocols.pill_counter import codec
from firmware_protocols.pill_counter.codec import (
    Accepted,
    CanisterSelected,
    DecodeError,
    DecodeErrorKind,
    DeviceError,
    DispenseReply,
    Frame,
    FrameDecoder,
    IdentifyReply,
    MessageError,
    Nak,
    ReportReply,
    Request,
    ResultReply,
    StatusReply,
)

_PROTOCOL = codec.TABLE.protocol
_R = TypeVar("_R")
# Device error code -> catalogue code, straight from the table; unknown codes become device.unknown_fault.
DEVICE_ERRORS = MappingProxyType({code: spec.catalogue for code, spec in codec.TABLE.errors.items()})
NAK_ERRORS = MappingProxyType({code: spec.catalogue for code, spec in codec.TABLE.nak_reasons.items()})
_ERROR_CLASS: MappingProxyType[Category, type[ControllerError]] = MappingProxyType(
    {Category.DEVICE_FAULT: DeviceFaultError, Category.COMMUNICATION: CommunicationError}
)
_DECODE_PROBLEM = {
    DecodeErrorKind.BAD_CRC: "comm.crc",
    DecodeErrorKind.BAD_ETX: "comm.framing",
    DecodeErrorKind.BAD_LENGTH: "comm.framing",
    DecodeErrorKind.TRUNCATED: "comm.timeout",  # the answer stopped mid-frame: the device stopped answering
}


def device_error(code: int, detail: str, **context: object) -> ControllerError:
    """The catalogue error for a device error code, by table."""
    catalogue_code = DEVICE_ERRORS.get(code, "device.unknown_fault")
    error_class = _ERROR_CLASS[CATALOGUE[catalogue_code].category]
    return error_class(catalogue_code, detail, device_code=code, **context)


@dataclass
class LinkStats:
    transactions: int = 0
    retransmissions: int = 0
    naks: int = 0
    bad_frames: int = 0
    stale_frames: int = 0


class PillCounterDriver:
    """Implements ``PillCounter`` and ``CanisterRobot``. Open with ``await PillCounterDriver.connect(url)``."""

    def __init__(
        self,
        link: SerialLink,
        *,
        response_timeout: float = _PROTOCOL.response_timeout_s,
        inter_byte_timeout: float = _PROTOCOL.inter_byte_timeout_s,
        retries: int = _PROTOCOL.max_retries,
        poll_interval: float = 0.02,
    ) -> None:
        self._link = link
        self._response_timeout = response_timeout
        self._inter_byte_timeout = inter_byte_timeout
        self._retries = retries
        self._poll_interval = poll_interval
        self._decoder = FrameDecoder()
        self._seq = codec.RESET_SEQ
        self._session_open = False
        self.stats = LinkStats()
        self.url = link.url

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        open_timeout: float = 5.0,
        response_timeout: float = _PROTOCOL.response_timeout_s,
        inter_byte_timeout: float = _PROTOCOL.inter_byte_timeout_s,
        retries: int = _PROTOCOL.max_retries,
        poll_interval: float = 0.02,
    ) -> PillCounterDriver:
        """Open the link and IDENTIFY with SEQ 0, which resets the device's answer cache (a fresh session)."""
        settings = SerialSettings(
            baudrate=_PROTOCOL.baudrate,
            bytesize=_PROTOCOL.bytesize,
            parity=_PROTOCOL.parity,
            stopbits=_PROTOCOL.stopbits,
        )
        link = await SerialLink.open(url, settings, timeout=open_timeout)
        driver = cls(
            link,
            response_timeout=response_timeout,
            inter_byte_timeout=inter_byte_timeout,
            retries=retries,
            poll_interval=poll_interval,
        )
        try:
            identity = await driver.identify()
            if identity.protocol_version != _PROTOCOL.version:
                raise CommunicationError(
                    "comm.protocol",
                    f"device speaks protocol version {identity.protocol_version}, this driver {_PROTOCOL.version}",
                    url=url,
                )
        except BaseException:
            await link.close()
            raise
        return driver

    async def close(self) -> None:
        await self._link.close()

    # --- PillCounter -------------------------------------------------------------------------------------------

    async def identify(self) -> DeviceIdentity:
        reply = await self._expect(codec.Identify(), IdentifyReply)
        return DeviceIdentity(
            model=reply.model,
            firmware=reply.firmware,
            serial=reply.serial,
            is_simulator=reply.is_simulator,
            has_robot=reply.has_robot,
            protocol_version=reply.version,
        )

    async def status(self) -> CounterStatus:
        reply = await self._expect(codec.Status(), StatusReply)
        fault_code = DEVICE_ERRORS.get(reply.fault, "device.unknown_fault") if reply.fault else None
        return CounterStatus(CounterState(reply.state.value), reply.count, reply.target, fault_code)

    async def count(self, target: int, timeout: float) -> CountResult:
        try:
            async with asyncio.timeout(timeout):
                return await self._count(target)
        except TimeoutError as exc:
            await self._stop_quietly()
            raise CommunicationError(
                "comm.timeout", f"count of {target} not finished within {timeout} s; counter stopped", url=self.url
            ) from exc

    async def _count(self, target: int) -> CountResult:
        await self._expect(codec.StartCount(target), Accepted)
        while True:
            status = await self._expect(codec.Status(), StatusReply)
            if status.state is codec.CounterState.COUNTING:
                await asyncio.sleep(self._poll_interval)
                continue
            if status.state is codec.CounterState.FAULT:
                raise device_error(
                    status.fault, f"counter fault after {status.count} of {target}", count=status.count, target=target
                )
            if status.state is codec.CounterState.IDLE:
                raise CommunicationError(
                    "comm.protocol", "counter went idle during a count (cleared or restarted?)", url=self.url
                )
            break
        result = await self._expect(codec.Result(), ResultReply)
        if result.uncertain:
            raise DeviceFaultError("device.count_uncertain", "counter is not sure of its count", count=result.count)
        if result.count != target or result.target != target or result.stopped_early:
            raise DeviceFaultError(
                "device.bad_value",
                f"counted {result.count} for a target of {target} (device target {result.target})",
                count=result.count,
                target=target,
            )
        return CountResult(target=target, count=result.count)

    async def stop(self) -> CounterStatus:
        await self._expect(codec.Stop(), Accepted)
        return await self.status()

    async def clear(self) -> CounterStatus:
        await self._expect(codec.Clear(), Accepted)
        status = await self.status()
        if status.state is not CounterState.IDLE:
            raise DeviceFaultError("device.bad_value", f"counter did not clear: {status}")
        return status

    # --- CanisterRobot -----------------------------------------------------------------------------------------

    async def dispense(self, canister: int, n: int) -> DispenseResult:
        selected = await self._expect(codec.SelectCanister(canister), CanisterSelected)
        if selected.canister != canister:
            raise DeviceFaultError("device.bad_value", f"selected canister {selected.canister}, asked {canister}")
        reply = await self._expect(codec.Dispense(n), DispenseReply)
        if reply.canister != canister or reply.dispensed != n:
            raise DeviceFaultError(
                "device.bad_value",
                f"dispensed {reply.dispensed} from canister {reply.canister}; asked {n} from {canister}",
            )
        return DispenseResult(canister=canister, dispensed=n)

    async def report(self) -> RobotReport:
        reply = await self._expect(codec.Report(), ReportReply)
        return RobotReport(selected=reply.selected, vial=reply.vial, canisters=dict(reply.canisters))

    # --- link discipline ---------------------------------------------------------------------------------------

    async def _stop_quietly(self) -> None:
        try:
            async with asyncio.timeout(self._response_timeout * (self._retries + 1) + 1.0):
                await self._expect(codec.Stop(), Accepted)
        except (TimeoutError, ControllerError):
            pass

    async def _expect(self, request: Request, reply_type: type[_R]) -> _R:
        reply = await self.transact(request)
        if isinstance(reply, DeviceError):
            raise device_error(reply.error, f"device refused {type(request).__name__}", count=reply.count)
        if not isinstance(reply, reply_type):
            raise CommunicationError("comm.protocol", f"{type(request).__name__} answered with {reply!r}", url=self.url)
        if isinstance(reply, Accepted) and reply.command != request.CODE:
            raise CommunicationError("comm.protocol", f"ACK for 0x{reply.command:02X}", url=self.url)
        return reply

    def _next_seq(self) -> int:
        if not self._session_open:
            self._session_open = True
            return codec.RESET_SEQ
        self._seq = self._seq % 255 + 1  # 1..255; 0 is reserved for opening a session
        return self._seq

    async def transact(self, request: Request) -> codec.Reply:
        """Send one request and return its reply (a ``DeviceError`` is returned, not raised)."""
        async with self._link.lock:
            seq = self._next_seq()
            wire = codec.encode_request(seq, request)
            self.stats.transactions += 1
            problem = "comm.timeout"
            for attempt in range(self._retries + 1):
                if attempt:
                    self.stats.retransmissions += 1
                await self._link.write(wire, timeout=self._response_timeout + 1.0)
                reply, problem = await self._await_reply(seq)
                if reply is not None:
                    return reply
            raise CommunicationError(
                problem,
                f"{type(request).__name__} (SEQ {seq}) failed after {self._retries + 1} attempts: {problem}",
                url=self.url,
                seq=seq,
            )

    async def _await_reply(self, seq: int) -> tuple[codec.Reply | None, str]:
        """The reply to ``seq``, or (None, why) when it is time to retransmit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._response_timeout
        problem = "comm.timeout"
        while (remaining := deadline - loop.time()) > 0:
            wait = min(remaining, self._inter_byte_timeout) if self._decoder.pending else remaining
            chunk = await self._link.read(self._decoder.bytes_wanted(), timeout=wait)
            items = self._decoder.feed(chunk) if chunk else self._decoder.expire()
            damaged = False
            for item in items:
                if isinstance(item, DecodeError):
                    if item.kind is not DecodeErrorKind.NOISE:
                        self.stats.bad_frames += 1
                        damaged, problem = True, _DECODE_PROBLEM[item.kind]
                    continue
                reply = self._reply_for(item, seq)
                if isinstance(reply, Nak):
                    self.stats.naks += 1
                    # What the device saw is in NAK_ERRORS[reason]; to the caller a refused frame is comm.nak.
                    return None, "comm.nak"
                if reply is not None:
                    return reply, ""
            if damaged and not self._decoder.pending:
                return None, problem  # the answer was damaged: the intact one will not come, resend now
        return None, problem

    def _reply_for(self, frame: Frame, seq: int) -> codec.Reply | None:
        try:
            reply = codec.decode_reply(frame)
        except MessageError as exc:
            if frame.seq == seq:
                raise CommunicationError("comm.protocol", f"undecodable answer: {exc}", url=self.url) from exc
            return None
        if isinstance(reply, Nak):
            # A NAK may carry 0xFF when the device could not read our SEQ; with one request outstanding it is ours.
            return reply if frame.seq in (seq, 0xFF) else None
        if frame.seq != seq:
            self.stats.stale_frames += 1  # a late answer to an earlier attempt or transaction
            return None
        return reply
