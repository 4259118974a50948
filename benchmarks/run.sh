#!/usr/bin/env bash
# Run a benchmark script with the benchmark extras (snapml) installed:
#   bash benchmarks/run.sh benchmarks/bench_foundation.py --sizes 1000000 5000000
FLOWS87_EXTRAS="test bench" source "$(dirname "$0")/../scripts/env.sh"
exec python "$@"
