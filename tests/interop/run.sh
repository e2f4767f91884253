#!/usr/bin/env bash
# Interop tests with real third-party clients, run by `make test` after `swift test`:
#  - test_interop.py: websocket-client, streaming requests (SSE) and a BRPOP/GET/PUBLISH agent
#    (redis-py) against two `switchboard serve --redis` processes on one Redis;
#  - socketio_test.py: python-socketio against the same gateways;
#  - examples_test.py: Examples/Agent and Examples/Client end to end through a gateway on Redis;
#  - test_browser.py: headless Chromium drives the live page of `switchboard serve` (memory demo),
#    and its EventSource reconnects across a gateway restart (Redis).
# Creates the venv .venv when missing, installs chromium when absent, starts a private Redis
# unless SWITCHBOARD_TEST_REDIS_URL is given, and stops everything it started by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"

VENV="$ROOT/.venv"
if ! "$VENV/bin/python" -c 'import websocket, requests, redis, socketio' 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check websocket-client requests redis "python-socketio[client]"
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "installing chromium (Debian) for the browser test"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

# Same flags as scripts/test.sh, so this is a no-op after it (and builds the binary when run alone).
swift build --build-tests
export SWITCHBOARD_BIN="$ROOT/.build/debug/switchboard"

started_redis=""
if [ -z "${SWITCHBOARD_TEST_REDIS_URL:-}" ]; then
    source scripts/redis-server.sh
    start_private_redis
    started_redis=1
    SWITCHBOARD_TEST_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"
fi
export INTEROP_LOG_DIR="$(mktemp -d /tmp/switchboard-interop.XXXXXX)"
cleanup() {
    [ -n "$started_redis" ] && stop_private_redis
    return 0
}
trap cleanup EXIT

status=0
cd tests/interop
echo "== interop: third-party clients and agent, two gateways on $SWITCHBOARD_TEST_REDIS_URL"
"$VENV/bin/python" test_interop.py "$SWITCHBOARD_TEST_REDIS_URL" || status=1
"$VENV/bin/python" socketio_test.py "$SWITCHBOARD_TEST_REDIS_URL" || status=1  # Socket.IO: python-socketio client
"$VENV/bin/python" examples_test.py "$SWITCHBOARD_TEST_REDIS_URL" || status=1  # the programs in Examples/
echo "== interop: live page in headless Chromium"
"$VENV/bin/python" test_browser.py "$SWITCHBOARD_TEST_REDIS_URL" || status=1
if [ "$status" != 0 ]; then
    echo "gateway logs kept in $INTEROP_LOG_DIR" >&2
else
    rm -rf "$INTEROP_LOG_DIR"
fi
exit "$status"
