"""``python -m bench [--appends N] [--chain N]``: run the benchmarks and print their tables.

"ratio to raw" is raw library time / our time on the same work: for appends the raw side is plain SQLAlchemy
inserts of the same rows into the same database (1.0 = no overhead); for verification it is fetching the same
rows through the driver's own cursor without hashing them (the floor verification cannot go below).
"""

from __future__ import annotations

import argparse

from rich.console import Console

from bench import io_board, ledger, pill_counter, pull


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--appends", type=int, default=2_000, help="ledger appends to time (one transaction each)")
    parser.add_argument("--chain", type=int, default=200_000, help="entries in the chain to verify")
    parser.add_argument(
        "--only",
        choices=("ledger", "io_board", "pill_counter", "pull"),
        action="append",
        help="run only these (repeatable)",
    )
    args = parser.parse_args()
    chosen = set(args.only or ("ledger", "io_board", "pill_counter", "pull"))
    console = Console(width=100)
    if "ledger" in chosen:
        console.print(ledger.table(ledger.run(args.appends, args.chain, console)))
    if "io_board" in chosen:
        console.print(io_board.run(console))
    if "pill_counter" in chosen:
        console.print(pill_counter.run(console))
    if "pull" in chosen:
        console.print(pull.run(console))


if __name__ == "__main__":
    main()
