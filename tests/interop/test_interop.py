"""Interop: third-party clients and a third-party agent against real `switchboard serve --redis`
processes. Usage: test_interop.py REDIS_URL"""

import contextlib
import gzip
import json
import os
import signal
import zlib
import socket
import sys
import time
import uuid

import redis
import requests
import websocket

from clients import SSEClient, WSClient
from common import SECRET, Gateway, Runner, expect, token, wait_for
from guide_agent import GuideAgent

LIFECYCLE = ["rebalance:created", "rebalance:processing", "rebalance:done"]


def create_job(gateway, bearer, payload):
    response = requests.post(f"{gateway.url}/api/v1/agent/rebalance", json=payload,
                             headers={"Authorization": f"Bearer {bearer}"}, timeout=10)
    expect(response.status_code == 201, f"create: {response.status_code} {response.text}")
    body = response.json()
    expect(body["status"] == "created", body)
    return body["jobId"]


def ws_lifecycle(ws, job_id):
    """Reads a job's events from a WSClient until `done`; returns the frames."""
    frames = []
    while not frames or frames[-1]["type"] != "rebalance:done":
        frame = ws.next_event()
        expect(frame["payload"]["jobId"] == job_id, f"event of another job: {frame}")
        frames.append(frame)
    return frames


def sse_lifecycle(sse, job_id):
    records = []
    while not records or records[-1]["event"] != "rebalance:done":
        record = sse.next()
        if record["event"] == "connected":
            continue
        data = json.loads(record["data"])
        expect(data["jobId"] == job_id, f"event of another job: {record}")
        records.append(record)
    return records


def test_health(nodes):
    for node in nodes:
        response = requests.get(f"{node.url}/health", timeout=5)
        expect(response.status_code == 200, response.text)
        body = response.json()
        expect(body["status"] == "ok" and body["backend"] == "redis", body)


def test_websocket_client_sees_lifecycle(node):
    user = f"ws-{uuid.uuid4().hex[:8]}"
    bearer = token(user)
    ws = WSClient(f"{node.ws_url}/ws?token={bearer}")
    try:
        connected = ws.next()
        expect(connected["type"] == "connected" and connected["payload"]["userId"] == user, connected)
        job_id = create_job(node, bearer, {"amount": 1000})
        frames = ws_lifecycle(ws, job_id)
        expect([f["type"] for f in frames] == LIFECYCLE, [f["type"] for f in frames])
        expect(frames[-1]["payload"]["result"]["fee"] == 20, frames[-1])
        ids = [int(f["eventId"]) for f in frames]
        expect(ids == sorted(ids) and len(set(ids)) == 3, ids)
        ws.send({"type": "ping"})
        expect(ws.next()["type"] == "pong", "pong")
        record = requests.get(f"{node.url}/api/v1/rebalance/{job_id}",
                              headers={"Authorization": f"Bearer {bearer}"}, timeout=5).json()
        expect(record["status"] == "done" and [h["status"] for h in record["history"]] ==
               ["created", "processing", "done"], record)
    finally:
        ws.close()


def test_sse_client_sees_lifecycle(node):
    user = f"sse-{uuid.uuid4().hex[:8]}"
    bearer = token(user)
    sse = SSEClient(f"{node.url}/api/v1/events", headers={"Authorization": f"Bearer {bearer}"})
    try:
        expect(sse.status == 200, sse.status)
        expect(sse.next()["event"] == "connected", "connected")
        job_id = create_job(node, bearer, {"amount": 50})
        records = sse_lifecycle(sse, job_id)
        expect([r["event"] for r in records] == LIFECYCLE, [r["event"] for r in records])
        expect(all(json.loads(r["data"])["eventId"] == r["id"] for r in records), records)
    finally:
        sse.close()

    # Replay from the `created` id: exactly the later two.
    replay = SSEClient(f"{node.url}/api/v1/events?token={bearer}", headers={"Last-Event-ID": records[0]["id"]})
    try:
        expect(replay.next()["event"] == "connected", "connected")
        expect([replay.next()["id"], replay.next()["id"]] == [records[1]["id"], records[2]["id"]], "replay")
    finally:
        replay.close()


def test_error_status_reaches_user(node):
    user = f"err-{uuid.uuid4().hex[:8]}"
    bearer = token(user)
    ws = WSClient(f"{node.ws_url}/ws?token={bearer}")
    try:
        ws.next()
        job_id = create_job(node, bearer, {"amount": -3})
        first = ws.next_event()
        second = ws.next_event()
        third = ws.next_event()
        expect([first["type"], second["type"], third["type"]] ==
               ["rebalance:created", "rebalance:processing", "rebalance:error"], (first, second, third))
        expect(third["payload"]["error"] == "Invalid amount" and third["payload"]["jobId"] == job_id, third)
    finally:
        ws.close()


