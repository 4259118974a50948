#!/usr/bin/env bash
# Run the test suite, after the lint, format and type checks (scripts/check.sh), which fail fast.
# Creates .venv on first use, and installs PostgreSQL and Chromium for the case store and browser
# tests when they are missing and this user may (scripts/system-deps.sh).
# Extra arguments go to pytest.
source "$(dirname "$0")/env.sh"
bash "$ROOT/scripts/check.sh"
bash "$ROOT/scripts/system-deps.sh"
exec python -m pytest "$@"
