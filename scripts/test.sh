#!/usr/bin/env bash
# `make test`: a private redis-server on a free loopback port for the duration of the run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/redis-server.sh
start_private_redis
trap stop_private_redis EXIT

export SWITCHBOARD_TEST_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"
export SWITCHBOARD_REQUIRE_REDIS=1   # under make test a missing Redis fails the run
echo "redis-server $REDIS_PID on $SWITCHBOARD_TEST_REDIS_URL"

swift build --build-tests
swift test --skip-build

# Interop tests with real third-party clients (Python), when present.
for suite in tests/interop/run.sh; do
    [ -x "$suite" ] && "$suite"
done
exit 0