def test_cross_node_exactly_once(node_a, node_b):
    user = f"x-{uuid.uuid4().hex[:8]}"
    bearer = token(user)
    ws_b = WSClient(f"{node_b.ws_url}/ws?token={bearer}")
    sse_b = SSEClient(f"{node_b.url}/api/v1/events?token={bearer}")
    ws_a = WSClient(f"{node_a.ws_url}/ws?token={bearer}")
    try:
        for client in (ws_b, ws_a):
            expect(client.next()["type"] == "connected", "connected")
        expect(sse_b.next()["event"] == "connected", "connected")
        job_ids = [create_job(node_a, bearer, {"amount": 100 + i}) for i in range(3)]
        for ws in (ws_b, ws_a):
            seen = {}
            while sum(1 for t in seen.values() if "rebalance:done" in t) < len(job_ids):
                frame = ws.next_event()
                seen.setdefault(frame["payload"]["jobId"], []).append(frame["type"])
            # Quiet period: a duplicate would arrive now. The ping's pong bounds what was queued.
            ws.send({"type": "ping"})
            while True:
                frame = ws.next(timeout=5)
                if frame["type"] == "pong":
                    break
                seen.setdefault(frame["payload"]["jobId"], []).append(frame["type"])
            time.sleep(0.5)
            while not ws.frames.empty():
                frame = ws.frames.get()
                if frame and ":" in frame.get("type", ""):
                    seen.setdefault(frame["payload"]["jobId"], []).append(frame["type"])
            for job_id in job_ids:
                expect(seen.get(job_id) == LIFECYCLE, f"{job_id}: {seen.get(job_id)}")
        sse_seen = {}
        while sum(1 for t in sse_seen.values() if "rebalance:done" in t) < len(job_ids):
            record = sse_b.next()
            sse_seen.setdefault(json.loads(record["data"])["jobId"], []).append(record["event"])
        for job_id in job_ids:
            expect(sse_seen.get(job_id) == LIFECYCLE, f"sse {job_id}: {sse_seen.get(job_id)}")
    finally:
        ws_a.close()
        ws_b.close()
        sse_b.close()


def test_emit_from_another_service(node_a, node_b, redis_url):
    user = f"emit-{uuid.uuid4().hex[:8]}"
    bearer = token(user)
    clients = [WSClient(f"{node.ws_url}/ws?token={bearer}") for node in (node_a, node_b)]
    try:
        for client in clients:
            client.next()
        publisher = redis.Redis.from_url(redis_url)
        wait_for(lambda: publisher.pubsub_numsub("ws:emit")[0][1] >= 2, "both nodes on ws:emit")
        publisher.publish("ws:emit", json.dumps({"userId": user, "event": "notification", "data": {"text": "hi"}}))
        for client in clients:
            frame = client.next_event()
            expect(frame["type"] == "notification" and frame["payload"]["text"] == "hi", frame)
    finally:
        for client in clients:
            client.close()


def test_bad_tokens_are_refused(node):
    for query in ["", "?token=garbage", f"?token={token('x', secret='another-secret-0123456789abcdefghijkl')}"]:
        try:
            websocket.create_connection(f"{node.ws_url}/ws{query}", timeout=5)
        except websocket.WebSocketBadStatusException as error:
            expect(error.status_code == 401, error.status_code)
        else:
            raise AssertionError(f"upgraded with {query!r}")
        sse = requests.get(f"{node.url}/api/v1/events{query}", stream=True, timeout=5)
        expect(sse.status_code == 401, sse.status_code)
        expect("error" in sse.json(), sse.text)
    bad = requests.post(f"{node.url}/api/v1/agent/rebalance", json={}, timeout=5)
    expect(bad.status_code == 401 and "error" in bad.json(), bad.text)
    large = requests.post(f"{node.url}/api/v1/agent/rebalance", data="x" * (70 * 1024),
                          headers={"Authorization": f"Bearer {token('big')}"}, timeout=5)
    expect(large.status_code == 413, large.status_code)


def test_compressed_bodies(node):
    """Bodies compressed as an HTTP client compresses them (gzip, deflate) create jobs, as
    Express's body parser accepted for the original; the size limit applies inflated."""
    bearer = token("zipped")
    payload = json.dumps({"amount": 40, "note": "gzip \u00e9"}).encode()
    for encoding, body in [("gzip", gzip.compress(payload)), ("deflate", zlib.compress(payload))]:
        response = requests.post(f"{node.url}/api/v1/agent/rebalance", data=body, timeout=10,
                                 headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json",
                                          "Content-Encoding": encoding})
        expect(response.status_code == 201, f"{encoding}: {response.status_code} {response.text}")
        job = requests.get(f"{node.url}/api/v1/rebalance/{response.json()['jobId']}",
                           headers={"Authorization": f"Bearer {bearer}"}, timeout=10).json()
        expect(job["payload"] == {"amount": 40, "note": "gzip \u00e9"}, job)
    bomb = gzip.compress(b'{"pad":"' + b" " * (1 << 20) + b'"}')
    response = requests.post(f"{node.url}/api/v1/agent/rebalance", data=bomb, timeout=10,
                             headers={"Authorization": f"Bearer {bearer}", "Content-Encoding": "gzip"})
    expect(response.status_code == 413 and "error" in response.json(), f"{response.status_code} {response.text}")


