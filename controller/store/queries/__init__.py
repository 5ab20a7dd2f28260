"""What the API reads (and the little it writes) from the store, one small module per subject.

Each module holds plain functions that take a ``Database`` or the session that ``db.read()`` / ``db.write()``
yields, and answer with frozen dataclasses, domain objects or JSON-able values, never ORM rows: the API builds its
JSON from those and imports neither SQLAlchemy nor ``controller.store.models`` (an import-linter contract in
pyproject.toml holds it to that). ``Session`` is re-exported only so API code can name the handle it passes back
in; the API runs nothing on it.

Not here: the engine's working state (``controller.store.engine_state``), stock changes
(``controller.store.inventory``), the ledger's writer and verifier (``controller.store.ledger``), the HL7 feeds
(``controller.integration``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

__all__ = ["Session"]
