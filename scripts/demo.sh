#!/usr/bin/env bash
# Run the main job end to end on generated demo data. Creates .venv on first use.
source "$(dirname "$0")/env.sh"
OUT="${1:-$ROOT/demo}"
exec flows87 demo --out "$OUT"
