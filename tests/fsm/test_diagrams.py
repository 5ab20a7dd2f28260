"""The committed Mermaid diagrams in docs/diagrams are exactly what the machines' transition tables produce."""

from __future__ import annotations

from pathlib import Path

from controller.fsm import diagrams

REFRESH = ".venv/bin/python -m controller.fsm.diagrams"


def test_every_machine_has_an_up_to_date_diagram() -> None:
    stale = []
    for name, text in diagrams.render_all().items():
        path = diagrams.DEFAULT_DIR / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    assert not stale, f"stale or missing diagrams in docs/diagrams: {', '.join(stale)}; refresh with: {REFRESH}"


def test_diagrams_are_mermaid_state_diagrams_of_every_state(tmp_path: Path) -> None:
    written = diagrams.write_all(tmp_path)
    assert {p.name for p in written} == {f"{spec.name}.mmd" for spec in diagrams.SPECS}
    for spec in diagrams.SPECS:
        text = (tmp_path / f"{spec.name}.mmd").read_text(encoding="utf-8")
        assert "stateDiagram-v2" in text
        for state in spec.states:
            assert f"as {state.name}" in text
        for event in spec.events:
            assert event in text


def test_rendering_is_deterministic() -> None:
    assert diagrams.render_all() == diagrams.render_all()
