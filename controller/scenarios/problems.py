"""What is wrong with a scenario file, said the way its author can act on it: file, line, field and why.

A file is read in full before anything runs, and every problem found is reported at once (not only the first),
each as one ``Problem``; ``ScenarioLoadError`` carries them with the catalogue code of the kind of problem
(``scenario.invalid``, ``scenario.unknown_reference``, ``scenario.not_supported_remotely``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.errors import ConfigurationError

FieldPath = tuple[str | int, ...]


def field_name(path: FieldPath) -> str:
    """``("steps", 3, "pull", "patient")`` -> ``step 4: pull.patient``; indices elsewhere as ``[n]``."""
    prefix = ""
    rest = list(path)
    if len(rest) >= 2 and rest[0] == "steps" and isinstance(rest[1], int):
        prefix = f"step {rest[1] + 1}"
        rest = rest[2:]
    text = ""
    for part in rest:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if prefix:
        return f"{prefix}: {text}" if text else prefix
    return text or "(the file)"


@dataclass(frozen=True, slots=True)
class Problem:
    file: Path
    line: int
    path: FieldPath
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {field_name(self.path)}: {self.message}"


class ScenarioLoadError(ConfigurationError):
    def __init__(self, code: str, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("a load error needs at least one problem")
        shown = "; ".join(str(p) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(code, shown + more, file=str(problems[0].file), line=problems[0].line)
        self.problems = tuple(problems)
