#!/usr/bin/env bash
# Optional: Airflow's web UI with the flows87 DAGs loaded: the API server (UI, REST and execution
# API), scheduler (LocalExecutor), DAG processor and triggerer in one process group, on 127.0.0.1.
#   bash scripts/airflow-ui.sh            http://127.0.0.1:8080, results in demo/
#   FLOWS87_UI_PORT=8081 bash scripts/airflow-ui.sh
#   AIRFLOW__CORE__PARALLELISM=4 ...      task processes at once (default: one per core, >= 2)
# Log in as `admin`; the password is printed below once Airflow has generated it (it is kept in
# $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated). Ctrl-C stops every process.
#
# Not `airflow standalone`: it starts the scheduler's and the triggerer's log servers, which listen
# on every interface (Airflow has no setting for their address). Task logs are files under
# $AIRFLOW_HOME/logs that the API server on this machine reads itself, so they are not started;
# while a task runs its log page adds a note that the (absent) log server could not be reached.
# The scheduler's health-check server is off by default; if enabled, it binds 127.0.0.1 too.
source "$(dirname "$0")/env.sh"
export FLOWS87_HOME="${FLOWS87_HOME:-$ROOT/demo}"
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="${FLOWS87_UI_PORT:-8080}"
URL="http://127.0.0.1:$AIRFLOW__API__PORT"
# where task processes reach the execution API (Airflow's default is localhost:8080 whatever the port)
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$URL/execution/"
export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1
# a daily DAG must not start catching up on every day since its start date when the UI opens
export FLOWS87_SCHEDULE="${FLOWS87_SCHEDULE:-@daily}" FLOWS87_CATCHUP="${FLOWS87_CATCHUP:-false}"
mkdir -p "$FLOWS87_HOME"
LOGS="$AIRFLOW_HOME/ui-logs"
mkdir -p "$LOGS"
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"

airflow db migrate >"$LOGS/migrate.log" 2>&1 || { tail -30 "$LOGS/migrate.log"; exit 1; }
# One process group: if any component exits, the others are stopped with it.
setsid bash -c '
    cd "$1"
    airflow scheduler --skip-serve-logs >scheduler.log 2>&1 &
    airflow dag-processor >dag-processor.log 2>&1 &
    airflow triggerer --skip-serve-logs >triggerer.log 2>&1 &
    airflow api-server >api-server.log 2>&1 &
    wait -n
    echo "an Airflow process exited; stopping the others" >&2
    kill -TERM 0
' airflow-ui "$LOGS" &
PGID=$!
stop() {
    echo "stopping Airflow (process group $PGID)"
    kill -TERM -- "-$PGID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 -- "-$PGID" 2>/dev/null || exit 0; sleep 1; done
    kill -KILL -- "-$PGID" 2>/dev/null || true
    exit 0
}
trap stop INT TERM

echo "starting Airflow on $URL (logs: $LOGS/) ..."
for _ in $(seq 1 180); do
    if curl -fsS -o /dev/null "$URL/api/v2/monitor/health" 2>/dev/null; then break; fi
    kill -0 "$PGID" 2>/dev/null || { tail -n 15 "$LOGS"/*.log; echo "Airflow did not start" >&2; exit 1; }
    sleep 1
done
echo "Airflow is up: $URL (parallelism $AIRFLOW__CORE__PARALLELISM)"
if [ -f "$PASSWORDS" ]; then
    echo "login: $(python -c 'import json,sys; d=json.load(open(sys.argv[1])); print(*[f"{u} / {p}" for u, p in d.items()], sep=", ")' "$PASSWORDS")"
fi
echo "DAG: flows87_daily (trigger it from the UI; results in $FLOWS87_HOME). Ctrl-C to stop."
wait "$PGID"
