#!/usr/bin/python3
"""test_http_bad_input - hostile HTTP and hostile RPC frames change nothing.

Malformed request lines and headers over raw sockets, oversized and
non-JSON bodies, bad parameters, garbage on a service's REP socket: each
gets a clear error (or a closed connection), the daemons keep their pids,
the stack stays healthy, and 2000 bad requests do not grow the gateway's
memory beyond a bound."""

import json
import os
import re
import socket
import struct
import time
import unittest
from urllib.parse import urlparse

from creneau_stack import SERVICES, Stack, run_tests

MAX_BODY = 1024 * 1024  # the gateway's default CRENEAU_MAX_BODY
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
RSS_GROWTH_LIMIT_KB = 4096  # after warm-up, for 2000 bad requests
REQ0, REP0 = 0x30, 0x31  # nng protocol numbers


def read_all(sock, timeout=3.0):
    """Everything the peer sends until it closes or falls silent."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        pass
    return out


def statuses(raw):
    """The status codes of the HTTP responses in raw bytes (a response
    follows the previous body without a line break)."""
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def is_sanitized(pid):
    """Whether the process runs with AddressSanitizer, whose quarantine
    keeps freed memory resident (its LeakSanitizer reports leaks at exit
    instead, which Stack.down turns into a failure)."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


