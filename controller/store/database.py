"""Engines and transactions. Every write goes through ``Database.write()``: one transaction, one writer.

On SQLite each connection gets WAL, ``synchronous=FULL`` (a committed dose survives power loss), foreign keys and
a busy timeout; writes start with ``BEGIN IMMEDIATE`` so two processes serialise on the write lock instead of
failing mid-transaction, and a single pooled writer connection serialises writers inside one process. Reads use
their own pool and never block on the writer (WAL). On PostgreSQL both roles share one pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from controller.errors import ConfigurationError, StorageError


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError("store.bad_url", f"cannot parse database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            "store.bad_url", f"unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql"
        )
    return parsed


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would otherwise defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return on_connect


class Database:
    """The store's engines. Build one per process with ``Database.open(url)``; close it with ``dispose()``."""

    def __init__(self, writer: Engine, reader: Engine) -> None:
        self.writer = writer
        self.reader = reader
        self._write_sessions = sessionmaker(writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(reader, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    @property
    def url(self) -> URL:
        return self.writer.url

    @classmethod
    def open(
        cls, url: str, *, create: bool = False, sqlite_busy_timeout_ms: int = 30_000, echo: bool = False,
        read_url: str | None = None,
    ) -> Database:  # fmt: skip
        """Open the store at ``url``. A SQLite file is created only when ``create`` is set (``adc db init``);
        otherwise a missing file is reported as a database that is not initialised. ``read_url`` (PostgreSQL): a
        replica that ``reader`` and ``read()`` use, so reports and views put no load on the primary."""
        parsed = parse_url(url)
        try:
            if parsed.get_backend_name() == "sqlite":
                if read_url is not None:
                    raise ConfigurationError("store.bad_url", "a SQLite store has no read replica")
                return cls._open_sqlite(parsed, sqlite_busy_timeout_ms, echo, create)
            engine = create_engine(parsed, echo=echo, pool_pre_ping=True)
            if read_url is not None:
                replica = parse_url(read_url)
                if replica.get_backend_name() != parsed.get_backend_name():
                    raise ConfigurationError("store.bad_url", "the read replica must run the primary's database")
                return cls(engine, create_engine(replica, echo=echo, pool_pre_ping=True))
        except NoSuchModuleError as exc:
            raise ConfigurationError("store.bad_url", f"no driver for {parsed.drivername!r}: {exc}") from exc
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                "store.bad_url", f"the driver for {parsed.drivername!r} is not installed ({exc.name})"
            ) from exc
        return cls(engine, engine)

    @classmethod
    def _open_sqlite(cls, url: URL, busy_timeout_ms: int, echo: bool, create: bool) -> Database:
        database = url.database or ""
        if database in ("", ":memory:"):
            raise ConfigurationError(
                "store.bad_url", "an in-memory SQLite database cannot hold a ledger; give a file path"
            )
        path = Path(database).expanduser()
        if not path.exists():
            if not create:
                raise ConfigurationError(
                    "store.not_initialised",
                    f"no database at {path}; run 'adc db init' (or 'adc db init --demo')",
                )
            path.parent.mkdir(parents=True, exist_ok=True)
        # One writer connection: concurrent writers in this process queue for it instead of racing for the lock.
        writer = create_engine(url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=busy_timeout_ms / 1000)
        reader = create_engine(url, echo=echo, pool_size=4, max_overflow=4)
        for engine in (writer, reader):
            event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))

        def begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        def begin_deferred(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        event.listen(writer, "begin", begin_immediate)
        event.listen(reader, "begin", begin_deferred)
        return cls(writer, reader)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back entirely on any exception."""
        with _translate_operational_errors(self), self._write_sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _translate_operational_errors(self), self._read_sessions() as session:
            yield session

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


@contextmanager
def _translate_operational_errors(db: Database) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        if "no such table" in message or ("relation" in message and "does not exist" in message):
            raise ConfigurationError(
                "store.not_initialised",
                f"database {db.url.render_as_string(hide_password=True)} has no schema; run 'adc db init'",
            ) from exc
        raise StorageError(
            "store.unreachable", f"database {db.url.render_as_string(hide_password=True)} failed: {message}"
        ) from exc