def test_cli_refuses_bad_settings():
    """Settings that cannot work stop `serve`, `agent` and `token` at once with a message that
    names them (exit 1 or 64), rather than being ignored or reported as something else."""
    import subprocess
    from common import BINARY, ROOT
    cases = [
        (["serve", "--port", "-1"], {}, "--port must be 0-65535"),
        (["serve", "--heartbeat", "-5"], {}, "--heartbeat must be from 0.1 to 86400 seconds, not -5"),
        (["agent", "--concurrency", "-1"], {}, "--concurrency must be from 1 to 10000, not -1"),
        (["agent", "--concurrency", "10001"], {}, "--concurrency must be from 1 to 10000, not 10001"),
        # Once a trap converting to Int64 (1e300), or 30 s in place of a value below a millisecond.
        (["agent", "--visibility-timeout", "1e300"], {}, "--visibility-timeout must be from 0.1 to 86400 seconds, not 1e+300"),
        (["agent", "--visibility-timeout", "0.0001"], {}, "--visibility-timeout must be from 0.1 to 86400 seconds"),
        (["agent", "--visibility-timeout", "nan"], {}, "--visibility-timeout must be from 0.1 to 86400 seconds, not nan"),
        (["serve", "--ping-interval", "inf"], {}, "--ping-interval must be from 0.1 to 86400 seconds, not inf"),
        (["serve", "--ping-timeout", "-inf"], {}, "--ping-timeout must be from 0.1 to 86400 seconds, not -inf"),
        (["serve", "--idle-timeout", "1e300"], {}, "--idle-timeout must be from 0.1 to 86400 seconds"),
        (["serve", "--request-head-timeout", "0"], {}, "--request-head-timeout must be from 0.1 to 86400 seconds"),
        (["serve", "--shutdown-timeout", "86400.5"], {}, "--shutdown-timeout must be from 0.1 to 86400 seconds"),
        (["agent", "--redis-keep-alive", "0.01"], {}, "--redis-keep-alive must be 0 (no PING) or from 0.1 to 86400 seconds"),
        (["serve", "--redis-keep-alive", "-1"], {}, "--redis-keep-alive must be 0 (no PING) or from 0.1 to 86400 seconds"),
        (["agent", "--redis-keep-alive", "0"], {}, "switchboard agent needs a Redis"),
        (["serve", "--redis-ca-file", "/nonexistent/ca.pem"], {},
         "redis: cannot read the CA file /nonexistent/ca.pem: No such file"),
        (["agent", "--redis", "redis://127.0.0.1:1", "--redis-ca-file", __file__], {}, "holds no PEM certificate"),
        (["agent", "--redis", "redis://127.0.0.1:1", "--redis-tls-insecure"], {},
         "--redis-tls-insecure are for TLS: give a rediss:// URL"),
        (["serve", "--redis", "redis://127.0.0.1:1", "--redis-ca-file", os.path.join(ROOT, "Tests", "Fixtures", "TLS", "ca.pem")],
         {"JWT_SECRET": SECRET}, "are for TLS: give a rediss:// URL"),
        (["agent", "--redis-cert-file", os.path.join(ROOT, "Tests", "Fixtures", "TLS", "client.pem")], {},
         "--redis-cert-file and --redis-key-file go together"),
        # An encrypted client key takes its passphrase from the environment, never from a flag.
        (["agent", "--redis", "rediss://127.0.0.1:1", "--redis-cert-file", os.path.join(ROOT, "Tests", "Fixtures", "TLS", "client.pem"),
          "--redis-key-file", os.path.join(ROOT, "Tests", "Fixtures", "TLS", "client-encrypted.key")], {},
         "for an encrypted key give its passphrase"),
        (["agent", "--redis", "rediss://127.0.0.1:1", "--redis-cert-file", os.path.join(ROOT, "Tests", "Fixtures", "TLS", "client.pem"),
          "--redis-key-file", os.path.join(ROOT, "Tests", "Fixtures", "TLS", "client-encrypted.key")],
         {"REDIS_KEY_PASSPHRASE": "hunter2"}, "holds no PEM private key that the passphrase given decrypts"),
        # The right passphrase passes the key's check: what stops it then is the URL's scheme.
        (["agent", "--redis", "redis://127.0.0.1:1", "--redis-cert-file", os.path.join(ROOT, "Tests", "Fixtures", "TLS", "client.pem"),
          "--redis-key-file", os.path.join(ROOT, "Tests", "Fixtures", "TLS", "client-encrypted.key")],
         {"REDIS_KEY_PASSPHRASE": "test-passphrase"}, "are for TLS: give a rediss:// URL"),
        # URL parameters (redis-py's) are applied or refused, never ignored; files are checked at start.
        (["agent", "--redis", "redis://127.0.0.1:1/2?db=3"], {}, "database 2 in its path and 3 in db="),
        (["agent", "--redis", "rediss://127.0.0.1:1?ssl_ca_certs=/nonexistent/ca.pem"], {},
         "redis: cannot read the CA file /nonexistent/ca.pem: No such file"),
        (["serve", "--redis", "redis://:hunter2@127.0.0.1:1?ssl_keyfile=/k.pem"], {"JWT_SECRET": SECRET},
         "ssl_keyfile is for TLS: use a rediss:// URL"),
        (["serve", "--redis", "redis://:hunter2@127.0.0.1:1?dbx=1"], {"JWT_SECRET": SECRET},
         "not one Switchboard reads"),
        # A misspelt secret parameter is not echoed either (the URL shows it as ***).
        (["agent", "--redis", "redis://127.0.0.1:1?pasword=hunter2"], {}, "--redis redis://127.0.0.1:1?***: "),
        # The ends of the ranges pass validation: the agent gets as far as wanting a Redis.
        (["agent", "--visibility-timeout", "0.1", "--concurrency", "10000"], {}, "switchboard agent needs a Redis"),
        (["agent", "--visibility-timeout", "86400", "--concurrency", "1"], {}, "switchboard agent needs a Redis"),
        (["serve", "--log-level", "loud"], {}, "unknown --log-level loud"),
        (["serve"], {"LOG_LEVEL": "bogus"}, "LOG_LEVEL=bogus"),
        (["serve", "--cors-origin", "example.com"], {}, "is not an origin"),
        (["serve"], {"CORS_ORIGIN": "https://app.example.com/"}, "is not an origin"),
        (["token", "--user", "has space", "--secret", SECRET], {}, "--user must be 1-128 bytes"),
    ]
    for arguments, env, message in cases:
        full_env = {**os.environ, "REDIS_URL": "", "UPSTASH_REDIS_URL": "", "JWT_SECRET": "", **env}
        out = subprocess.run([BINARY, *arguments], capture_output=True, text=True, timeout=30, env=full_env)
        expect(out.returncode in (1, 64) and message in out.stderr,
               f"{arguments} {env}: exit {out.returncode}, {out.stderr[-500:]!r}")
        expect("hunter2" not in out.stderr + out.stdout, f"{arguments}: the password is echoed: {out.stderr[-500:]!r}")


