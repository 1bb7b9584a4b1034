#!/usr/bin/python3
"""test_health - every service answers through the gateway, and /v1/health
follows a service that stops and comes back; creneauctl agrees."""

import json
import time
import unittest

from creneau_stack import SERVICES, Stack, run_tests


def poll(fn, timeout, interval=0.1):
    """Calls fn() until it returns a true value or timeout; returns the last
    value."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


class HealthTest(unittest.TestCase):
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        cls.stack.up()

    @classmethod
    def tearDownClass(cls):
        if cls.stack:
            cls.stack.down()

    def health(self):
        status, headers, body = self.stack.http("GET", "/v1/health",
                                                timeout=10)
        return status, body

    def assert_all_ok(self, body):
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("status"), "ok", body)
        services = body.get("services")
        self.assertIsInstance(services, dict, body)
        for name in SERVICES:
            self.assertIn(name, services, body)
            self.assertEqual(services[name].get("status"), "ok", body)
            self.assertEqual(services[name].get("database"), "ok", body)

    def test_1_all_healthy(self):
        status, headers, body = self.stack.http("GET", "/v1/health")
        self.assertEqual(status, 200, body)
        self.assertIn("application/json", headers.get("Content-Type", ""))
        self.assert_all_ok(body)
        for name in SERVICES:
            self.assertEqual(body["services"][name].get("instance"),
                             name + "-1", body)

    def test_2_each_service_answers_through_the_gateway(self):
        for name in SERVICES:
            with self.subTest(service=name):
                status, _, body = self.stack.http("GET",
                                                  "/v1/health/" + name)
                self.assertEqual(status, 200, body)
                self.assertIn(name, json.dumps(body))

    def test_3_a_stopped_service_is_named_then_recovers(self):
        for name in SERVICES:
            with self.subTest(service=name):
                self.stack.stop_service(name)
                self.assertIsNone(self.stack.pid(name))
                started = time.monotonic()
                answer = poll(lambda: (lambda r: r if r[0] == 503 else None)(
                    self.health()), timeout=10)
                self.assertTrue(answer, "still 200 10 s after %s stopped"
                                % name)
                self.assertLess(time.monotonic() - started, 10)
                _, body = answer
                self.assertEqual(body["services"][name]["status"], "down",
                                 body)
                self.assertIn(name, json.dumps(body.get("error")), body)
                for other in SERVICES:
                    if other != name:
                        self.assertEqual(
                            body["services"][other]["status"], "ok", body)
                # its own route answers (an error), and does not hang
                t0 = time.monotonic()
                status, _, rbody = self.stack.http("GET",
                                                   "/v1/health/" + name)
                self.assertGreaterEqual(status, 500, rbody)
                self.assertLess(time.monotonic() - t0, 8)

                self.stack.start_service(name)
                body = self.stack.wait_healthy(timeout=30)
                self.assert_all_ok(body)

    def test_4_creneauctl_health(self):
        rc, out, err = self.stack.ctl("health")
        self.assertEqual(rc, 0, out + err)
        lines = out.splitlines()
        for name in SERVICES:
            line = [l for l in lines if l.split()[:1] == [name]]
            self.assertEqual(len(line), 1, out)
            self.assertIn("ok", line[0].split()[1], out)

    def test_5_creneauctl_names_a_stopped_service(self):
        self.stack.stop_service("booking")
        try:
            rc, out, err = self.stack.ctl("health")
            self.assertNotEqual(rc, 0, out + err)
            line = [l for l in out.splitlines()
                    if l.split()[:1] == ["booking"]]
            self.assertEqual(len(line), 1, out)
            self.assertIn("down", line[0], out)
        finally:
            self.stack.start_service("booking")
            self.stack.wait_healthy(timeout=30)
        rc, out, err = self.stack.ctl("health")
        self.assertEqual(rc, 0, out + err)


if __name__ == "__main__":
    run_tests()
