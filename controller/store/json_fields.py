"""A column expression that reads one field of the ledger's canonical JSON body, compiled per dialect.

The ledger's query columns are generated from the body, so no one can edit a column without editing the body
(and breaking its hash). SQLite and PostgreSQL spell the extraction differently; this hides that from models and
migrations.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

JsonKind = Literal["text", "integer", "boolean"]

_PG_CASTS: dict[JsonKind, str] = {"text": "", "integer": "::bigint", "boolean": "::boolean"}


class BodyField(ColumnElement[Any]):
    """``body``'s top-level field ``key`` as a scalar of ``kind``."""

    inherit_cache = True
    type = NullType()

    def __init__(self, key: str, kind: JsonKind = "text") -> None:
        if not key.isidentifier():
            raise ValueError(f"unsafe JSON key {key!r}")
        self.key = key
        self.kind = kind


@compiles(BodyField, "sqlite")
def _sqlite(element: BodyField, _compiler: Any, **_kw: Any) -> str:
    # json_extract returns SQL integers for JSON numbers and 1/0 for true/false.
    return f"json_extract(body, '$.{element.key}')"


@compiles(BodyField, "postgresql")
def _postgresql(element: BodyField, _compiler: Any, **_kw: Any) -> str:
    return f"((body::jsonb ->> '{element.key}'){_PG_CASTS[element.kind]})"


@compiles(BodyField)
def _default(element: BodyField, compiler: Any, **_kw: Any) -> str:
    raise NotImplementedError(f"ledger columns need SQLite or PostgreSQL, not {compiler.dialect.name}")


class DetailField(ColumnElement[Any]):
    """``body``'s ``details.<key>`` as text: the workflow ids (``pull_id``) that tie a removal to its waste and
    return. An expression index on exactly this text (migration 0005) makes the look-up an index seek."""

    inherit_cache = True
    type = NullType()

    def __init__(self, key: str) -> None:
        if not key.isidentifier():
            raise ValueError(f"unsafe JSON key {key!r}")
        self.json_key = key


def detail_sql(dialect: str, key: str) -> str:
    """The SQL of ``DetailField(key)`` for ``dialect``; the migration builds its index from the same text."""
    if not key.isidentifier():
        raise ValueError(f"unsafe JSON key {key!r}")
    if dialect == "sqlite":
        return f"json_extract(body, '$.details.{key}')"
    if dialect == "postgresql":
        return f"((body::jsonb -> 'details') ->> '{key}')"
    raise NotImplementedError(f"ledger look-ups need SQLite or PostgreSQL, not {dialect}")


@compiles(DetailField)
def _detail(element: DetailField, compiler: Any, **_kw: Any) -> str:
    return detail_sql(compiler.dialect.name, element.json_key)