def test_agent_raises_open_file_limit():
    """`switchboard agent` raises its soft open-file limit to the hard one at start, as `serve`
    does, and logs the limit in effect: started with a soft limit of 256, it reports the hard one."""
    import resource
    import subprocess
    from common import BINARY
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    env = {**os.environ, "REDIS_URL": "", "UPSTASH_REDIS_URL": ""}
    # A URL whose CA file is missing: the agent logs the limit, then stops at the file.
    out = subprocess.run([BINARY, "agent", "--redis", "rediss://127.0.0.1:1?ssl_ca_certs=/nonexistent/ca.pem"],
                         capture_output=True, text=True, timeout=30, env=env,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard)))
    expect(f"openFileLimit={expected} " in out.stderr and "/nonexistent/ca.pem" in out.stderr and out.returncode == 1,
           f"hard limit {hard}: exit {out.returncode}, {out.stderr[-500:]!r}")


def test_refused_redis_settings_stop_at_start():
    """A Redis that refuses the settings (wrong password, none given, a database it does not
    have) will refuse them again: `serve` and `agent` exit 1 at start naming the cause, without
    echoing the password, instead of retrying for ever behind a 503. A Redis that is down at
    start is still waited for (test_redis_down_at_start_then_up)."""
    import subprocess
    import tempfile
    from common import BINARY, free_port
    port = free_port()
    directory = tempfile.mkdtemp(prefix="switchboard-refused-")
    with _private_redis(directory, port, "--requirepass", "right-pw", "--databases", "4"):
        wait_for(lambda: _redis_answers(f"redis://:right-pw@127.0.0.1:{port}"), "the private redis-server", timeout=20)
        env = {**os.environ, "REDIS_URL": "", "UPSTASH_REDIS_URL": "", "JWT_SECRET": SECRET}
        for command, url, cause in (
                ("serve", f"redis://:hunter2@127.0.0.1:{port}", "WRONGPASS"),
                ("agent", f"redis://:hunter2@127.0.0.1:{port}", "WRONGPASS"),
                ("serve", f"redis://127.0.0.1:{port}", "NOAUTH"),
                ("agent", f"redis://:right-pw@127.0.0.1:{port}/9", "the server has no database 9")):
            extra = ["--port", str(free_port())] if command == "serve" else []
            out = subprocess.run([BINARY, command, "--redis", url, *extra], capture_output=True, text=True,
                                 timeout=30, env=env)
            expect(out.returncode == 1 and "refused the settings" in out.stderr and cause in out.stderr,
                   f"{command} {cause}: exit {out.returncode}, {out.stderr[-600:]!r}")
            expect("hunter2" not in out.stderr + out.stdout and "right-pw" not in out.stderr + out.stdout,
                   f"{command}: a password is echoed")


