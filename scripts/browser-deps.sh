#!/bin/sh
# Installs what the pages' browser tests drive, when missing:
#  - Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver);
#    browser builds that download themselves cannot be fetched on these machines;
#  - axe-core, pinned in tests/browser/package-lock.json, from the npm registry.
set -eu
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    echo "browser-deps: installing chromium and chromium-driver from Debian's packages" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromium --version >&2
chromedriver --version >&2

if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi
