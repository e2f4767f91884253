"""The live page in a real browser: headless Chromium, driven over the DevTools protocol
(with websocket-client), loads `/` from `switchboard serve` on the memory backend, creates a
job through the page's own form, and waits for the page to show it `done`. Run once over
WebSocket and once forced onto the SSE fallback."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import requests
import websocket

from common import Gateway, Runner, expect, free_port, wait_for


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self, executable, url):
        self.profile = tempfile.mkdtemp(prefix="switchboard-chromium-")
        self.port = free_port()
        self.process = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", f"--user-data-dir={self.profile}",
             f"--remote-debugging-port={self.port}", "--remote-allow-origins=*", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        targets = wait_for(self._page_targets, "a DevTools page target", timeout=30, interval=0.1)
        self.socket = websocket.create_connection(targets[0]["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0

    def _page_targets(self):
        try:
            targets = requests.get(f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
        except (requests.RequestException, ValueError):
            return None
        pages = [t for t in targets if t.get("type") == "page" and "webSocketDebuggerUrl" in t]
        return pages or None

    def command(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path):
        data = self.command("Page.captureScreenshot", format="png")["data"]
        import base64
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))

    def close(self):
        try:
            self.socket.close()
        except Exception:  # noqa: BLE001
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def page_creates_job_and_sees_done(executable, gateway, query, transport, amount, delay):
    browser = Browser(executable, f"{gateway.url}/{query}")
    try:
        wait_for(lambda: browser.evaluate("document.body && document.body.dataset.transport") == transport,
                 f"the page to connect over {transport}", timeout=30, interval=0.1)
        # The user shows once the `connected` frame arrived, just after the transport opened.
        wait_for(lambda: browser.evaluate("document.getElementById('user').textContent") == "demo-user",
                 "the page to show the demo user", timeout=15, interval=0.05)
        browser.evaluate(f"document.getElementById('amount').value = '{amount}'")
        browser.evaluate(f"document.getElementById('delay').value = '{delay}'")
        browser.evaluate("document.getElementById('create').click()")
        job_id = wait_for(lambda: browser.evaluate(
            "(document.querySelector('li.job') || {dataset: {}}).dataset.jobId"), "the job on the page",
            timeout=30, interval=0.1)
        expect(re.fullmatch(r"\d{13}-[a-z0-9]+", job_id), f"job id {job_id!r}")
        status = wait_for(lambda: browser.evaluate(
            f"(function() {{ const li = document.querySelector('li.job[data-job-id=\"{job_id}\"]');"
            f" return li && (li.dataset.status === 'done' || li.dataset.status === 'error') ? li.dataset.status : null; }})()"),
            "the job to show done", timeout=30, interval=0.1)
        expect(status == "done", f"page shows {status}")
        timeline = browser.evaluate(
            f"Array.from(document.querySelectorAll('li.job[data-job-id=\"{job_id}\"] ol li')).map(e => e.dataset.status)")
        expect(timeline == ["created", "processing", "done"], f"timeline {timeline}")
        shot = os.environ.get("BROWSER_SCREENSHOT")
        if shot:
            browser.screenshot(shot.replace(".png", f"-{transport}.png"))
    finally:
        browser.close()


def main():
    executable = find_chromium()
    if executable is None:
        print("chromium not found (tests/interop/run.sh installs it)")
        print("browser: 0 passed, 1 failed")
        return 1
    runner = Runner()
    gateway = Gateway(name="gateway-demo", env={"JWT_SECRET": "", "REDIS_URL": "", "UPSTASH_REDIS_URL": ""})
    try:
        expect(gateway.read_banner_line("demo token:"), "demo token in the banner")
        runner.run("live page over WebSocket: create a job, see done", page_creates_job_and_sees_done,
                   executable, gateway, "", "websocket", 1500, 300)
        runner.run("live page over SSE fallback: create a job, see done", page_creates_job_and_sees_done,
                   executable, gateway, "?transport=sse", "sse", 250, 0)
    finally:
        code = gateway.stop()
        if code != 0:
            runner.failed += 1
            print(f"FAIL the demo gateway stopped with {code}")
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
