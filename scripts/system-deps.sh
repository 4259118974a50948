#!/usr/bin/env bash
# System packages two groups of tests need, installed from Debian when missing:
#   postgresql  the case store's tests against a real PostgreSQL server (tests/postgres.py)
#   chromium    the case app's browser tests (Playwright drives /usr/bin/chromium; it cannot
#               download a browser here)
#   redis-server  the Celery broker of tests/test_celery.py (FLOWS87_CELERY=1) and
#               `bench_scheduler.py --executor celery`; started by tests/airflow_cluster.py
# Needs root or sudo and apt-get (about 30 s the first time). Without them it says which tests
# will skip, and succeeds: the rest of the suite does not need these packages.
set -euo pipefail

need=()
[ -d /usr/lib/postgresql ] || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "flows87: ${need[*]} missing and no root/sudo to install them; their tests will skip" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "flows87: ${need[*]} missing and no apt-get; their tests will skip" >&2
    exit 0
fi
echo "flows87: installing ${need[*]} (once)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
