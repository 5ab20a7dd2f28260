"""The one result type every command and query returns, and the base of the typed payloads it carries.

A command either succeeds (``ok``, with a ``payload`` of the type its command declares) or is refused with a
catalogue code naming the rule or the device fault that refused it (and, where it helps the person, a payload
saying where the workflow stands). Expected refusals never raise; an exception out of the engine is a bug.
``data`` is the payload as JSON-able values: what the API sends and what scenarios read.

Not responsible for running anything (``cabinet.py``) or for what each payload holds (``commands/``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from controller.errors import CATALOGUE, ControllerError
from controller.fsm.base import Refusal
from controller.store.ledger import SealedEntry


class Payload:
    """Base of the typed payloads: frozen dataclasses whose fields are the keys of ``data``."""

    __slots__ = ()

    def to_data(self) -> dict[str, Any]:
        assert dataclasses.is_dataclass(self)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


T = TypeVar("T", bound=Payload)


@dataclass(frozen=True, slots=True)
class CommandResult(Generic[T]):
    ok: bool
    payload: T | None = None
    code: str | None = None
    detail: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # more data next to the payload's (a refusal's state)

    def __post_init__(self) -> None:
        if self.ok != (self.code is None):
            raise ValueError("a result is either ok or carries a refusal code")
        if self.code is not None and self.code not in CATALOGUE:
            raise KeyError(f"refusal code {self.code!r} is not in the catalogue")
        if self.ok and self.payload is None:
            raise ValueError("a success carries its payload")

    @property
    def data(self) -> Mapping[str, Any]:
        base = self.payload.to_data() if self.payload is not None else {}
        return {**base, **self.extra}

    def unwrap(self) -> T:
        """The payload of a success (for callers that have just checked ``ok``)."""
        if self.payload is None:
            raise ValueError(f"refused: [{self.code}] {self.detail}")
        return self.payload

    # --- constructors -------------------------------------------------------------------------------------------

    @classmethod
    def done(cls, payload: T, **extra: Any) -> CommandResult[T]:
        return cls(True, payload, extra=extra)

    @classmethod
    def refused(cls, refusal: Refusal, payload: Payload | None = None, **extra: Any) -> CommandResult[Any]:
        return CommandResult(False, payload, refusal.code, refusal.detail, dict(refusal.context), extra)

    @classmethod
    def from_error(cls, error: ControllerError, payload: Payload | None = None, **extra: Any) -> CommandResult[Any]:
        return CommandResult(False, payload, error.code, error.detail, dict(error.context), extra)

    @classmethod
    def refuse(cls, code: str, detail: str, **context: Any) -> CommandResult[Any]:
        return CommandResult(False, None, code, detail, context)

    def refusal(self) -> CommandResult[Any]:
        """This refusal, for a command of another payload type (a step that failed inside another command)."""
        assert not self.ok
        return CommandResult(False, None, self.code, self.detail, self.context, self.extra)

    def with_payload(self, payload: Payload, **extra: Any) -> CommandResult[Any]:
        """The same outcome carrying ``payload`` (a refusal that should still show where things stand)."""
        return CommandResult(self.ok, payload, self.code, self.detail, self.context, {**self.extra, **extra})


def seqs(sealed: Iterable[SealedEntry]) -> tuple[int, ...]:
    """The ledger sequence numbers of sealed entries."""
    return tuple(entry.seq for entry in sealed)
