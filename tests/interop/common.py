"""Shared helpers for the interop tests: free ports, processes started and stopped by PID,
tokens signed with the gateway's own `switchboard token`, and a tiny test runner that prints
the closing line `N passed, N failed`."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("SWITCHBOARD_BIN", os.path.join(ROOT, ".build", "debug", "switchboard"))
SECRET = "interop-secret-0123456789abcdefghijklmnop"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(user, secret=SECRET, ttl="1h"):
    out = subprocess.run([BINARY, "token", "--user", user, "--secret", secret, "--ttl", ttl],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Gateway:
    """One `switchboard serve` process on a free loopback port."""

    def __init__(self, *args, env=None, name="gateway", port=None):
        self.port = port or free_port()
        self.name = name
        self.log_path = os.path.join(os.environ.get("INTEROP_LOG_DIR", "/tmp"), f"{name}-{self.port}.log")
        self.log = open(self.log_path, "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.process = subprocess.Popen([BINARY, "serve", "--port", str(self.port), *args],
                                        stdout=subprocess.PIPE, stderr=self.log, text=True, env=full_env)
        self.banner = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.banner.append(line.rstrip("\n"))
            if line.startswith("Switchboard gateway listening"):
                # Read the rest of the banner (the demo prints a token after it).
                break
        else:
            self.stop()
            raise RuntimeError(f"{name} did not start; see {self.log_path}")
        if not self.banner:
            self.stop()
            raise RuntimeError(f"{name} exited at start; see {self.log_path}: {open(self.log_path).read()[-2000:]}")
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"

    def read_banner_line(self, prefix, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.banner:
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
            line = self.process.stdout.readline()
            if not line:
                break
            self.banner.append(line.rstrip("\n"))
        raise RuntimeError(f"no '{prefix}' line in the banner of {self.name}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


class Runner:
    """Runs test functions, reports each, and ends with `N passed, N failed`."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, function, *args):
        started = time.time()
        try:
            function(*args)
        except Exception:  # noqa: BLE001 - report every failure and go on
            self.failed += 1
            print(f"FAIL {name} ({time.time() - started:.2f}s)")
            traceback.print_exc()
        else:
            self.passed += 1
            print(f"ok   {name} ({time.time() - started:.2f}s)")
        sys.stdout.flush()

    def finish(self):
        print(f"interop: {self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def wait_for(predicate, what, timeout=15.0, interval=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def iso_now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"


def dumps(value):
    return json.dumps(value, separators=(",", ":"))
