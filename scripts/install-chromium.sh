#!/usr/bin/env bash
# Install Debian's chromium for the case app's browser tests (tests/test_browser*.py), quietly,
# when /usr/bin/chromium is missing. Playwright drives this browser; `playwright install`
# cannot download browsers on these machines. Needs root (or sudo). About 25 s.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-chromium.sh: /usr/bin/chromium is missing and we are not root (no sudo)" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null

if [ ! -x /usr/bin/chromium ]; then
    echo "install-chromium.sh: apt-get finished but /usr/bin/chromium is still missing" >&2
    exit 1
fi
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
