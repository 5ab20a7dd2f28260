"""The ``adc`` command as a user runs it: a real process, real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from controller.store.database import Database
from tests.store.helpers import entry, triggers_disabled

FAST_ARGON = {"ADC_ARGON2_TIME_COST": "1", "ADC_ARGON2_MEMORY_KIB": "8", "ADC_ARGON2_PARALLELISM": "1"}


def adc(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ADC_")}
    full_env.update(FAST_ARGON)
    full_env.update(env or {})
    full_env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "controller.cli.app", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def demo_url(database_url: str) -> str:
    result = adc("db", "init", "--demo", "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    assert "64 formulary items" in result.stdout and "8 users" in result.stdout
    return database_url


def test_help_lists_the_commands() -> None:
    result = adc("--help")
    assert result.returncode == 0
    for command in ("db", "ledger", "inventory"):
        assert command in result.stdout


def test_inventory_json_shows_pockets_lots_and_expiry(demo_url: str) -> None:
    result = adc("inventory", "--json", "--database-url", demo_url)
    assert result.returncode == 0, result.stderr
    pockets = {p["pocket"]: p for p in json.loads(result.stdout)}
    prednisone = pockets["D1-P12"]
    assert prednisone["quantity"] == 12
    assert prednisone["lots"] == [
        {"lot": "PR2401M", "expiry": "2026-12-31", "quantity": 4},
        {"lot": "PR2501N", "expiry": "2028-06-30", "quantity": 8},
    ]
    kinds = {p["drawer_kind"] for p in pockets.values()}
    assert kinds == {"matrix", "lidded", "single_dose", "refrigerator", "return_bin"}
    assert pockets["D2-P01"]["dea_schedule"] == "II"


def test_inventory_table(demo_url: str) -> None:
    result = adc("inventory", "--database-url", demo_url)
    assert result.returncode == 0, result.stderr
    assert "HYDROmorphone 1 mg/mL inj" in result.stdout and "CII" in result.stdout


def test_ledger_verify_passes_then_names_a_tampered_entry(demo_url: str) -> None:
    result = adc("ledger", "verify", "--database-url", demo_url)
    assert result.returncode == 0, result.stderr
    assert "ledger verified" in result.stdout
    db = Database.open(demo_url)
    try:
        with triggers_disabled(db) as connection:
            target = entry(connection, 40, cabinet_id="CAB-4W")
            connection.execute(
                sa.text("UPDATE ledger_entries SET body = :b WHERE id = :i"),
                {"b": target.body.replace('"v":1', '"v":2'), "i": target.id},
            )
    finally:
        db.dispose()
    result = adc("ledger", "verify", "--database-url", demo_url)
    assert result.returncode == 1
    assert "entry #40" in result.stderr and "altered" in result.stderr
    as_json = json.loads(adc("ledger", "verify", "--json", "--database-url", demo_url).stdout)
    assert as_json["ok"] is False and as_json["problems"][0]["seq"] == 40


def test_demo_twice_is_refused_without_touching_the_first(demo_url: str) -> None:
    result = adc("db", "init", "--demo", "--database-url", demo_url)
    assert result.returncode != 0
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert adc("ledger", "verify", "--database-url", demo_url).returncode == 0


def test_default_database_lives_in_the_data_dir(tmp_path: Path) -> None:
    result = adc("db", "init", env={"ADC_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "adc.db").is_file()
    assert adc("db", "upgrade", env={"ADC_DATA_DIR": str(tmp_path / "data")}).returncode == 0


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("inventory", "--database-url", "mysql://x/y"), {}, "unsupported database"),
        (("inventory", "--database-url", "::::"), {}, "cannot parse database URL"),
        (("inventory",), {"ADC_DATA_DIR": "/nonexistent/adc"}, "run 'adc db init'"),
        (("ledger", "verify"), {"ADC_DATA_DIR": "/nonexistent/adc"}, "run 'adc db init'"),
        (("db", "upgrade", "--database-url", "sqlite:////nonexistent/x.db"), {}, "run 'adc db init'"),
        (("inventory", "--bogus"), {}, "No such option: --bogus"),
        (("nonsense",), {}, "No such command"),
        (("inventory",), {"ADC_SQLITE_BUSY_TIMEOUT_MS": "soon"}, "ADC_SQLITE_BUSY_TIMEOUT_MS"),
    ],
)
def test_user_errors_are_one_clear_line(args: tuple[str, ...], env: dict[str, str], expected: str) -> None:
    result = adc(*args, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