class BadInputTest(unittest.TestCase):
    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        cls.stack.up()
        cls.pids = {name: cls.stack.pid(name) for name in SERVICES}
        cls.pids["gateway"] = cls.stack.pid("gateway")

    @classmethod
    def tearDownClass(cls):
        if cls.stack:
            cls.stack.down()

    # ---- helpers ----

    def raw(self, data, timeout=3.0, shut=False):
        """Sends data on a fresh connection; returns what came back."""
        with socket.create_connection(("127.0.0.1", self.stack.http_port),
                                      timeout=timeout) as s:
            try:
                s.sendall(data)
                if shut:
                    s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may close before reading it all
            return read_all(s, timeout)

    def assert_error(self, status, headers, body, want_status, want_code):
        self.assertEqual(status, want_status, body)
        self.assertIsInstance(body, dict, self.stack.last_raw)
        self.assertIn("error", body)
        self.assertEqual(body["error"].get("code"), want_code, body)
        self.assertIsInstance(body["error"].get("message"), str, body)
        self.assertIn("application/json", headers.get("Content-Type", ""))
        self.assert_common_headers(headers)

    def assert_common_headers(self, headers):
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(headers.get(name), value, name)
        self.assertTrue(headers.get("X-Request-Id"))
        self.assertTrue(headers.get("Date", "").endswith("GMT"))

    def assert_still_fine(self):
        for name, pid in self.pids.items():
            self.assertEqual(self.stack.pid(name), pid,
                             "%s restarted or died" % name)
        status, _, body = self.stack.http("GET", "/v1/health", timeout=10)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.stack.sanitizer_reports(), [])

    # ---- HTTP framing ----

    def test_1_malformed_request_lines_and_headers(self):
        long_line = b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        cases = [
            b"\x00\x01\x02\xff garbage\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /v1/ping\r\n\r\n",
            b"GET /v1/ping HTTP/2.0\r\nHost: x\r\n\r\n",
            b"GET /v1/ping HTTP/9.9\r\nHost: x\r\n\r\n",
            b"GET /v1/ping HTTP/1.1\r\n\r\n",  # no Host
            b"GET /v1/ping HTTP/1.1\r\nHost x\r\n\r\n",
            b"GET /v1/ping HTTP/1.1\r\n: empty\r\n\r\n",
            # nng closes on bytes above 0x7f in a header
            b"GET /v1/ping HTTP/1.1\r\nHost: x\r\nX-Request-Id: caf\xc3\xa9"
            b"\r\n\r\n",
            b"GET /v1/ping HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 200000
            + b"\r\n\r\n",
            b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: v\r\n" % i for i in range(5000)) + b"\r\n",
            long_line,
            b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n",  # never ends
            b"\r\n\r\n\r\n",
            b"G\x00T /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /v1/pi%00ng HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET v1/ping HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: abc"
            b"\r\n\r\n",
            b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1"
            b"\r\n\r\n",
            b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: "
            b"99999999999999999999999999\r\n\r\n",
            b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Content-Length: 9\r\n\r\n{}",
            b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100"
            b"\r\nContent-Type: application/json\r\n\r\n{\"a\":",  # short
        ]
        for data in cases:
            with self.subTest(data=data[:40]):
                t0 = time.monotonic()
                answer = self.raw(data, timeout=2.0, shut=True)
                self.assertLess(time.monotonic() - t0, 10)
                for code in statuses(answer):
                    # an error or the ping that some variants still are
                    self.assertTrue(code >= 400 or code == 200,
                                    answer[:200])
        self.assert_still_fine()

    def test_2_chunked_body_is_refused_and_closed(self):
        answer = self.raw(b"POST /v1/health HTTP/1.1\r\nHost: x\r\n"
                          b"Transfer-Encoding: chunked\r\n"
                          b"Content-Type: application/json\r\n\r\n"
                          b"2\r\n{}\r\n0\r\n\r\n"
                          b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
        # one answer, then close: the chunks are never read as a request
        self.assertEqual(statuses(answer), [411], answer)
        self.assertIn(b"Connection: close", answer)

    def test_3_pipelined_requests_keep_their_order(self):
        answer = self.raw(b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"POST /v1/health HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\n"
                          b"Content-Length: 7\r\n\r\n{\"a\":1}"
                          b"GET /v1/nope HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
        self.assertEqual(statuses(answer), [200, 405, 404], answer)

    # ---- bodies ----

    def post_raw(self, body, length=None):
        """POST /v1/health with a JSON body sent in pieces (the server may
        answer and close before it has all of it); the raw answer."""
        head = (b"POST /v1/health HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n"
                % (len(body) if length is None else length))
        with socket.create_connection(("127.0.0.1", self.stack.http_port),
                                      timeout=10) as s:
            try:
                s.sendall(head)
                for i in range(0, len(body), 65536):
                    s.sendall(body[i:i + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass
            return read_all(s, timeout=5.0)

    def test_4_oversized_body_is_413_and_closed(self):
        for size in (MAX_BODY + 1, 8 * MAX_BODY):
            answer = self.post_raw(b"{" + b" " * (size - 2) + b"}")
            self.assertEqual(statuses(answer), [413], answer[:300])
            self.assertIn(b"Connection: close", answer)
            self.assertIn(b'"code":"too_large"', answer)
        # announced only: refused before a byte of the body is read
        answer = self.post_raw(b"", length=10000000000)
        self.assertEqual(statuses(answer), [413], answer)
        # exactly at the limit is read (and then the route says 405)
        status, headers, body = self.stack.http(
            "POST", "/v1/health", raw=b"{" + b" " * (MAX_BODY - 2) + b"}",
            headers={"Content-Type": "application/json"})
        self.assert_error(status, headers, body, 405, "method_not_allowed")

    def test_5_bodies_that_are_not_json(self):
        cases = [
            ({"Content-Type": "text/plain"}, b"hello", 415,
             "unsupported_media_type"),
            ({}, b"{}", 415, "unsupported_media_type"),
            ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=1",
             415, "unsupported_media_type"),
            ({"Content-Type": "application/jsonp"}, b"{}", 415,
             "unsupported_media_type"),
            ({"Content-Type": "application/json"}, b"{\"a\":", 400,
             "malformed_json"),
            ({"Content-Type": "application/json"}, b"{} {}", 400,
             "malformed_json"),
            ({"Content-Type": "application/json"}, b"{\"a\":\"\x00\"}", 400,
             "malformed_json"),
            ({"Content-Type": "application/json"}, b"\xff\xfe{}", 400,
             "malformed_json"),
            ({"Content-Type": "application/json"}, b"[" * 5000, 400,
             "malformed_json"),
            ({"Content-Type": "application/json"}, b"[1,2]", 400, "invalid"),
            ({"Content-Type": "application/json"}, b"\"text\"", 400,
             "invalid"),
            ({"Content-Type": "application/json"}, b"null", 400, "invalid"),
        ]
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for headers, data, want, code in cases:
                with self.subTest(method=method, data=data[:20]):
                    status, rh, body = self.stack.http(
                        method, "/v1/health", raw=data, headers=headers)
                    self.assert_error(status, rh, body, want, code)
        # a well-formed body reaches the route, which takes no POST
        status, rh, body = self.stack.http(
            "POST", "/v1/health", body={"deep": [[[[{"a": 1}]]]]})
        self.assert_error(status, rh, body, 405, "method_not_allowed")
        self.assertEqual(rh.get("Allow"), "GET, HEAD")
        # a body on GET is read and ignored
        status, _, body = self.stack.http("GET", "/v1/ping", raw=b"\xff\x00",
                                          headers={"Content-Type": "x/y"})
        self.assertEqual(status, 200, body)

    # ---- paths, methods, parameters, request ids ----

    def test_6_paths_methods_and_parameters(self):
        status, headers, body = self.stack.http("GET", "/v1/nope")
        self.assert_error(status, headers, body, 404, "not_found")
        status, headers, body = self.stack.http("GET", "/v1/health/")
        self.assert_error(status, headers, body, 404, "not_found")
        status, headers, body = self.stack.http("DELETE", "/v1/ping")
        self.assert_error(status, headers, body, 405, "method_not_allowed")
        self.assertEqual(headers.get("Allow"), "GET, HEAD")
        status, headers, _ = self.stack.http("OPTIONS", "/v1/ping")
        self.assertEqual(status, 204)
        self.assertEqual(headers.get("Allow"), "GET, HEAD")
        status, headers, body = self.stack.http("HEAD", "/v1/ping")
        self.assertEqual(status, 200)
        self.assertEqual(self.stack.last_raw, b"")
        # a malformed escape in the query of a routed request
        status, headers, body = self.stack.http(
            "GET", "/v1/health/accounts?x=%zz")
        self.assert_error(status, headers, body, 400, "invalid")
        status, headers, body = self.stack.http(
            "GET", "/v1/health/accounts?" + "&".join(["a=1"] * 100))
        self.assert_error(status, headers, body, 400, "invalid")
        # unknown but well-formed parameters are ignored
        status, _, body = self.stack.http(
            "GET", "/v1/health/accounts?unknown=%C3%A9&service=x")
        self.assertEqual(status, 200, body)
        self.assertEqual(body.get("service"), "accounts", body)

    def test_7_request_ids(self):
        status, headers, _ = self.stack.http(
            "GET", "/v1/health/booking",
            headers={"X-Request-Id": "client-id.1_A"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("X-Request-Id"), "client-id.1_A")
        # and is the id of the gateway's log line
        self.assertIn("client-id.1_A", self.stack.log("gateway"))
        for bad in ("has space", "x" * 65, "semi;colon", "{}", "../../etc"):
            status, headers, _ = self.stack.http(
                "GET", "/v1/ping", headers={"X-Request-Id": bad})
            self.assertEqual(status, 200)
            rid = headers.get("X-Request-Id")
            self.assertNotEqual(rid, bad)
            self.assertRegex(rid, r"^[0-9a-f-]{36}$")
        # query strings (e-mails...) never reach the log
        self.stack.http("GET", "/v1/ping?email=someone%40example.org")
        self.assertNotIn("example.org", self.stack.log("gateway"))

    # ---- a service's REP socket ----

    def rep_url(self, service):
        return urlparse(self.stack.env(service)["CRENEAU_LISTEN"]
                        .split(",")[0])

    def rep_session(self, service, frames, handshake=True, proto=REQ0):
        """Connects to the service's REP socket as a raw peer, sends the SP
        handshake (unless told not to) and frames; what came back."""
        url = self.rep_url(service)
        if url.scheme == "ipc":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(3)
            s.connect(url.path)
        else:
            s = socket.create_connection((url.hostname, url.port), timeout=3)
        try:
            if handshake:
                s.sendall(b"\x00SP\x00" + struct.pack(">H", proto)
                          + b"\x00\x00")
            for f in frames:
                s.sendall(f)
            return read_all(s, timeout=1.0)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        finally:
            s.close()

    def test_8_garbage_to_rep_sockets(self):
        for service in ("accounts", "booking"):
            with self.subTest(service=service):
                ipc = self.rep_url(service).scheme == "ipc"

                def frame(payload, length=None):
                    n = len(payload) if length is None else length
                    return ((b"\x01" if ipc else b"")
                            + struct.pack(">Q", n) + payload)

                rid = struct.pack(">I", 0x80000001)
                self.rep_session(service, [os.urandom(4096)],
                                 handshake=False)
                self.rep_session(service, [b"\x00SP\x00\x00\x10\x00\x00"],
                                 handshake=False)  # a PUB peer
                self.rep_session(service, [b"HTTP/1.1 200 OK\r\n\r\n"],
                                 handshake=False)
                self.rep_session(service, [frame(b"garbage")])
                self.rep_session(service, [frame(rid + b"x" * 10)])
                self.rep_session(service, [frame(rid + os.urandom(32 + 200))])
                self.rep_session(service, [frame(rid + b"\x00" * 32
                                                 + b"\x0a\x06Health")])
                self.rep_session(service, [frame(rid, 1 << 40)])  # oversize
                self.rep_session(service, [frame(rid + b"abc", 1000)])
                self.rep_session(service, [frame(rid + os.urandom(64))] * 50)
                # a truncated header, then close
                self.rep_session(service, [b"\x01\x00\x00"])
        self.assert_still_fine()
        for service in ("accounts", "booking"):
            status, _, body = self.stack.http("GET", "/v1/health/" + service)
            self.assertEqual(status, 200, body)

    # ---- no leak ----

    def bad_requests(self, count):
        """count bad requests of several kinds, on kept-alive connections
        where the server keeps them."""
        kinds = [
            (b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Type: "
             b"text/plain\r\nContent-Length: 5\r\n\r\nhello"),
            (b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Type: "
             b"application/json\r\nContent-Length: 6\r\n\r\n{\"a\":["),
            b"GET /v1/nope/" + b"x" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"PUT /v1/ping HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id\r\n\r\n",
            (b"PATCH /v1/health HTTP/1.1\r\nHost: x\r\nContent-Type: "
             b"application/json\r\nContent-Length: 7\r\n\r\n[1,2,3]"),
            b"GET /v1/health/accounts?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        closing = [
            (b"POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Type: "
             b"application/json\r\nContent-Length: 99999999\r\n\r\n"),
            (b"POST /v1/health HTTP/1.1\r\nHost: x\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n"),
            b"\x00\x01garbage\r\n\r\n",
        ]
        sent = 0
        while sent < count:
            batch = b"".join(kinds) + b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n" \
                b"Connection: close\r\n\r\n"
            answer = self.raw(batch, timeout=5.0)
            self.assertEqual(len(statuses(answer)), len(kinds) + 1, answer)
            sent += len(kinds)
            for data in closing:
                self.raw(data, timeout=2.0)
                sent += 1
        return sent

    def test_9_no_leak_after_2000_bad_requests(self):
        pid = self.stack.pid("gateway")
        self.bad_requests(300)  # warm up: allocator arenas, nng threads
        before = rss_kb(pid)
        sent = self.bad_requests(2000)
        after = rss_kb(pid)
        print("gateway RSS %d kB -> %d kB after %d bad requests"
              % (before, after, sent))
        if not is_sanitized(pid):
            self.assertLess(after - before, RSS_GROWTH_LIMIT_KB,
                            "gateway grew %d kB" % (after - before))
        self.assert_still_fine()


if __name__ == "__main__":
    run_tests()
