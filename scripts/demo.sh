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
# `dags test` records the run as started at $DAY's midnight (apache/airflow#66127): give it its
# real start, or the UI shows it lasting hours and flattens every real run in the grid
python scripts/dags_test_start.py flows87_daily >>"$LOG" 2>&1 || true
STATE="$(airflow dags state flows87_daily "$DAY" 2>/dev/null | tail -1)"
if [ "${STATE%%,*}" != "success" ]; then
    grep -E "AirflowFailException|Error|error" "$LOG" | tail -20
    echo "flows87 demo: the DAG run ended '$STATE'; see $LOG" >&2
    exit 1
fi
RUN="$(ls -td "$FLOWS87_HOME"/runs/*/ | head -1)"
flows87 show "${RUN%/}"

# Demo users for the case app, made once; their passwords are kept beside the demo's data. Two
# supervisors: closing a case as reported needs one to ask and another to approve (four eyes).
CREDS="$FLOWS87_HOME/demo-users.txt"
umask 077
touch "$CREDS"
for who in investigator:investigator supervisor:supervisor supervisor2:supervisor; do
    name="demo-${who%%:*}"
    grep -q "^$name / " "$CREDS" && continue
    pw="$(python -c 'import secrets; print(secrets.token_urlsafe(12))')"
    printf '%s\n' "$pw" | flows87 users add "$name" --role "${who##*:}" --password-stdin >/dev/null
    echo "$name / $pw" >>"$CREDS"
done
cat <<MSG

published cases (the flows87_cases asset): $FLOWS87_HOME/published/cases.parquet
case store: $FLOWS87_HOME/cases.db     run directory: ${RUN%/}

Open the case app on these cases:
    source scripts/env.sh && FLOWS87_HOME=$FLOWS87_HOME flows87 serve     # http://127.0.0.1:8000
  sign in as (also in $CREDS):
$(sed 's/^/    /' "$CREDS")
  a report (STR) asked by demo-supervisor is approved by demo-supervisor2 (four eyes)
Airflow's UI on the same runs (optional): bash scripts/airflow-ui.sh     # http://127.0.0.1:8080
MSG
