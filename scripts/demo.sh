#!/usr/bin/env bash
# The main job on a fresh machine: install into ./.venv, then run the simulated cabinet with `adc serve`: the demo
# cabinet on SQLite (created on the first run, kept in var/ afterwards), every device simulator, the API and the
# pages on http://127.0.0.1:8000/. It prints the URL and the demo credentials; Ctrl-C stops everything.
# Extra arguments go to `adc serve` (e.g. `bash scripts/demo.sh --port 8080`).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Install only when the project's dependencies changed since the last install (or nothing is installed yet).
stamp=.venv/.open-adc-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || [ ! -x .venv/bin/adc ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e .
  echo "$wanted" > "$stamp"
fi

export ADC_DATA_DIR="${ADC_DATA_DIR:-var}"
exec .venv/bin/adc serve "$@"
