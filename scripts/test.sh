#!/usr/bin/env bash
# Run the test suite. Creates .venv on first use. Extra arguments go to pytest.
source "$(dirname "$0")/env.sh"
exec python -m pytest "$@"
