# Sourced by scripts: start_private_redis / stop_private_redis.
# A redis-server on a free loopback port, no persistence, in its own temp dir.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_private_redis() {
    REDIS_PORT="${REDIS_PORT:-$(free_port)}"
    REDIS_DIR="$(mktemp -d /tmp/switchboard-redis.XXXXXX)"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --dir "$REDIS_DIR" --daemonize no --logfile "$REDIS_DIR/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 1 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        echo "redis-server did not start on port $REDIS_PORT:" >&2
        cat "$REDIS_DIR/redis.log" >&2 || true
        return 1
    fi
    export REDIS_PORT REDIS_PID REDIS_DIR
}

stop_private_redis() {
    [ -n "${REDIS_PID:-}" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
    [ -n "${REDIS_DIR:-}" ] && rm -rf "$REDIS_DIR"
    return 0
}
