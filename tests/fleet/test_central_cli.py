"""``adc central`` and ``adc fleet`` from the terminal: a central database made, a cabinet registered with the key
``adc fleet key`` prints, users added and disabled in the directory, the fleet table printed; a SQLite URL refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.test_cli import adc

pytestmark = pytest.mark.postgres


def test_the_central_from_the_terminal(postgres_schema_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "ADC_CENTRAL_DATABASE_URL": postgres_schema_url, "ADC_DATA_DIR": str(tmp_path)}
    assert adc("central", "init", env=env).returncode == 0
    key = adc("fleet", "key", env=env)
    assert key.returncode == 0 and len(key.stdout.strip()) == 44  # an Ed25519 public key, base64
    assert (tmp_path / "fleet.key").stat().st_mode & 0o077 == 0  # the private half: this account only
    assert adc("fleet", "key", env=env).stdout == key.stdout  # made once
    registered = adc("central", "register", "CAB-4W", "--public-key", key.stdout.strip(), "--care-area", "4W", env=env)
    assert registered.returncode == 0, registered.stderr
    added = adc("central", "user", "add", "rn.kim", "--name", "Kim, RN", "--role", "nurse", "--pin", "4321", env=env)
    assert added.returncode == 0 and "version 1" in added.stdout, added.stderr
    disabled = adc("central", "user", "disable", "rn.kim", env=env)
    assert disabled.returncode == 0 and "version 2" in disabled.stdout
    status = adc("central", "status", env=env)
    assert status.returncode == 0 and "CAB-4W" in status.stdout and "never heard" in status.stdout
    refused = adc("central", "init", "--database-url", f"sqlite:///{tmp_path / 'x.db'}", env=env)
    assert refused.returncode != 0 and "PostgreSQL only" in refused.stderr