def test_redis_keep_alive_outlasts_the_server_timeout():
    """A redis-server that closes clients silent for 2 s (`timeout 2`): with `--redis-keep-alive
    0.5`, or a URL's `health_check_interval=0.5` (redis-py's name), a quiet gateway's command
    connection lives on; with the flag at 0 (no PING), which wins over the URL, it is closed and
    opened again, so the setting is what keeps it. The URL's `client_name` names the connections."""
    import tempfile
    from common import free_port
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    directory = tempfile.mkdtemp(prefix="switchboard-keepalive-")
    with _private_redis(directory, port, "--timeout", "2"):
        wait_for(lambda: _redis_answers(url), "the private redis-server", timeout=20)
        cases = ((["--redis-keep-alive", "0.5"], "", "switchboard", True),
                 ([], "?health_check_interval=0.5&client_name=gw-from-url", "gw-from-url", True),
                 (["--redis-keep-alive", "0"], "?health_check_interval=0.5", "switchboard", False))
        for number, (flags, query, name, kept) in enumerate(cases):
            node = Gateway("--redis", url + query, *flags, env={"JWT_SECRET": SECRET},
                           name=f"gateway-keepalive-{number}")
            try:
                wait_for(lambda: redis.Redis.from_url(url).pubsub_numsub("agent:rebalance:status")[0][1] >= 1,
                         "the gateway to subscribe")
                time.sleep(5)  # no request meanwhile: only the keep-alive can speak
                ages = [int(c["age"]) for c in redis.Redis.from_url(url).client_list()
                        if c["name"] == f"{name}-commands"]
                expect(bool(ages) and (min(ages) >= 4) == kept,
                       f"{flags} {query}: command connection ages {ages}")
            finally:
                code = node.stop()
                expect(code == 0, f"exit code {code}")


