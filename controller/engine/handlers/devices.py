"""What the cabinet's devices report that nobody commanded: the I/O board's fault bits; and the audit entries of
refusals at the boundaries (the API's bad tokens and missing privileges).

Responsible for: a ``device.fault`` entry for each fault bit that rises (once: a bit must fall before it is
recorded again), acknowledging on the board the bits that only report an event (``watchdog_expired``,
``rebooted``: the board has already relocked everything and the engine follows the sensors) once they are
recorded, restoring the watchdog timeout a reboot reset; and ``RecordRefusal``. Both run under the engine's lock
like any command, so nothing writes the ledger or touches the board beside it.

Not responsible for: the heartbeat (``controller.hardware.heartbeat``), or deciding what a fault blocks (the
driver refuses to unlock while a blocking bit is set).
"""

from __future__ import annotations

from controller.domain.transactions import EventType, LedgerRecord
from controller.engine.commands.cabinet import FaultsReported, Recorded, RecordRefusal, ReportBoardFaults
from controller.engine.context import EngineContext
from controller.engine.results import CommandResult, seqs
from controller.engine.workflows import Handler
from controller.errors import ControllerError

ACKNOWLEDGED_ONCE_RECORDED = frozenset({"watchdog_expired", "rebooted"})


class DeviceHandler(Handler):
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._seen: frozenset[str] = frozenset()
        self._acknowledged: set[str] = set()
        ctx.registry.add(self)
        ctx.registry.command(ReportBoardFaults, self.report_faults, needs_session=False)
        ctx.registry.command(RecordRefusal, self.record_refusal, needs_session=False)

    async def report_faults(self, command: ReportBoardFaults) -> CommandResult[FaultsReported]:
        ctx = self.ctx
        faults = frozenset(command.faults)
        risen = sorted(faults - self._seen)
        self._acknowledged &= faults  # a bit that cleared may rise again later
        self._seen = faults
        records = [
            LedgerRecord(
                event_type=EventType.DEVICE_FAULT,
                reason_code=name,
                device_state=dict(command.device_state),
                details={"kind": "board.fault", "fault": name, "occurred_at": ctx.now().isoformat()},
            )
            for name in risen
        ]
        sealed = ctx.recorder.commit(*records)
        pending = (faults & ACKNOWLEDGED_ONCE_RECORDED) - self._acknowledged
        acknowledged: tuple[str, ...] = ()
        if pending:
            board = ctx.devices.board
            try:
                if "rebooted" in pending and command.watchdog_timeout_ms is not None:
                    # The restart also reset the board's watchdog timeout to its default.
                    await ctx.actuator.io(board.set_watchdog_timeout(command.watchdog_timeout_ms))
                await ctx.actuator.io(board.acknowledge_faults(pending))
            except ControllerError:
                pass  # tried again with the next snapshot
            else:
                self._acknowledged |= pending
                acknowledged = tuple(sorted(pending))
        return CommandResult.done(FaultsReported(tuple(risen), acknowledged, seqs(sealed)))

    async def record_refusal(self, command: RecordRefusal) -> CommandResult[Recorded]:
        details: dict[str, object] = {"kind": "api.refused", "code": command.code, "route": command.route,
                                      "method": command.method, "occurred_at": self.ctx.now().isoformat()}  # fmt: skip
        if command.suppressed_before:
            details["suppressed_before"] = command.suppressed_before  # refusals over the limit, not one by one
        record = LedgerRecord(event_type=EventType.INPUT_REFUSED, actor_id=command.actor_id,
                              reason_code=command.code.split(".", 1)[-1], details=details)  # fmt: skip
        return CommandResult.done(Recorded(seqs(self.ctx.recorder.commit(record))))
