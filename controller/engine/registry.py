"""Which handler runs which command and query, and the hooks every handler offers (``workflows.Handler``).

Each command and query type has exactly one handler; handlers register them when they are built and never call one
another. Not responsible for locking or for recording (``cabinet.py`` and ``recording.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from controller.engine.results import CommandResult
from controller.engine.workflows import Handler, Reaction

Run = Callable[[Any], Awaitable[CommandResult[Any]]]
Ask = Callable[[Any], CommandResult[Any]]


class Registry:
    def __init__(self) -> None:
        self.commands: dict[type[Any], Run] = {}
        self.queries: dict[type[Any], Ask] = {}
        self.handlers: list[Handler] = []
        self.sessionless: set[type[Any]] = set()  # commands that run with nobody logged in (login, tick)

    def add(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def command(self, command_type: type[Any], run: Run, *, needs_session: bool = True) -> None:
        if command_type in self.commands:
            raise ValueError(f"{command_type.__name__} already has a handler")
        self.commands[command_type] = run
        if not needs_session:
            self.sessionless.add(command_type)

    def query(self, query_type: type[Any], ask: Ask) -> None:
        if query_type in self.queries:
            raise ValueError(f"{query_type.__name__} already has a handler")
        self.queries[query_type] = ask

    # --- hooks over every handler ---------------------------------------------------------------------------

    def owner_of(self, workflow_id: str) -> Handler | None:
        return next((h for h in self.handlers if h.owns(workflow_id)), None)

    def recoverer_of(self, kind: str) -> Handler | None:
        return next((h for h in self.handlers if kind in h.journal_kinds), None)

    def session_ended(self, session_id: int, reason: str, now: datetime) -> Reaction:
        reaction = Reaction()
        for handler in self.handlers:
            reaction.merge(handler.on_session_ended(session_id, reason, now))
        return reaction

    def tick(self, now: datetime) -> Reaction:
        reaction = Reaction()
        for handler in self.handlers:
            reaction.merge(handler.on_tick(now))
        return reaction

    def restored(self, now: datetime) -> Reaction:
        reaction = Reaction()
        for handler in self.handlers:
            reaction.merge(handler.on_restore(now))
        return reaction

    def live_views(self) -> list[dict[str, object]]:
        return [view for handler in self.handlers for view in handler.live_views()]

    def pending_for(self, user_id: str) -> list[dict[str, object]]:
        return [view for handler in self.handlers for view in handler.pending_for(user_id)]
