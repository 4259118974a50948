# Sourced by the other scripts: makes .venv from uv.lock (exactly what CI tested) and
# exports the environment flows87 and Airflow need. Safe to run again: uv only adds what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${FLOWS87_PYTHON:-python3}"
# uv verifies TLS against SSL_CERT_FILE; point it at the system bundle when nothing else is set.
if [ -z "${SSL_CERT_FILE:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
fi
if command -v uv >/dev/null 2>&1; then
    UV="$(command -v uv)"
else
    # A private copy of uv, installed once with pip into .tools (uv is not on a fresh machine).
    if [ ! -x .tools/bin/uv ]; then
        echo "flows87: installing uv into .tools/ (once)" >&2
        "$PY" -m venv .tools
        .tools/bin/python -m pip install --quiet --disable-pip-version-check uv 2>/dev/null
    fi
    UV="$ROOT/.tools/bin/uv"
fi
export UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# Extras to install (the benchmarks add "bench"): FLOWS87_EXTRAS="test bench".
extras=()
for e in ${FLOWS87_EXTRAS:-test}; do extras+=(--extra "$e"); done
"$UV" sync --locked --quiet "${extras[@]}" --python "$PY"

export PATH="$ROOT/.venv/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# Task processes run at once (the LocalExecutor starts this many workers up front; Airflow's
# default is 32): one per core, at least two so partitions still run side by side.
cores="$(nproc 2>/dev/null || echo 2)"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-$((cores > 2 ? cores : 2))}"
export MPLCONFIGDIR="${MPLCONFIGDIR:-$ROOT/.cache/matplotlib}"
mkdir -p "$AIRFLOW_HOME" "$MPLCONFIGDIR"
