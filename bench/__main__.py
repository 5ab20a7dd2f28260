"""``python -m bench [--only NAME ...] [--appends N] [--chain N]``: run the benchmarks and print their tables.

"ratio to raw" is raw library time / our time on the same work: for appends the raw side is plain SQLAlchemy
inserts of the same rows into the same database (1.0 = no overhead); for verification it is fetching the same
rows through the driver's own cursor without hashing them (the floor verification cannot go below). Each other
table says what its raw side is.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console

from bench import (
    api,
    cli,
    fleet,
    hl7_ingest,
    hl7_outbound,
    io_board,
    ledger,
    pill_counter,
    pull,
    vision_barcodes,
    vision_pills,
)

# name -> what prints its table; run in this order.
RUNNERS: dict[str, Callable[[argparse.Namespace, Console], object]] = {
    "ledger": lambda args, console: ledger.table(ledger.run(args.appends, args.chain, console)),
    "io_board": lambda args, console: io_board.run(console),
    "pill_counter": lambda args, console: pill_counter.run(console),
    "pull": lambda args, console: pull.run(console),
    "barcodes": lambda args, console: vision_barcodes.run(console),
    "pills": lambda args, console: vision_pills.run(console),
    "hl7": lambda args, console: hl7_ingest.run(console),
    "hl7_out": lambda args, console: hl7_outbound.run(console),
    "api": lambda args, console: api.run(console),
    "fleet": lambda args, console: fleet.run(console),
    "cli": lambda args, console: cli.run(console),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--appends", type=int, default=2_000, help="ledger appends to time (one transaction each)")
    parser.add_argument("--chain", type=int, default=200_000, help="entries in the chain to verify")
    parser.add_argument("--only", choices=tuple(RUNNERS), action="append", help="run only these (repeatable)")
    args = parser.parse_args()
    chosen = set(args.only or RUNNERS)
    console = Console(width=100)
    for name, runner in RUNNERS.items():
        if name in chosen:
            console.print(runner(args, console))


if __name__ == "__main__":
    main()
