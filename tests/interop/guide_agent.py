"""The third-party agent of the original guide, verbatim in behaviour: BRPOP the queue,
GET the record, PUBLISH `processing` then `done` (or `error`) with the userId. It knows
nothing of Switchboard beyond the Redis names of SPEC §1."""

import json
import threading
import time

import redis

from common import iso_now


class GuideAgent(threading.Thread):
    def __init__(self, redis_url, prefix="agent", job_type="rebalance"):
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)
        self.queue = f"{prefix}:{job_type}:jobs"
        self.record_prefix = f"{prefix}:{job_type}:job:"
        self.channel = f"{prefix}:{job_type}:status"
        self.stopping = threading.Event()
        self.processed = []

    def run(self):
        while not self.stopping.is_set():
            item = self.client.brpop(self.queue, timeout=1)
            if item is None:
                continue
            job_id = item[1]
            raw = self.client.get(self.record_prefix + job_id)
            if raw is None:
                continue
            job = json.loads(raw)
            user_id = job["user"]["publicKey"]
            self.publish(job_id, "processing", user_id)
            amount = job.get("payload", {}).get("amount", 0)
            delay = job.get("payload", {}).get("delayMs")
            if isinstance(delay, (int, float)) and delay > 0:
                time.sleep(min(delay, 60000) / 1000)
            if not isinstance(amount, (int, float)) or amount <= 0:
                self.publish(job_id, "error", user_id, error="Invalid amount")
            else:
                fee = amount * 0.02
                self.publish(job_id, "done", user_id, result={
                    "success": True, "originalAmount": amount, "fee": fee,
                    "remainingAmount": amount - fee, "processedAt": iso_now(),
                })
            self.processed.append(job_id)

    def publish(self, job_id, status, user_id, **extra):
        message = {"jobId": job_id, "status": status, "userId": user_id, "timestamp": iso_now(), **extra}
        self.client.publish(self.channel, json.dumps(message))

    def stop(self):
        self.stopping.set()
        self.join(timeout=5)
