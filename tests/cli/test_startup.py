"""``adc --help`` lists every command without importing any of them: no web framework, database, vision or
plotting library is loaded to print the list, which keeps it well under a third of a second (``python -m bench
--only cli`` measures it); a command's own help loads only that command."""

from __future__ import annotations

import json
import subprocess
import sys

from controller.cli.app import COMMANDS

HEAVY = ("fastapi", "sqlalchemy", "cv2", "matplotlib", "uvicorn", "nats", "pydantic", "numpy")
PROBE = """
import json, sys
sys.argv = ["adc", *sys.argv[1:]]
from controller.cli.app import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


def loaded_by(*args: str) -> tuple[str, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout, set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_the_command_list_loads_no_heavy_library() -> None:
    shown, loaded = loaded_by("--help")
    assert all(name in shown for name in COMMANDS)
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_a_commands_help_loads_that_command_only() -> None:
    shown, loaded = loaded_by("ledger", "--help")
    assert "verify" in shown
    assert "fastapi" not in loaded and "cv2" not in loaded  # the ledger needs the store, not the server or vision
