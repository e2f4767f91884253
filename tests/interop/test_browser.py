"""The live page in a real browser: headless Chromium, driven over the DevTools protocol
(with websocket-client), loads `/` from `switchboard serve` on the memory backend, creates a
job through the page's own form, and waits for the page to show it `done`. Run once over
WebSocket and once forced onto the SSE fallback. With a Redis URL (argument 1), also: the
browser's own EventSource reconnects across a restart of its gateway (`Last-Event-ID`) and
gets every event of jobs that ran meanwhile exactly once, in order."""

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

from common import SECRET, Gateway, Runner, expect, free_port, token, wait_for


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


def page_names_a_refused_token(executable, gateway):
    """A token signed with another secret (a demo gateway restarted since, say): neither
    transport opens, and the page says why rather than just "disconnected"."""
    stale = token("demo-user", secret="another-secret-of-at-least-32-bytes!!")
    browser = Browser(executable, f"{gateway.url}/?token={stale}")
    try:
        message = wait_for(lambda: browser.evaluate(
            "(function() { const e = document.getElementById('log');"
            " return e && e.textContent.startsWith('Token refused') ? e.textContent : null; })()"),
            "the page to explain the refusal", timeout=30, interval=0.1)
        expect("signature does not match" in message, f"page says {message!r}")
        expect(browser.evaluate("document.body.dataset.transport") == "disconnected", "no transport is open")
    finally:
        browser.close()


def no_demo_token_with_given_secret():
    gateway = Gateway(name="gateway-demo-secret", env={"JWT_SECRET": SECRET, "REDIS_URL": "", "UPSTASH_REDIS_URL": ""})
    try:
        response = requests.get(f"{gateway.url}/api/v1/demo-token", timeout=5)
        expect(response.status_code == 404, f"demo-token: {response.status_code} {response.text}")
        expect(gateway.read_banner_line("demo token:"), "the operator's console still gets a token")
    finally:
        expect(gateway.stop() == 0, "the gateway stops cleanly")


def event_source_survives_gateway_restart(executable, redis_url):
    """Jobs run on node B (agent in process) while the browser's EventSource on node A sees
    A stopped (SIGTERM) and started again on the same port: the browser reconnects by itself
    after the stream's `retry`, presenting the last id it got, and the replay fills the gap."""
    env = {"JWT_SECRET": SECRET}
    node_b = Gateway("--redis", redis_url, "--agent", env=env, name="gateway-es-b")
    node_a = Gateway("--redis", redis_url, env=env, name="gateway-es-a")
    browser = None
    try:
        browser = Browser(executable, f"{node_a.url}/api/v1/stats")
        wait_for(lambda: browser.evaluate("location.href.startsWith('http') && document.readyState") == "complete",
                 "a page of node A", timeout=30, interval=0.1)
        user_token = token("es-restart")
        browser.evaluate(
            "window.seen = []; window.opens = 0;"
            f"window.stream = new EventSource('/api/v1/events?token={user_token}');"
            "stream.onopen = () => { opens++; };"
            "for (const name of ['rebalance:created', 'rebalance:processing', 'rebalance:done', 'rebalance:error'])"
            "  stream.addEventListener(name, e => seen.push([name.split(':')[1], e.lastEventId, JSON.parse(e.data).jobId]));"
            "true")
        wait_for(lambda: browser.evaluate("opens") == 1, "the EventSource to open", timeout=15, interval=0.05)
        headers = {"Authorization": f"Bearer {user_token}"}
        jobs = []
        start = time.time()
        stopped = restarted = False
        while time.time() - start < 7:
            response = requests.post(f"{node_b.url}/api/v1/agent/rebalance", json={"amount": 100, "delayMs": 300},
                                     headers=headers, timeout=10)
            expect(response.status_code == 201, f"create: {response.status_code} {response.text}")
            jobs.append(response.json()["jobId"])
            if not stopped and time.time() - start > 2:
                expect(node_a.stop() == 0, "node A exits 0 on SIGTERM")
                stopped = True
            if stopped and not restarted and time.time() - start > 4:
                node_a = Gateway("--redis", redis_url, env=env, name="gateway-es-a2", port=node_a.port)
                restarted = True
            time.sleep(0.1)
        expect(restarted, "node A was restarted")

        def all_done():
            seen = browser.evaluate("seen")
            finished = {job for status, _, job in seen if status == "done"}
            return seen if all(job in finished for job in jobs) else None
        seen = wait_for(all_done, "every job's done in the browser", timeout=30, interval=0.2)
        timelines = {}
        for status, _, job in seen:
            timelines.setdefault(job, []).append(status)
        wrong = {job: t for job, t in timelines.items() if t != ["created", "processing", "done"]}
        expect(not wrong, f"{len(wrong)} of {len(jobs)} jobs with another timeline, e.g. {list(wrong.items())[:3]}")
        ids = [int(event_id) for _, event_id, _ in seen]
        expect(ids == sorted(ids) and len(set(ids)) == len(ids), "event ids increase, none twice")
        expect(browser.evaluate("opens") >= 2, "the EventSource reconnected")
    finally:
        if browser:
            browser.close()
        node_a.stop()
        node_b.stop()


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
        runner.run("live page with a token of another secret: says why it is refused", page_names_a_refused_token,
                   executable, gateway)
        runner.run("memory gateway with a secret of the operator's: no demo token for anyone", no_demo_token_with_given_secret)
        typed = Gateway("--type", "swap", name="gateway-demo-swap",
                        env={"JWT_SECRET": "", "REDIS_URL": "", "UPSTASH_REDIS_URL": ""})
        try:
            runner.run("live page of a gateway with --type swap, over SSE: create a swap job, see done",
                       page_creates_job_and_sees_done, executable, typed, "?transport=sse", "sse", 300, 0)
        finally:
            if typed.stop() != 0:
                runner.failed += 1
                print("FAIL the swap demo gateway did not stop cleanly")
        if len(sys.argv) > 1:
            runner.run("EventSource across a restart of its gateway: every event once, in order",
                       event_source_survives_gateway_restart, executable, sys.argv[1])
    finally:
        code = gateway.stop()
        if code != 0:
            runner.failed += 1
            print(f"FAIL the demo gateway stopped with {code}")
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
