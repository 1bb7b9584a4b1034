#!/usr/bin/python3
"""test_failover - a service with two replicas: SIGKILL one in the middle of
a stream of requests and not one request fails; then the other way round
after the first came back."""

import threading
import time
import unittest

from creneau_stack import Stack, run_tests

THREADS = 8
PATH = "/v1/health/accounts"  # exactly one RPC to accounts


class Stream:
    """total GET PATH from THREADS threads; on_progress(n) is called once
    when n requests have completed."""

    def __init__(self, stack, total, kill_at, kill):
        self.stack = stack
        self.total = total
        self.kill_at = kill_at
        self.kill = kill
        self.lock = threading.Lock()
        self.next = 0
        self.done = 0
        self.failures = []
        self.slowest = 0.0
        self.killed_after = None
        self.kill_error = None
        self.dead_at = None  # monotonic time the replica was seen dead
        self.before = {}  # instance -> requests it answered, sent before
        self.after = {}   # ... and sent after the replica was dead

    def worker(self):
        while True:
            with self.lock:
                if self.next >= self.total:
                    return
                self.next += 1
            t0 = time.monotonic()
            try:
                status, _, body = self.stack.http("GET", PATH, timeout=15)
                if status != 200:
                    self.failures.append((status, body))
                else:
                    dead_at = self.dead_at
                    seen = self.after if dead_at is not None \
                        and t0 > dead_at else self.before
                    with self.lock:
                        instance = body.get("instance")
                        seen[instance] = seen.get(instance, 0) + 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failures.append(("exception", repr(e)))
            elapsed = time.monotonic() - t0
            fire = False
            with self.lock:
                self.done += 1
                self.slowest = max(self.slowest, elapsed)
                if self.done == self.kill_at:
                    fire = True
            if fire:
                try:
                    self.kill()
                    self.dead_at = time.monotonic()
                    self.killed_after = self.done
                except Exception as e:  # noqa: BLE001
                    self.kill_error = e

    def run(self):
        threads = [threading.Thread(target=self.worker)
                   for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self


class FailoverTest(unittest.TestCase):
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(replicas={"accounts": 2})
        cls.stack.up()

    @classmethod
    def tearDownClass(cls):
        if cls.stack:
            cls.stack.down()

    def check(self, stream):
        self.assertIsNone(stream.kill_error)
        self.assertIsNotNone(stream.killed_after, "the kill never happened")
        self.assertLess(stream.killed_after, stream.total,
                        "the kill came after the stream")
        self.assertEqual(stream.done, stream.total)
        self.assertEqual(stream.failures, [],
                         "%d of %d requests failed" % (len(stream.failures),
                                                       stream.total))
        print("%d requests, replica killed after %d, slowest %.3f s, "
              "answered by %s before the kill, %s after" % (
                  stream.total, stream.killed_after, stream.slowest,
                  stream.before, stream.after))

    def assert_spread(self, stream, killed, survivor):
        # both replicas served before the kill; only the survivor after
        self.assertGreater(stream.before.get(killed, 0), 0, stream.before)
        self.assertGreater(stream.before.get(survivor, 0), 0, stream.before)
        self.assertEqual(set(stream.after), {survivor}, stream.after)

    def wait_both_serving(self, timeout=20):
        """Until the gateway has reached both replicas: a replica started
        after the gateway is dialled again only after a back-off."""
        seen = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(seen) < 2:
            status, _, body = self.stack.http("GET", PATH)
            if status == 200:
                seen.add(body.get("instance"))
            else:
                time.sleep(0.05)
        self.assertEqual(seen, {"accounts-1", "accounts-2"})

    def test_1_two_replicas_serve(self):
        self.assertIsNotNone(self.stack.pid("accounts", 1))
        self.assertIsNotNone(self.stack.pid("accounts", 2))
        status, _, body = self.stack.http("GET", PATH)
        self.assertEqual(status, 200, body)
        env = self.stack.env("gateway")
        self.assertEqual(len(env["CRENEAU_ACCOUNTS_RPC"].split(",")), 2)

    def test_2_kill_replica_1_mid_stream(self):
        self.wait_both_serving()
        stream = Stream(self.stack, 2000, 400,
                        lambda: self.stack.kill_service("accounts", 1)).run()
        self.check(stream)
        self.assert_spread(stream, "accounts-1", "accounts-2")
        self.assertIsNone(self.stack.pid("accounts", 1))
        self.assertIsNotNone(self.stack.pid("accounts", 2))

    def test_3_restart_it_then_kill_replica_2(self):
        self.stack.start_service("accounts")  # starts only the dead one
        self.assertIsNotNone(self.stack.pid("accounts", 1))
        self.stack.wait_healthy(timeout=30)
        # the gateway's dialer has reconnected to replica 1 before we rely
        # on it alone
        self.wait_both_serving()
        stream = Stream(self.stack, 1000, 200,
                        lambda: self.stack.kill_service("accounts", 2)).run()
        self.check(stream)
        self.assert_spread(stream, "accounts-2", "accounts-1")
        self.assertIsNone(self.stack.pid("accounts", 2))
        status, _, body = self.stack.http("GET", "/v1/health")
        self.assertEqual(status, 200, body)


if __name__ == "__main__":
    run_tests()
