"""Persistence: SQLAlchemy models, Alembic migrations, repositories and the hash-chained ledger.

SQLite (WAL, synchronous=FULL, one writer connection) is the embedded default; PostgreSQL works by URL.
"""
