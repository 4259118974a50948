#!/usr/bin/env bash
# Optional: Airflow's web UI with the flows87 DAGs loaded (`airflow standalone`: API server,
# scheduler, DAG processor and triggerer in one process group), on 127.0.0.1 only.
#   bash scripts/airflow-ui.sh            http://127.0.0.1:8080, results in demo/
#   FLOWS87_UI_PORT=8081 bash scripts/airflow-ui.sh
# Log in as `admin`; the password is printed below once Airflow has generated it (it is kept in
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated). Ctrl-C stops every process.
source "$(dirname "$0")/env.sh"
export FLOWS87_HOME="${FLOWS87_HOME:-$ROOT/demo}"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="${FLOWS87_UI_PORT:-8080}"
# a daily DAG must not start catching up on every day since its start date when the UI opens
export FLOWS87_SCHEDULE="${FLOWS87_SCHEDULE:-@daily}" FLOWS87_CATCHUP="${FLOWS87_CATCHUP:-false}"
mkdir -p "$FLOWS87_HOME"
LOG="$AIRFLOW_HOME/standalone.log"
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

airflow db migrate >"$LOG" 2>&1 || { tail -30 "$LOG"; exit 1; }
setsid airflow standalone >>"$LOG" 2>&1 &
PGID=$!
stop() {
    echo "stopping Airflow (process group $PGID)"
    kill -TERM -- "-$PGID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 -- "-$PGID" 2>/dev/null || exit 0; sleep 1; done
    kill -KILL -- "-$PGID" 2>/dev/null || true
    exit 0
}
trap stop INT TERM

URL="http://127.0.0.1:$AIRFLOW__API__PORT"
echo "starting Airflow on $URL (log: $LOG) ..."
for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$URL/api/v2/monitor/health" 2>/dev/null; then break; fi
    kill -0 "$PGID" 2>/dev/null || { tail -30 "$LOG"; echo "Airflow did not start" >&2; exit 1; }
    sleep 1
done
echo "Airflow is up: $URL"
if [ -f "$PASSWORDS" ]; then
    echo "login: $(python -c 'import json,sys; d=json.load(open(sys.argv[1])); print(*[f"{u} / {p}" for u, p in d.items()], sep=", ")' "$PASSWORDS")"
fi
echo "DAG: flows87_daily (trigger it from the UI; results in $FLOWS87_HOME). Ctrl-C to stop."
wait "$PGID"
