"""The programs in Examples/ work as their headers say: AgentExample (a handler of its own on
Redis) completes the jobs that ClientExample creates through `switchboard serve --redis`, and
the client prints each event of its job until the final one. They run on a Redis database of
their own (db 3), so no other test's agent takes their jobs."""

import os
import signal
import subprocess
import sys

from common import ROOT, SECRET, Gateway, Runner, expect, token

BUILD = os.path.join(ROOT, ".build", "debug")


def run_client(gateway, bearer, amount):
    out = subprocess.run([os.path.join(BUILD, "ClientExample"), gateway.url, bearer, str(amount)],
                         capture_output=True, text=True, timeout=60)
    expect(out.returncode == 0, f"ClientExample exited {out.returncode}: {out.stderr[-2000:]}")
    return out.stdout.splitlines()


def test_agent_and_client_examples(redis_url):
    url = redis_url.rstrip("/") + "/3"
    gateway = Gateway("--redis", url, "--jwt-secret", SECRET, name="examples-gateway")
    agent = subprocess.Popen([os.path.join(BUILD, "AgentExample"), url],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        bearer = token("example-user")
        lines = run_client(gateway, bearer, 250)
        kinds = [line.split(" ")[0] for line in lines if line.startswith("rebalance:")]
        expect(kinds == ["rebalance:created", "rebalance:processing", "rebalance:done"], f"events: {lines}")
        expect('"quote":230' in lines[-1] and '"currency":"EUR"' in lines[-1], f"the handler's result: {lines[-1]}")
        # Bad input: the handler's permanent failure ends the job in error at once.
        lines = run_client(gateway, bearer, -5)
        expect(lines[-1].startswith("rebalance:error") and '"error":"Invalid amount"' in lines[-1], f"events: {lines}")
        # A refused token (a demo restarted since): one line saying so, exit 1, no crash report.
        out = subprocess.run([os.path.join(BUILD, "ClientExample"), gateway.url, "not-a-token"],
                             capture_output=True, text=True, timeout=60)
        expect(out.returncode == 1 and out.stderr.startswith("error: ") and "token" in out.stderr
               and out.stderr.count("\n") == 1, f"ClientExample with a bad token: {out.returncode} {out.stderr[-2000:]}")
        # A token pasted with its header prefix works as the bare token.
        lines = run_client(gateway, "Bearer " + bearer, 250)
        expect(lines[-1].startswith("rebalance:done"), f"events with 'Bearer <token>': {lines}")
        # An amount that is not a number: a usage line and exit 2, not a job for a default amount.
        out = subprocess.run([os.path.join(BUILD, "ClientExample"), gateway.url, bearer, "abc"],
                             capture_output=True, text=True, timeout=60)
        expect(out.returncode == 2 and out.stderr.startswith("usage: ") and "'abc'" in out.stderr
               and out.stderr.count("\n") == 1 and "created job" not in out.stdout,
               f"ClientExample with amount abc: {out.returncode} {out.stdout[-2000:]} {out.stderr[-2000:]}")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            _, errors = agent.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
            _, errors = agent.communicate()
        gateway.stop()
    expect(agent.returncode == 0, f"AgentExample exited {agent.returncode} on SIGTERM: {errors[-2000:]}")
    expect("agent stopped" in errors, f"the agent's log: {errors[-2000:]}")


def test_agent_example_refuses_a_bad_url():
    # Not a redis:// URL: one line saying so and exit 1, not a crash report.
    for bad in ["127.0.0.1:6401", "garbage", "redis://:hunter2/TOPSECRET@127.0.0.1:6401"]:
        out = subprocess.run([os.path.join(BUILD, "AgentExample"), bad], capture_output=True, text=True, timeout=60)
        expect(out.returncode == 1 and out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
               and "Fatal error" not in out.stderr, f"AgentExample {bad}: {out.returncode} {out.stderr[-2000:]}")
    expect("hunter2" not in out.stderr and "TOPSECRET" not in out.stderr and "%2F" in out.stderr,
           f"the unencoded password's error: {out.stderr}")


def main():
    runner = Runner()
    runner.run("examples: AgentExample completes what ClientExample creates and follows", test_agent_and_client_examples,
               sys.argv[1])
    runner.run("examples: AgentExample with a malformed Redis URL says so in a line", test_agent_example_refuses_a_bad_url)
    return runner.finish()


if __name__ == "__main__":
    sys.exit(main())
