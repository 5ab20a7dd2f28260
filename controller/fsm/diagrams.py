"""Mermaid state diagrams of every machine, generated from the same transition tables the machines run.

``python -m controller.fsm.diagrams`` writes ``docs/diagrams/<machine>.mmd``; a test regenerates them in memory
and fails when a committed file is stale. Uses transitions' Mermaid engine, so graphviz is not needed.
Not responsible for rendering images.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transitions.extensions.diagrams import GraphMachine

from controller.fsm.base import MachineSpec
from controller.fsm.compartment import SPEC as COMPARTMENT
from controller.fsm.session import SPEC as SESSION
from controller.fsm.workflows.count import SPEC as COUNT
from controller.fsm.workflows.discrepancy import SPEC as DISCREPANCY
from controller.fsm.workflows.pull import SPEC as PULL
from controller.fsm.workflows.restock import SPEC as RESTOCK
from controller.fsm.workflows.returns import SPEC as RETURN
from controller.fsm.workflows.waste import SPEC as WASTE

SPECS: tuple[MachineSpec, ...] = (SESSION, COMPARTMENT, PULL, WASTE, DISCREPANCY, RETURN, RESTOCK, COUNT)
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "docs" / "diagrams"


class _Blank:
    """A model with no behaviour: the diagram only needs the machine's structure."""


def mermaid(spec: MachineSpec) -> str:
    machine = GraphMachine(
        model=_Blank(),
        states=spec.states,
        initial=spec.initial,
        transitions=[dict(t) for t in spec.transitions],
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title=spec.name,
    )
    source = machine.get_combined_graph().draw(None)  # the Mermaid engine returns its text for a None target
    if source is None:
        raise RuntimeError("the Mermaid engine returned no text")
    return source.rstrip("\n") + "\n"


def render_all() -> dict[str, str]:
    return {f"{spec.name}.mmd": mermaid(spec) for spec in SPECS}


def write_all(directory: Path = DEFAULT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else DEFAULT_DIR
    for path in write_all(directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
