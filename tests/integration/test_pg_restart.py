#!/usr/bin/python3
"""test_pg_restart - PostgreSQL stops: health turns 503 within seconds and
requests keep answering (no hang); PostgreSQL comes back: green again within
30 s, without restarting any daemon."""

import time
import unittest

from creneau_stack import SERVICES, Stack, run_tests

ANSWER_WITHIN = 6.0  # seconds any request may take while the database is down
# a public route that reads the database (booking): an unknown practitioner
READS_DB = "/v1/practitioners/00000000-0000-4000-8000-000000000000/offerings"


class PgRestartTest(unittest.TestCase):
    def test_pg_stop_and_start(self):
        with Stack() as s:
            s.wait_healthy(timeout=30)
            names = SERVICES + ("gateway",)
            pids = {name: s.pid(name) for name in names}
            for name, pid in pids.items():
                self.assertIsNotNone(pid, name)
            normal, _, body = s.http("GET", READS_DB)
            self.assertIn(normal, (200, 404), body)

            s.pg_stop()
            stopped = time.monotonic()
            body = None
            while time.monotonic() - stopped < 15:
                t0 = time.monotonic()
                status, _, body = s.http("GET", "/v1/health", timeout=20)
                self.assertLess(time.monotonic() - t0, ANSWER_WITHIN,
                                "GET /v1/health hung with PostgreSQL down")
                if status == 503:
                    break
                time.sleep(0.2)
            self.assertEqual(status, 503, body)
            took = time.monotonic() - stopped
            print("503 %.2f s after PostgreSQL stopped" % took)
            self.assertLess(took, 10)
            # every service says its database is unreachable
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                _, _, body = s.http("GET", "/v1/health", timeout=20)
                if all(body["services"][n].get("database") != "ok"
                       for n in SERVICES):
                    break
                time.sleep(0.3)
            for name in SERVICES:
                self.assertNotEqual(body["services"][name].get("database"),
                                    "ok", body)

            # while it is down, every request answers promptly
            for _ in range(3):
                for path in ["/v1/health", READS_DB] + [
                        "/v1/health/" + n for n in SERVICES]:
                    t0 = time.monotonic()
                    status, _, body = s.http("GET", path, timeout=20)
                    self.assertLess(time.monotonic() - t0, ANSWER_WITHIN,
                                    "%s hung with PostgreSQL down" % path)
                    self.assertIn(status, (200, 503), (path, body))
                    if path in ("/v1/health", READS_DB):
                        self.assertEqual(status, 503, (path, body))

            s.pg_start()
            started = time.monotonic()
            body = s.wait_healthy(timeout=30)
            print("green %.2f s after PostgreSQL started" % (
                time.monotonic() - started))
            for name in SERVICES:
                self.assertEqual(body["services"][name]["database"], "ok",
                                 body)
            # every worker's connection comes back: no request fails
            # after health is green (booking runs CRENEAU_WORKERS of them)
            for _ in range(16):
                status, _, body = s.http("GET", READS_DB)
                self.assertEqual(status, normal, body)

            # a restart no request saw: every worker's connection is stale,
            # and still the first request on each one succeeds
            s.pg_stop()
            s.pg_start()
            time.sleep(1)
            for _ in range(16):
                status, _, body = s.http("GET", READS_DB)
                self.assertEqual(status, normal, body)
            for name, pid in pids.items():
                self.assertEqual(s.pid(name), pid,
                                 "%s was restarted" % name)


if __name__ == "__main__":
    run_tests()
