#!/usr/bin/env python3
"""Interop: the real python-socketio client against `switchboard serve --redis` (SPEC §3.1).

Two gateway nodes on one Redis and the original guide's Python agent (BRPOP / GET / PUBLISH
only); unmodified Socket.IO clients check default transports (polling, then the upgrade to
WebSocket), WebSocket only, the token in the auth payload, the query and the Authorization
header, a bad token refused, a job's `rebalance:*` events end to end, ping/pong, and chat
between clients on the two nodes. Usage: socketio_test.py REDIS_URL (run by run.sh)."""

import json
import queue
import sys
import time
import uuid

import requests
import socketio

from common import SECRET, Gateway, Runner, expect, token, wait_for
from guide_agent import GuideAgent

TIMEOUT = 15


def create_job(node, user, amount=1000):
    response = requests.post(f"{node.url}/api/v1/agent/rebalance", json={"amount": amount},
                             headers={"Authorization": f"Bearer {token(user)}"}, timeout=10)
    expect(response.status_code == 201, f"create: {response.status_code} {response.text}")
    return response.json()["jobId"]


def user(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


class Recorder:
    """An unmodified python-socketio client that records every event it receives."""

    def __init__(self, reconnection=False):
        self.client = socketio.Client(reconnection=reconnection, reconnection_delay=0.2, reconnection_delay_max=1)
        self.events = queue.Queue()
        self.connects = 0
        self.client.on("*", lambda event, *args: self.events.put((event, args[0] if args else None)))
        self.client.on("connect", self._connected)

    def _connected(self):
        self.connects += 1

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.client.disconnect()

    def next(self, name, timeout=TIMEOUT):
        """The data of the next event called `name` (others are skipped)."""
        deadline = time.time() + timeout
        while True:
            remaining = deadline - time.time()
            expect(remaining > 0, f"no {name} event within {timeout}s")
            try:
                event, data = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event == name:
                return data


def test_default_transports_upgrade(node):
    with Recorder() as sio:
        sio.client.connect(node.url, auth={"token": f"Bearer {token(user('ana'))}"}, wait_timeout=TIMEOUT)
        # python-engineio upgrades within connect(): the session was opened by a polling
        # handshake (which offered the upgrade) and now runs on the WebSocket.
        expect("transport=polling" in sio.client.eio.base_url, f"no polling handshake: {sio.client.eio.base_url}")
        expect(sio.client.eio.upgrades == ["websocket"], f"upgrades offered: {sio.client.eio.upgrades}")
        wait_for(lambda: sio.client.transport() == "websocket", "the upgrade to websocket")
        sio.client.emit("ping")
        expect("timestamp" in sio.next("pong"), "pong without timestamp")


def test_websocket_only_token_in_query(node):
    with Recorder() as sio:
        sio.client.connect(f"{node.url}?token={token(user('wes'))}", transports=["websocket"],
                           wait_timeout=TIMEOUT)
        expect(sio.client.transport() == "websocket", sio.client.transport())
        answer = sio.client.call("join-room", "room:ws", timeout=TIMEOUT)
        expect(answer == {"ok": True, "room": "room:ws"}, answer)
        refused = sio.client.call("join-room", "secret-room", timeout=TIMEOUT)
        expect(refused.get("ok") is False, refused)


def test_token_in_authorization_header(node):
    for transports in (None, ["websocket"]):
        with Recorder() as sio:
            sio.client.connect(node.url, headers={"Authorization": f"Bearer {token(user('hal'))}"},
                               transports=transports, wait_timeout=TIMEOUT)
            expect(sio.client.connected, "not connected")


def test_bad_token_refused(node):
    for options in ({"auth": {"token": "Bearer not.a.token"}}, {"auth": {"token": token("eve", secret="x" * 40)}},
                    {"transports": ["websocket"]}):
        sio = socketio.Client(reconnection=False)
        try:
            sio.connect(node.url, wait_timeout=TIMEOUT, **options)
        except socketio.exceptions.ConnectionError:
            continue
        sio.disconnect()
        raise AssertionError(f"connected with {options}")


def test_job_events_end_to_end(node_a, node_b):
    name = user("jo")
    with Recorder() as sio, Recorder() as polling:
        sio.client.connect(node_a.url, auth={"token": token(name)}, wait_timeout=TIMEOUT)
        wait_for(lambda: sio.client.transport() == "websocket", "the upgrade to websocket")
        polling.client.connect(node_b.url, auth={"token": token(name)}, transports=["polling"], wait_timeout=TIMEOUT)
        job_id = create_job(node_b, name)
        ids = []
        for event in ("rebalance:created", "rebalance:processing", "rebalance:done"):
            data = sio.next(event)
            expect(data["jobId"] == job_id and data["userId"] == name, data)
            ids.append(int(data["eventId"]))
            expect(polling.next(event) == data, "the polling client saw another event")
        expect(ids == sorted(set(ids)), f"event ids {ids}")
        expect(polling.client.transport() == "polling", polling.client.transport())
    # Replay: a client that saw the first event asks for the rest.
    with Recorder() as sio:
        sio.client.connect(node_b.url, auth={"token": token(name), "lastEventId": str(ids[0])},
                           transports=["websocket"], wait_timeout=TIMEOUT)
        replayed = [int(sio.next(event)["eventId"]) for event in ("rebalance:processing", "rebalance:done")]
        expect(replayed == ids[1:], f"replayed {replayed}, expected {ids[1:]}")


def test_chat_across_nodes(node_a, node_b):
    room = f"room:{uuid.uuid4().hex[:8]}"
    first_user, second_user = user("cy"), user("di")
    with Recorder() as first, Recorder() as second:
        first.client.connect(node_a.url, auth={"token": token(first_user)}, wait_timeout=TIMEOUT)
        second.client.connect(node_b.url, auth={"token": token(second_user)}, transports=["websocket"],
                              wait_timeout=TIMEOUT)
        for sio in (first, second):
            answer = sio.client.call("join-room", room, timeout=TIMEOUT)
            expect(answer.get("ok") is True, answer)
        first.client.emit("chat-message", {"roomId": room, "message": "hi from node a"})
        for sio in (first, second):
            data = sio.next("chat-message")
            expect(data["message"] == "hi from node a" and data["userId"] == first_user, data)
        second.client.emit("chat-message", {"roomId": room, "message": "and back"})
        expect(first.next("chat-message")["message"] == "and back", "no answer on node a")


def test_polling_burst(node_a, node_b):
    """A burst bigger than python-engineio takes in one polling answer (16 packets) reaches a
    polling-only client in order; before, the client dropped the connection on the big answer."""
    room = f"room:{uuid.uuid4().hex[:8]}"
    with Recorder() as polling, Recorder() as sender:
        polling.client.connect(node_a.url, auth={"token": token(user("ed"))}, transports=["polling"],
                               wait_timeout=TIMEOUT)
        sender.client.connect(node_b.url, auth={"token": token(user("fay"))}, transports=["websocket"],
                              wait_timeout=TIMEOUT)
        for sio in (polling, sender):
            expect(sio.client.call("join-room", room, timeout=TIMEOUT).get("ok") is True, "join-room")
        for n in range(100):
            sender.client.emit("chat-message", {"roomId": room, "message": n})
        received = [polling.next("chat-message")["message"] for _ in range(100)]
        expect(received == list(range(100)), f"received {received[:20]}...")
        expect(polling.client.transport() == "polling" and polling.client.connected, "the polling client left")


def test_sigterm_with_open_clients(redis_url):
    """A deploy: SIGTERM, then a new gateway on the same address. Clients with the default
    reconnection come back by themselves (no DISCONNECT packet, which would keep them away)."""
    node = Gateway("--redis", redis_url, env={"JWT_SECRET": SECRET}, name="socketio-sigterm")
    successor = None
    try:
        with Recorder(reconnection=True) as polling, Recorder(reconnection=True) as upgraded:
            polling.client.connect(node.url, auth={"token": token(user("pat"))}, transports=["polling"],
                                   wait_timeout=TIMEOUT)
            upgraded.client.connect(node.url, auth={"token": token(user("uma"))}, wait_timeout=TIMEOUT)
            started = time.time()
            code = node.stop()
            expect(code == 0, f"exit status {code}")
            # A held poll is released at once, not after the ping interval.
            expect(time.time() - started < 10, f"took {time.time() - started:.1f}s to stop")
            wait_for(lambda: not polling.client.connected and not upgraded.client.connected, "clients to notice")
            successor = Gateway("--redis", redis_url, env={"JWT_SECRET": SECRET}, name="socketio-successor",
                                port=node.port)
            # python-socketio runs the connect handler (counted) before it sets `connected`.
            wait_for(lambda: all(sio.connects == 2 and sio.client.connected for sio in (polling, upgraded)),
                     "clients to reconnect to the new gateway", timeout=TIMEOUT)
    finally:
        node.stop()
        if successor:
            successor.stop()


def test_ping_settings(redis_url):
    """--ping-interval and --ping-timeout reach the Engine.IO handshake, and a client that stops
    answering pings is dropped after them (python-socketio's client answers; a raw poll does not)."""
    node = Gateway("--redis", redis_url, "--ping-interval", "1", "--ping-timeout", "1",
                   env={"JWT_SECRET": SECRET}, name="socketio-ping")
    try:
        opened = requests.get(f"{node.url}/socket.io/?EIO=4&transport=polling", timeout=5).text
        handshake = json.loads(opened[1:])
        expect(handshake["pingInterval"] == 1000 and handshake["pingTimeout"] == 1000, handshake)
        client = socketio.Client(reconnection=False)
        client.connect(node.url, auth={"token": token("pinged")}, transports=["websocket"], wait_timeout=10)
        time.sleep(3.5)  # three pings answered by the client
        expect(client.connected, "a client that answers pings stays connected")
        client.disconnect()
        # The raw session never polls again, so never answers a ping: gone after about 2 s.
        sid = handshake["sid"]
        time.sleep(3)
        stale = requests.get(f"{node.url}/socket.io/?EIO=4&transport=polling&sid={sid}", timeout=5)
        expect(stale.status_code == 400, f"the silent session still there: {stale.status_code} {stale.text}")
    finally:
        expect(node.stop() == 0, "the gateway stops cleanly")


def main():
    redis_url = sys.argv[1]
    nodes = [Gateway("--redis", redis_url, env={"JWT_SECRET": SECRET}, name=f"socketio-{index}")
             for index in range(2)]
    agent = GuideAgent(redis_url)
    agent.start()
    runner = Runner()
    try:
        a, b = nodes
        runner.run("socket.io: default transports, polling then upgraded to websocket; ping/pong",
                   test_default_transports_upgrade, a)
        runner.run("socket.io: websocket only, token in the query; join-room acks", test_websocket_only_token_in_query, b)
        runner.run("socket.io: token in the Authorization header", test_token_in_authorization_header, a)
        runner.run("socket.io: bad or missing token refused (ConnectionError)", test_bad_token_refused, b)
        runner.run("socket.io: rebalance events end to end (upgraded and polling-only clients, guide agent), replay",
                   test_job_events_end_to_end, a, b)
        runner.run("socket.io: chat between clients on two gateway nodes", test_chat_across_nodes, a, b)
        runner.run("socket.io: a burst of 100 events reaches a polling-only client in order", test_polling_burst, a, b)
        runner.run("socket.io: --ping-interval/--ping-timeout in the handshake, silent clients dropped",
                   test_ping_settings, redis_url)
        runner.run("socket.io: SIGTERM with open polling and websocket clients exits 0; they reconnect to the next gateway",
                   test_sigterm_with_open_clients,
                   redis_url)
    finally:
        agent.stop()
        for node in nodes:
            node.stop()
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