def _jobs_through_both_agents(node, url, how):
    """Through `node`, one job run by the guide's agent (redis-py) on `url`, then one run by
    `switchboard agent --redis url`; a WebSocket client sees each one's lifecycle. Both
    agents are stopped before it returns (switchboard's with exit 0). Returns the second job's id."""
    import subprocess
    from common import BINARY
    guide = GuideAgent(url)
    guide.start()
    agent = None
    bearer = token(f"agents-{uuid.uuid4().hex[:8]}")
    ws = WSClient(f"{node.ws_url}/ws?token={bearer}")
    try:
        expect(ws.next()["type"] == "connected", "connected")
        first = create_job(node, bearer, {"amount": 100})
        expect([f["type"] for f in ws_lifecycle(ws, first)] == LIFECYCLE, f"the guide's agent {how}")
        expect(first in guide.processed, guide.processed)
        guide.stop()
        guide = None
        agent = subprocess.Popen([BINARY, "agent", "--redis", url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        second = create_job(node, bearer, {"amount": 200})
        frames = ws_lifecycle(ws, second)
        expect([f["type"] for f in frames] == LIFECYCLE and frames[-1]["payload"]["result"]["fee"] == 4,
               f"switchboard agent {how}")
        return second
    finally:
        ws.close()
        if guide:
            guide.stop()
        if agent:
            agent.send_signal(signal.SIGTERM)
            code = agent.wait(timeout=30)
            expect(code == 0, f"agent exit code {code}: {agent.stderr.read().decode()[-500:]}")


def test_rediss_end_to_end():
    """A redis-server that speaks only TLS, with a private CA: `serve --redis rediss://...
    --redis-ca-file`, the guide's agent over TLS (redis-py), then `switchboard agent` over TLS
    with the very URL redis-py took (`?ssl_ca_certs=`); a WebSocket client sees each job's
    lifecycle. A gateway without the CA never connects."""
    import tempfile
    from common import ROOT, free_port
    fixtures = os.path.join(ROOT, "Tests", "Fixtures", "TLS")
    ca = os.path.join(fixtures, "ca.pem")
    port = free_port()
    url = f"rediss://127.0.0.1:{port}"
    directory = tempfile.mkdtemp(prefix="switchboard-tls-")
    node = untrusting = None
    with _private_redis(directory, 0, "--tls-port", str(port),
                        "--tls-cert-file", os.path.join(fixtures, "server.pem"),
                        "--tls-key-file", os.path.join(fixtures, "server.key"),
                        "--tls-ca-cert-file", ca, "--tls-auth-clients", "no"):
        try:
            client_url = f"{url}?ssl_ca_certs={ca}"
            wait_for(lambda: _redis_answers(client_url), "the private TLS redis-server", timeout=20)
            node = Gateway("--redis", url, "--redis-ca-file", ca, env={"JWT_SECRET": SECRET}, name="gateway-tls")
            untrusting = Gateway("--redis", url, env={"JWT_SECRET": SECRET}, name="gateway-tls-untrusting")
            # The URL redis-py is given, CA parameter and all, serves `switchboard agent` too.
            _jobs_through_both_agents(node, client_url, "over TLS")
            health = requests.get(f"{untrusting.url}/health", timeout=10)
            expect(health.status_code == 503, f"a gateway without the CA: {health.status_code} {health.text}")
        finally:
            for gateway in (node, untrusting):
                if gateway:
                    code = gateway.stop()
                    expect(code == 0, f"gateway exit code {code}")


def test_unix_socket_end_to_end():
    """A redis-server on a Unix socket with a password: `serve --redis unix://:pw@/path?db=3`,
    the guide's agent given the same URL (redis-py reads it too), then `switchboard agent` on
    it; a WebSocket client sees each job's lifecycle, and the record is in database 3."""
    import tempfile
    directory = tempfile.mkdtemp(prefix="switchboard-unix-")
    path = os.path.join(directory, "redis.sock")
    url = f"unix://:s0cket@{path}?db=3"
    node = None
    with _private_redis(directory, 0, "--unixsocket", path, "--unixsocketperm", "700", "--requirepass", "s0cket"):
        try:
            wait_for(lambda: _redis_answers(url), "the private redis-server on its socket", timeout=20)
            node = Gateway("--redis", url, env={"JWT_SECRET": SECRET}, name="gateway-unix")
            shown = node.read_banner_line("backend:")
            expect(path in shown and "s0cket" not in shown, f"the banner names the socket, not the password: {shown}")
            second = _jobs_through_both_agents(node, url, "over the socket")
            stored = redis.Redis.from_url(url).get(f"agent:rebalance:job:{second}")
            expect(stored is not None and json.loads(stored)["status"] == "done", f"the record in database 3: {stored!r}")
        finally:
            if node:
                code = node.stop()
                expect(code == 0, f"gateway exit code {code}")


def test_redis_down_at_start_then_up(redis_url):
    """A gateway started before its Redis answers 503 on /health, then 200 once Redis is up,
    and then serves jobs without a restart."""
    import subprocess
    import tempfile
    from common import free_port
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    node = Gateway("--redis", url, env={"JWT_SECRET": SECRET}, name="gateway-late-redis")
    server = None
    directory = tempfile.mkdtemp(prefix="switchboard-late-redis-")
    try:
        down = requests.get(f"{node.url}/health", timeout=10)
        expect(down.status_code == 503 and down.json()["status"] == "unavailable", down.text)
        server = _redis_server(port, directory)
        wait_for(lambda: requests.get(f"{node.url}/health", timeout=10).status_code == 200, "health 200", timeout=30)
        agent = GuideAgent(url)
        agent.start()
        try:
            bearer = token("late-user")
            wait_for(lambda: redis.Redis.from_url(url).pubsub_numsub("agent:rebalance:status")[0][1] >= 1,
                     "the gateway to resubscribe", timeout=30)
            ws = WSClient(f"{node.ws_url}/ws?token={bearer}")
            try:
                ws.next()
                job_id = create_job(node, bearer, {"amount": 10})
                expect([f["type"] for f in ws_lifecycle(ws, job_id)][-1] == "rebalance:done", "done")
            finally:
                ws.close()
        finally:
            agent.stop()
    finally:
        code = node.stop()
        expect(code == 0, f"exit code {code}")
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        import shutil
        shutil.rmtree(directory, ignore_errors=True)


def test_redis_restart_mid_run(redis_url):
    """Redis dies under a running gateway with a WebSocket and an SSE client connected: /health
    turns 503 and job creation fails with a JSON error while it is down; the clients stay
    connected; clients that connect meanwhile (WebSocket, SSE, python-socketio) are let in
    rather than refused (a refused Socket.IO CONNECT or an SSE error status would leave them
    disconnected for good); once a Redis is back on the same port, /health is 200 and a new
    job's events reach every one of them without any reconnecting."""
    import shutil
    import subprocess
    import tempfile
    from common import free_port
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    directory = tempfile.mkdtemp(prefix="switchboard-restart-")

    def start_redis():
        server = _redis_server(port, directory)
        wait_for(lambda: _redis_answers(url), "the private redis-server", timeout=20)
        return server

    server = start_redis()
    node = Gateway("--redis", url, env={"JWT_SECRET": SECRET}, name="gateway-redis-restart")
    agent = GuideAgent(url)
    agent.start()
    ws = sse = late_ws = late_sse = late_sio = None
    try:
        user = f"restart-{uuid.uuid4().hex[:8]}"
        bearer = token(user)
        wait_for(lambda: redis.Redis.from_url(url).pubsub_numsub("agent:rebalance:status")[0][1] >= 1,
                 "the gateway to subscribe")
        ws = WSClient(f"{node.ws_url}/ws?token={bearer}")
        ws.next()
        sse = SSEClient(f"{node.url}/api/v1/events?token={bearer}")
        expect(sse.status == 200, f"SSE status {sse.status}")
        before = create_job(node, bearer, {"amount": 10})
        expect([f["type"] for f in ws_lifecycle(ws, before)][-1] == "rebalance:done", "done before the restart")

        agent.stop()
        server.kill()
        server.wait(timeout=10)
        wait_for(lambda: requests.get(f"{node.url}/health", timeout=10).status_code == 503, "health 503", timeout=30)
        down = requests.post(f"{node.url}/api/v1/agent/rebalance", json={"amount": 5},
                             headers={"Authorization": f"Bearer {bearer}"}, timeout=15)
        expect(down.status_code >= 500 and "error" in down.json(), f"create while down: {down.status_code} {down.text}")
        late_ws = WSClient(f"{node.ws_url}/ws?token={bearer}")
        expect(late_ws.next()["type"] == "connected", "a WebSocket opened while Redis is down")
        late_sse = SSEClient(f"{node.url}/api/v1/events?token={bearer}")
        expect(late_sse.status == 200, f"SSE opened while Redis is down: {late_sse.status}")
        import socketio
        late_sio = socketio.Client(reconnection=False)
        sio_events = []
        late_sio.on("*", lambda event, *args: sio_events.append((event, (args[0] if args else {}).get("jobId"))))
        late_sio.connect(node.url, auth={"token": bearer}, wait_timeout=15)

        server = start_redis()
        wait_for(lambda: requests.get(f"{node.url}/health", timeout=10).status_code == 200, "health 200", timeout=30)
        wait_for(lambda: redis.Redis.from_url(url).pubsub_numsub("agent:rebalance:status")[0][1] >= 1,
                 "the gateway to resubscribe", timeout=30)
        agent = GuideAgent(url)
        agent.start()
        after = create_job(node, bearer, {"amount": 20})
        expect([f["type"] for f in ws_lifecycle(ws, after)][-1] == "rebalance:done",
               "the same WebSocket sees the new job done")
        # The stream also carries the first job's events; read on to the new job's `done`.
        seen = []
        while not seen or seen[-1] != ("rebalance:done", after):
            record = sse.next()
            if record["event"] != "connected":
                seen.append((record["event"], json.loads(record["data"]).get("jobId")))
        expect([e for e in seen if e[1] == after] ==
               [("rebalance:created", after), ("rebalance:processing", after), ("rebalance:done", after)],
               f"the same SSE stream sees the new job's lifecycle: {seen}")
        # Its replay may repeat the first job's events (whose delivery the dead Redis may not have recorded).
        while True:
            frame = late_ws.next_event()
            if frame["type"] == "rebalance:done" and frame["payload"]["jobId"] == after:
                break
        late_seen = []
        while not late_seen or late_seen[-1] != ("rebalance:done", after):
            record = late_sse.next()
            if record["event"] != "connected":
                late_seen.append((record["event"], json.loads(record["data"]).get("jobId")))
        expect([e for e in late_seen if e[1] == after][-1] == ("rebalance:done", after),
               f"the SSE stream opened while Redis was down sees the new job done: {late_seen}")
        wait_for(lambda: ("rebalance:done", after) in sio_events, "python-socketio (connected while Redis was down) sees done")
    finally:
        agent.stop()
        if late_sio is not None:
            late_sio.disconnect()
        for client in (ws, sse, late_ws, late_sse):
            if client is not None:
                client.close()
        code = node.stop()
        expect(code == 0, f"exit code {code}")
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def test_sigterm_while_redis_hangs():
    """SIGTERM while Redis is stopped (SIGSTOP: connections open, nothing answers) with a
    WebSocket client connected: the gateway still exits 0, within its command timeout (5 s)
    and well before the 15 s a supervisor would wait."""
    import subprocess
    import tempfile
    from common import free_port
    port = free_port()
    url = f"redis://127.0.0.1:{port}"
    directory = tempfile.mkdtemp(prefix="switchboard-hang-")
    node = None
    with _private_redis(directory, port) as server:
        try:
            wait_for(lambda: _redis_answers(url), "the private redis-server", timeout=20)
            node = Gateway("--redis", url, env={"JWT_SECRET": SECRET}, name="gateway-redis-hang")
            wait_for(lambda: redis.Redis.from_url(url).pubsub_numsub("agent:rebalance:status")[0][1] >= 1,
                     "the gateway to subscribe")
            ws = WSClient(f"{node.ws_url}/ws?token={token('hang-user')}")
            ws.next()
            server.send_signal(signal.SIGSTOP)
            started = time.time()
            node.process.send_signal(signal.SIGTERM)
            try:
                code = node.process.wait(timeout=12)
            except subprocess.TimeoutExpired:
                code = None
            expect(code == 0, f"exit code {code} after {time.time() - started:.1f}s")
            ws.close()
        finally:
            server.send_signal(signal.SIGCONT)
            if node is not None:
                node.stop()


@contextlib.contextmanager
def _private_redis(directory, port, *settings):
    """`_redis_server` as a context: the server is stopped and `directory` removed on exit."""
    import shutil
    server = _redis_server(port, directory, *settings)
    try:
        yield server
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _redis_server(port, directory, *settings):
    """A private redis-server on 127.0.0.1:`port` (0: none but a TLS port in `settings`), keeping
    nothing on disk but in `directory`; `settings` are more of its flags."""
    import subprocess
    return subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", directory, *settings],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _redis_answers(url):
    try:
        return redis.Redis.from_url(url, socket_timeout=1).ping()
    except redis.exceptions.RedisError:
        return False


def test_sigterm_with_open_connections(db_url):
    """SIGTERM with WebSocket and SSE clients connected: they are closed and the process exits 0."""
    node = Gateway("--redis", db_url, env={"JWT_SECRET": SECRET}, name="gateway-sigterm")
    bearer = token("leaving")
    ws = WSClient(f"{node.ws_url}/ws?token={bearer}")
    sse = SSEClient(f"{node.url}/api/v1/events?token={bearer}")
    try:
        ws.next()
        sse.next()
        started = time.time()
        code = node.stop()
        expect(code == 0, f"exit code {code}")
        expect(time.time() - started < 15, "stopped within 15 s")
        # Both clients see their connection end.
        try:
            while True:
                ws.next(timeout=5)
        except AssertionError:
            pass
        try:
            while True:
                sse.next(timeout=5)
        except AssertionError:
            pass
    finally:
        ws.close()
        sse.close()


def test_sigterm_with_stalled_clients(db_url):
    """SIGTERM with a socket that sent nothing and a request whose body stopped coming: the first
    is closed at once, the second cancelled at --shutdown-timeout; the process exits 0. Before,
    the first held the exit for 20 s and the second until the idle timeout (75 s)."""
    node = Gateway("--redis", db_url, "--shutdown-timeout", "2", env={"JWT_SECRET": SECRET}, name="gateway-stalled")
    idle = socket.create_connection(("127.0.0.1", node.port))
    stalled = socket.create_connection(("127.0.0.1", node.port))
    try:
        stalled.sendall((f"POST /api/v1/agent/rebalance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token('slow')}\r\n"
                         "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"amount\":").encode())
        time.sleep(0.5)  # both connections are the server's before it is told to stop
        started = time.time()
        code = node.stop()
        expect(code == 0, f"exit code {code} after {time.time() - started:.1f} s")
        for connection in (idle, stalled):
            connection.settimeout(5)
            expect(connection.recv(100) == b"", "the connection was closed")
    finally:
        idle.close()
        stalled.close()


def main():
    redis_url = sys.argv[1]
    db_url = redis_url.rstrip("/") + "/7"
    client = redis.Redis.from_url(db_url)
    client.flushdb()
    runner = Runner()
    env = {"JWT_SECRET": SECRET}
    node_a = Gateway("--redis", db_url, env=env, name="gateway-a")
    node_b = Gateway("--redis", db_url, env=env, name="gateway-b")
    agent = GuideAgent(db_url)
    agent.start()
    try:
        wait_for(lambda: client.pubsub_numsub("agent:rebalance:status")[0][1] >= 2, "both nodes subscribed")
        runner.run("health on both nodes", test_health, [node_a, node_b])
        runner.run("websocket-client sees a job's lifecycle", test_websocket_client_sees_lifecycle, node_a)
        runner.run("SSE client sees a job's lifecycle, then replay", test_sse_client_sees_lifecycle, node_b)
        runner.run("error status reaches the user", test_error_status_reaches_user, node_a)
        runner.run("two nodes: events of a job created on A reach B exactly once",
                   test_cross_node_exactly_once, node_a, node_b)
        runner.run("ws:emit from another service reaches both nodes", test_emit_from_another_service,
                   node_a, node_b, db_url)
        runner.run("bad tokens and bodies are refused", test_bad_tokens_are_refused, node_b)
        runner.run("gzip and deflate request bodies create jobs; a gzip bomb gets 413", test_compressed_bodies, node_a)
        runner.run("serve, agent and token refuse settings that cannot work, naming them", test_cli_refuses_bad_settings)
        runner.run("agent raises its soft open-file limit to the hard one", test_agent_raises_open_file_limit)
        runner.run("SIGTERM with an idle socket and a stalled request body: exit 0 within the shutdown timeout",
                   test_sigterm_with_stalled_clients, db_url)
        runner.run("--redis-keep-alive keeps a quiet gateway's connection under a server timeout",
                   test_redis_keep_alive_outlasts_the_server_timeout)
        runner.run("rediss://: gateway, the guide's agent and switchboard agent over TLS; no CA, no connection",
                   test_rediss_end_to_end)
        runner.run("unix://: gateway, the guide's agent and switchboard agent on one socket URL (password, db 3)",
                   test_unix_socket_end_to_end)
        runner.run("Redis down at start: /health 503, then 200 and jobs flow", test_redis_down_at_start_then_up,
                   redis_url)
        runner.run("Redis restarted under connected clients: 503, then events flow on the same connections",
                   test_redis_restart_mid_run, redis_url)
        runner.run("Redis refusing the settings (password, database) stops serve and agent at start, naming why",
                   test_refused_redis_settings_stop_at_start)
        runner.run("SIGTERM while Redis hangs exits 0 within the command timeout", test_sigterm_while_redis_hangs)
        runner.run("SIGTERM with open WebSocket and SSE connections exits 0", test_sigterm_with_open_connections,
                   db_url)
    finally:
        agent.stop()
        codes = [node_a.stop(), node_b.stop()]
        print(f"gateways stopped with {codes}")
        if any(code not in (0, None) for code in codes):
            runner.failed += 1
            print("FAIL a gateway did not stop cleanly on SIGTERM")
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
