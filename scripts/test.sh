#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, a fresh virtual environment (so a missing dependency
# fails here, not on a user's machine), then pytest on SQLite and, where PostgreSQL answers, on PostgreSQL too.
#   ADC_TEST_DATABASE_URL  PostgreSQL to test against (default: postgres@127.0.0.1:5432/test, trust auth)
#   ADC_SKIP_POSTGRES=1    run on SQLite only
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests need: Debian's chromium drives the browser tests (tests/ui); the fleet tests
# (tests/fleet) start their own nats-server -js on an ephemeral port, from Debian's package.
APT_PACKAGES=(python3-venv chromium nats-server)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "test.sh: missing system packages: ${missing[*]} (install them with apt-get)" >&2
  fi
fi

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
VENV=.ci-venv
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'

export ADC_TEST_DATABASE_URL="${ADC_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
if [ "${ADC_SKIP_POSTGRES:-0}" != "1" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && command -v pg_ctlcluster >/dev/null 2>&1; then
    # The machine normally starts PostgreSQL; start it if it has stopped.
    version=$(ls /etc/postgresql 2>/dev/null | head -n 1)
    [ -n "$version" ] && pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  if "$VENV/bin/python" - <<'PY'
import os, sys
import sqlalchemy as sa
try:
    with sa.create_engine(os.environ["ADC_TEST_DATABASE_URL"], connect_args={"connect_timeout": 5}).connect() as c:
        c.exec_driver_sql("SELECT 1")
except Exception as exc:
    print(f"test.sh: PostgreSQL not reachable ({type(exc).__name__}); its tests will be skipped", file=sys.stderr)
    sys.exit(1)
PY
  then
    # PostgreSQL answers: its tests must run, a skip would hide a failure.
    export ADC_REQUIRE_POSTGRES=1
    echo "test.sh: testing on SQLite and on PostgreSQL ($ADC_TEST_DATABASE_URL)"
  fi
fi

# The browser tests must run here: without chromium they fail instead of skipping.
export ADC_REQUIRE_BROWSER=1

# pytest exits 5 when it collected no test: that fails this script like any other non-zero exit.
exec "$VENV/bin/python" -m pytest "$@"
