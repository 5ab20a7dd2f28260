"""What one step came to: success with data, a refusal with its catalogue code, a physical act the simulated world
could not do, or a script error (the step itself is wrong at run time, e.g. the wrong actor)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.engine.results import CommandResult


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    code: str | None = None  # the rule or fault that refused it
    detail: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    commands: tuple[str, ...] = ()  # the engine commands or simulator actions the step ran
    impossible: str | None = None  # the simulator's reason a physical act could not happen
    script_error: str | None = None  # the step cannot run as written (not a finding about the cabinet)

    @classmethod
    def of(cls, result: CommandResult[Any], commands: tuple[str, ...]) -> Outcome:
        data = dict(result.data)
        if result.context:
            data.setdefault("context", dict(result.context))
        return cls(result.ok, result.code, result.detail, data, commands)

    @classmethod
    def refused(cls, code: str, detail: str, commands: tuple[str, ...] = ()) -> Outcome:
        return cls(False, code, detail, {}, commands)

    @classmethod
    def physical(cls, action: str, data: Mapping[str, Any]) -> Outcome:
        return cls(True, data=data, commands=(action,))

    @classmethod
    def impossible_act(cls, reason: str) -> Outcome:
        return cls(False, detail=reason, impossible=reason)

    @classmethod
    def cannot_run(cls, message: str) -> Outcome:
        return cls(False, detail=message, script_error=message)

    def describe(self) -> str:
        if self.script_error:
            return f"the step could not run: {self.script_error}"
        if self.impossible:
            return f"the simulator could not do it: {self.impossible}"
        if self.ok:
            return "ok"
        return f"refused [{self.code}] {self.detail or ''}".rstrip()
