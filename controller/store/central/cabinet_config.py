"""Each cabinet's layout and policy as the central server keeps them, versioned for the downlink.

Responsible for: ``put`` (a pharmacist's new layout or policy for one registered cabinet, checked as the cabinet will
check it, so a typo is refused here with its reason and never sent; the version grows only when the content
changed), and what the publisher needs (``versions`` and ``documents`` under their bucket keys). Rows live in
``fleet_directory`` under kind ``layout`` or ``policy``, keyed by cabinet id.
Not responsible for what the cabinet allows (stock in a pocket, a workflow on it: its engine refuses and records).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from controller.domain.cabinet_config import KINDS, LAYOUT, config_key, layout_document, parse_layout, parse_policy
from controller.errors import ConfigurationError, SafetyError
from controller.store.central import downlink
from controller.store.central import tables as t


def put(connection: Connection, kind: str, cabinet_id: str, content: Mapping[str, Any], now: datetime) -> int:
    """Store ``content`` as ``kind`` of ``cabinet_id``; returns the version it now has."""
    if kind not in KINDS:
        raise ConfigurationError("fleet.layout_refused", f"no such configuration kind {kind!r}")
    registered = connection.execute(select(t.cabinets.c.cabinet_id).where(t.cabinets.c.cabinet_id == cabinet_id))
    if registered.first() is None:
        raise SafetyError("fleet.unknown_cabinet", f"no cabinet {cabinet_id!r} is registered", cabinet=cabinet_id)
    document = _checked(kind, cabinet_id, content)
    downlink.put_documents(connection, [{"kind": kind, "key": cabinet_id, "version": 1, "payload": document,
                                         "updated_at": now}])  # fmt: skip
    version = connection.execute(
        select(t.directory.c.version).where(t.directory.c.kind == kind, t.directory.c.key == cabinet_id)
    ).scalar_one()
    return int(version)


def _checked(kind: str, cabinet_id: str, content: Mapping[str, Any]) -> dict[str, Any]:
    if kind == LAYOUT:
        return layout_document(parse_layout(content, source=f"the layout of {cabinet_id}"))
    _, reason = parse_policy(content, source=f"the policy of {cabinet_id}")
    return {"text": str(content["text"]), "reason": reason}


def versions(connection: Connection) -> dict[str, int]:
    """Bucket key -> version, for every cabinet's layout and policy."""
    found = connection.execute(
        select(t.directory.c.kind, t.directory.c.key, t.directory.c.version).where(t.directory.c.kind.in_(KINDS))
    )
    return {config_key(r.key, r.kind): int(r.version) for r in found}


def documents(connection: Connection, keys: Collection[str]) -> list[tuple[str, str, int, dict[str, Any]]]:
    """(bucket key, kind, version, content) of the documents under ``keys``."""
    wanted = set(keys)
    found = connection.execute(
        select(t.directory.c.kind, t.directory.c.key, t.directory.c.version, t.directory.c.payload).where(
            t.directory.c.kind.in_(KINDS)
        )
    )
    rows = [(config_key(r.key, r.kind), str(r.kind), int(r.version), dict(r.payload)) for r in found]
    return [row for row in rows if row[0] in wanted]
