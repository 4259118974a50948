#!/usr/bin/env bash
# The checks that run before the tests (scripts/test.sh): lint, format and types, failing at the
# first that finds something. Ruff and mypy come from the locked test extra, as the tests do.
# Fix what they find with: ruff check --fix PATHS; ruff format PATHS.
source "$(dirname "$0")/env.sh"
paths=(flows87 dags tests benchmarks)
echo "check: ruff check" >&2
ruff check --quiet --output-format concise "${paths[@]}"
echo "check: ruff format --check" >&2
ruff format --check --quiet "${paths[@]}"
echo "check: mypy flows87" >&2
mypy --no-error-summary flows87 || { echo "check: mypy found type errors (above)" >&2; exit 1; }
