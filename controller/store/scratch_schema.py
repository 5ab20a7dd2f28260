"""A scratch schema on a PostgreSQL server: made fresh, handed out as a URL whose ``search_path`` is that schema,
dropped with everything in it afterwards. What a fleet scenario's central and the PostgreSQL tests run in, so two
runs on one server never share a table.

Not responsible for what goes in it (the migrations do that).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def scratch_schema(server_url: str, prefix: str) -> Iterator[str]:
    """A new schema ``<prefix>_<random>`` on the server; yields the URL that works in it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        url = sa.make_url(server_url).update_query_dict({"options": f"-csearch_path={name}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        admin.dispose()
