"""Command-line start-up: each command timed as the whole process a user waits for, against a plain script that
does the same with the libraries underneath.

- ``adc --help`` against a bare Typer app's ``--help`` (Typer and rich imported, one command listed). Target:
  under 0.3 s.
- ``adc vision decode IMAGE`` on a GS1 DataMatrix from ``../shared/external/barcodes`` against a script that reads
  the image with OpenCV, decodes it with zxing-cpp and parses it with biip. Target: at most 1.5× the script.
- ``adc ledger verify`` on a 10,000-entry chain (a fresh SQLite store with the demo cabinet) against a script that
  reads the same rows with ``sqlite3`` and recomputes each hash with ``hashlib``, checking nothing else: the floor.

Each figure is the median of ``runs`` runs. "ratio to raw" = the script's time / the command's (1.0 = no
overhead). Not timed: the first run of each (warms the OS file cache).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.hl7_outbound import PATIENTS, fresh_store, removal
from controller.domain.clock import FixedClock
from controller.store.ledger import Ledger

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT.parent / "shared" / "external" / "barcodes" / "datamatrix-4" / "gs1-figure-4.15.1-2-44x20.png"
CHAIN = 10_000
ADC = [sys.executable, "-m", "controller.cli.app"]
BARE_TYPER = """
import typer
app = typer.Typer(add_completion=False)
@app.command()
def run() -> None:
    "One command."
@app.command()
def other() -> None:
    "Another."
app()
"""
PLAIN_DECODE = """
import sys
import cv2, zxingcpp
from biip import parse
for result in zxingcpp.read_barcodes(cv2.imread(sys.argv[1])):
    print(result.text, parse(result.text))
"""
PLAIN_VERIFY = """
import hashlib, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT prev_hash, body, hash FROM ledger_entries ORDER BY id")
bad = sum(hashlib.sha256(f"{prev}\\n{body}".encode()).hexdigest() != stored for prev, body, stored in rows)
print(bad)
"""


@dataclass
class Row:
    what: str
    ours_s: float
    raw_s: float | None
    target: str

    @property
    def ratio(self) -> float | None:
        return self.raw_s / self.ours_s if self.raw_s else None


def timed(command: list[str], runs: int) -> float:
    """The median wall time of ``command`` as a process (after one untimed run); fails if it fails."""
    subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def chain_store(folder: Path) -> Path:
    """The demo cabinet plus dose entries up to ``CHAIN``, 500 to a transaction."""
    path = folder / "chain.db"
    clock = FixedClock(datetime(2026, 12, 8, 9, 0, tzinfo=UTC))
    db = fresh_store(f"sqlite:///{path}", clock)
    ledger = Ledger("CAB-4W", clock, is_simulator=True)
    for start in range(0, CHAIN, 500):
        with db.write() as session:
            for index in range(start, min(CHAIN, start + 500)):
                ledger.append(session, removal(PATIENTS[index % len(PATIENTS)]))
    db.dispose()
    return path


def run(console: Console, runs: int = 7) -> Table:
    rows = [Row("adc --help", timed([*ADC, "--help"], runs), timed([sys.executable, "-c", BARE_TYPER, "--help"], runs),
                "< 0.3 s")]  # fmt: skip
    if IMAGE.exists():
        ours = timed([*ADC, "vision", "decode", str(IMAGE)], runs)
        plain = timed([sys.executable, "-c", PLAIN_DECODE, str(IMAGE)], runs)
        rows.append(Row("adc vision decode (GS1 DataMatrix)", ours, plain, "≤ 1.5× the script"))
    else:
        console.print(f"cli: {IMAGE} is absent (../shared/external): the decode row is left out")
    with tempfile.TemporaryDirectory() as folder:
        console.print(f"cli: writing a {CHAIN:,}-entry chain …")
        path = chain_store(Path(folder))
        ours = timed([*ADC, "ledger", "verify", "--database-url", f"sqlite:///{path}"], runs)
        rows.append(Row(f"adc ledger verify ({CHAIN:,} entries)", ours,
                        timed([sys.executable, "-c", PLAIN_VERIFY, str(path)], runs), ""))  # fmt: skip
    return table(rows)


def table(rows: list[Row]) -> Table:
    result = Table(title="Command line: each command as a whole process (median)")
    for column in ("what", "ours", "plain script", "ratio to raw", "target"):
        result.add_column(column, justify="left" if column in ("what", "target") else "right")
    for row in rows:
        met = _met(row)
        result.add_row(
            row.what, f"{row.ours_s:.3f} s", f"{row.raw_s:.3f} s" if row.raw_s else "—",
            f"{row.ratio:.2f}" if row.ratio else "—", f"{row.target} {met}".strip(),
        )  # fmt: skip
    return result


def _met(row: Row) -> str:
    if row.target.startswith("<"):
        return "ok" if row.ours_s < 0.3 else "MISSED"
    if row.target.startswith("≤") and row.ratio is not None:
        return "ok" if row.ratio >= 1 / 1.5 else "MISSED"
    return ""
