"""Third-party clients: websocket-client for /ws, streaming `requests` for SSE. Each reads on
a thread into a queue so tests can await an event with a deadline."""

import json
import queue
import socket
import threading

import requests
import websocket


class WSClient:
    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=10)
        self.frames = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                text = self.socket.recv()
                if not text:
                    break
                self.frames.put(json.loads(text))
        except Exception:  # noqa: BLE001 - the socket closed
            pass
        self.frames.put(None)

    def next(self, timeout=15):
        frame = self.frames.get(timeout=timeout)
        if frame is None:
            raise AssertionError("websocket closed")
        return frame

    def next_event(self, timeout=15):
        while True:
            frame = self.next(timeout)
            if ":" in frame.get("type", "") or frame.get("type") == "notification":
                return frame

    def send(self, value):
        self.socket.send(json.dumps(value))

    def close(self):
        try:
            self.socket.close()
        except Exception:  # noqa: BLE001
            pass


class SSEClient:
    def __init__(self, url, headers=None):
        self.response = requests.get(url, headers=headers or {}, stream=True, timeout=(5, 60))
        self.status = self.response.status_code
        # The socket, to end the stream at once: Response.close() waits for the reader thread,
        # which waits for the next bytes (up to a heartbeat away).
        try:
            self.socket = self.response.raw._fp.fp.raw._sock
        except AttributeError:
            self.socket = None
        self.records = queue.Queue()
        if self.status == 200:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self):
        record = {"data": []}
        try:
            for line in self.response.iter_lines(chunk_size=None, decode_unicode=True):
                if line == "":
                    if record["data"]:
                        self.records.put({"id": record.get("id"), "event": record.get("event", "message"),
                                          "data": "\n".join(record["data"])})
                    record = {"data": []}
                    continue
                if line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "data":
                    record["data"].append(value)
                elif field in ("id", "event"):
                    record[field] = value
        except Exception:  # noqa: BLE001 - the stream closed
            pass
        self.records.put(None)

    def next(self, timeout=15):
        record = self.records.get(timeout=timeout)
        if record is None:
            raise AssertionError("event stream ended")
        return record

    def close(self):
        if self.socket is not None:
            try:
                self.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.response.close()
