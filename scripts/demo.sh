#!/usr/bin/env bash
# The main job on a fresh machine: install into ./.venv, create the demo cabinet on SQLite (first run only) and
# show its inventory and ledger status. Later issues turn this into the running simulated cabinet.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .

export ADC_DATA_DIR="${ADC_DATA_DIR:-var}"
if [ -z "${ADC_DATABASE_URL:-}" ] && [ ! -f "$ADC_DATA_DIR/adc.db" ]; then
  .venv/bin/adc db init --demo
else
  .venv/bin/adc db upgrade
fi
.venv/bin/adc inventory
.venv/bin/adc ledger verify
