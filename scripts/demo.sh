#!/usr/bin/env bash
# Run the main job end to end on generated demo data: the flows87_daily Airflow DAG, in-process
# (`airflow dags test`), with a project-local AIRFLOW_HOME and SQLite. Creates .venv on first use.
#   bash scripts/demo.sh [FOLDER]        results in FOLDER (default: demo/)
#   FLOWS87_DEMO_DATE=2026-03-01 ...     the day whose midnight run to replay (default: today)
source "$(dirname "$0")/env.sh"
export FLOWS87_HOME
FLOWS87_HOME="$(mkdir -p "${1:-$ROOT/demo}" && cd "${1:-$ROOT/demo}" && pwd)"
DAY="${FLOWS87_DEMO_DATE:-$(date -u +%F)}"
LOG="$FLOWS87_HOME/airflow-dags-test.log"

echo "flows87 demo: Airflow metadata DB $AIRFLOW_HOME/airflow.db (SQLite), results in $FLOWS87_HOME"
airflow db migrate >"$LOG" 2>&1 || { tail -30 "$LOG"; exit 1; }
airflow dags reserialize >>"$LOG" 2>&1 || { tail -30 "$LOG"; exit 1; }
echo "running DAG flows87_daily for $DAY on generated demo data (30 days, 5,000 accounts); log: $LOG"
airflow dags test flows87_daily "$DAY" >>"$LOG" 2>&1 || true
STATE="$(airflow dags state flows87_daily "$DAY" 2>/dev/null | tail -1)"
if [ "${STATE%%,*}" != "success" ]; then
    grep -E "AirflowFailException|Error|error" "$LOG" | tail -20
    echo "flows87 demo: the DAG run ended '$STATE'; see $LOG" >&2
    exit 1
fi
RUN="$(ls -td "$FLOWS87_HOME"/runs/*/ | head -1)"
flows87 show "${RUN%/}"
cat <<MSG

published cases (the flows87_cases asset): $FLOWS87_HOME/published/cases.parquet
run directory: ${RUN%/}
Airflow UI on this run: bash scripts/airflow-ui.sh   (http://127.0.0.1:8080)
MSG
