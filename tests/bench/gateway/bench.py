#!/usr/bin/python3
"""bench.py - the gateway beside nginx under wrk, on 127.0.0.1 (run through
tests/bench/gateway_bench.sh, which documents the settings).

Starts a creneau stack (tests/lib/creneau_stack.py), an nginx of our own
(temporary prefix and configuration, a free port) that answers the same
routes with fixed responses of the same size and headers, and nng_ping.c
(nng's HTTP server alone with the same answer: the ceiling of anything built
on it). The no-RPC route is measured in BENCH_ROUNDS interleaved rounds
(nginx, nng alone, gateway) and the medians are kept, so that load from
elsewhere on the machine hits all three alike. Prints requests/s, p50 and
p99 and the ratio to nginx, and the idle RSS of every daemon. Everything it
starts is stopped on exit."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import creneau_bench
from creneau_bench import rss_kb
from creneau_stack import SERVICES, Stack, free_port

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "notice")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SOURCE_DIR = os.environ["CRENEAU_SOURCE_DIR"]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
RSS_TARGET_KB = 16 * 1024
RATIO_TARGET = 0.80

# the gateway's headers, so that nginx sends as many bytes
HEADERS = [
    ("X-Request-Id", "00000000-0000-4000-8000-000000000000"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    ("Cache-Control", "no-store"),
]

NGINX_CONF = """
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
{headers}
        location = /v1/ping {{
            default_type application/json;
            return 200 '{{"status":"ok"}}';
        }}
        location = /v1/openapi.json {{
            default_type application/json;
            alias {prefix}/openapi.json;
        }}
    }}
}}
"""


def answers(url, proc, seconds=10):
    """Whether GET url answers within `seconds` (polled every 0.1 s); False
    as soon as proc (the Popen serving it) has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.1)
    return False


class LocalServer:
    """A server of this benchmark's own: its process (self.proc, once
    started) on 127.0.0.1:self.port, a free port, and its temporary
    directory self.dir. stop() sends it STOP_SIGNAL, kills it if it has not
    exited 10 s later, and removes the directory."""

    STOP_SIGNAL = signal.SIGTERM

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(self.STOP_SIGNAL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class NngPing(LocalServer):
    """nng_ping.c, compiled into a temporary directory; None if no cc."""

    def __init__(self):
        super().__init__("creneau-bench-nng-")

    def start(self):
        exe = os.path.join(self.dir, "nng_ping")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "nng_ping.c")
        cc = subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-o",
                             exe, src, "-lnng"], capture_output=True,
                            text=True)
        if cc.returncode:
            print("(nng_ping.c not built: %s)" % cc.stderr.strip())
            return False
        self.proc = subprocess.Popen([exe, str(self.port)])
        return answers(self.url + "/v1/ping", self.proc)


def median_run(results):
    """The run with the median requests/s."""
    return sorted(results, key=lambda r: r[0])[len(results) // 2]


class Nginx(LocalServer):
    """nginx in a temporary prefix on a free port; stopped by pid."""

    STOP_SIGNAL = signal.SIGQUIT

    def __init__(self):
        super().__init__("creneau-bench-nginx-")
        self.prefix = self.dir
        os.chmod(self.prefix, 0o755)

    def start(self):
        shutil.copy(os.path.join(SOURCE_DIR, "docs", "openapi.json"),
                    os.path.join(self.prefix, "openapi.json"))
        os.chmod(os.path.join(self.prefix, "openapi.json"), 0o644)
        headers = "\n".join('        add_header %s "%s" always;' % (k, v)
                            for k, v in HEADERS)
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(prefix=self.prefix, port=self.port,
                                      headers=headers,
                                      workers=os.cpu_count() or 1))
        self.proc = subprocess.Popen(
            [NGINX, "-p", self.prefix, "-c", conf, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if answers(self.url + "/v1/ping", self.proc):
            return
        if self.proc.poll() is not None:
            raise RuntimeError("nginx did not start: %s"
                               % self.proc.stderr.read().decode())
        raise RuntimeError("nginx did not answer")


def wrk(url, seconds=SECONDS):
    """creneau_bench.wrk with this benchmark's settings: a WrkResult."""
    return creneau_bench.wrk(url, CONNECTIONS, THREADS, seconds,
                             timeout="5s")


def row(name, result, ratio=None):
    """One table row of a creneau_bench.WrkResult."""
    line = "%-34s %10.0f %9.2f %9.2f" % (name, result.rps, result.p50,
                                         result.p99)
    if ratio is not None:
        line += "   %5.0f%%" % (ratio * 100)
    if result.non2xx:
        line += "   (%d non-2xx!)" % result.non2xx
    if result.errors:
        line += "   (%s)" % result.errors
    print(line, flush=True)


def main():
    nginx = Nginx()
    bare = NngPing()
    stack = Stack(log_level=LOG_LEVEL)
    try:
        print("starting the stack (log level %s), nginx and nng_ping..."
              % LOG_LEVEL, flush=True)
        stack.up()
        stack.wait_healthy(timeout=60)
        nginx.start()
        have_bare = bare.start()
        time.sleep(1)
        idle = {"gateway": rss_kb(stack.pid("gateway"))}
        for name in SERVICES:
            idle[name] = rss_kb(stack.pid(name))
        nginx_rss = rss_kb(nginx.proc.pid)

        print("\nwrk -t%d -c%d -d%ds on 127.0.0.1, %d cores; GET /v1/ping: "
              "median of %d interleaved rounds" % (
                  THREADS, CONNECTIONS, SECONDS, os.cpu_count() or 1, ROUNDS))
        print("%-34s %10s %9s %9s   %s" % ("route", "req/s", "p50 ms",
                                          "p99 ms", "vs nginx"))
        for url in (nginx.url, bare.url if have_bare else None, stack.url):
            if url:
                wrk(url + "/v1/ping", seconds=2)  # warm-up
        runs = {"nginx": [], "bare": [], "gateway": []}
        for _ in range(ROUNDS):
            runs["nginx"].append(wrk(nginx.url + "/v1/ping"))
            if have_bare:
                runs["bare"].append(wrk(bare.url + "/v1/ping"))
            runs["gateway"].append(wrk(stack.url + "/v1/ping"))
        ng_ping = median_run(runs["nginx"])
        row("nginx  GET /v1/ping (fixed)", ng_ping)
        if have_bare:
            bare_ping = median_run(runs["bare"])
            row("nng alone GET /v1/ping (ceiling)", bare_ping,
                bare_ping[0] / ng_ping[0])
        gw_ping = median_run(runs["gateway"])
        ping_ratio = gw_ping[0] / ng_ping[0]
        row("gateway GET /v1/ping (no RPC)", gw_ping, ping_ratio)
        ng_doc = wrk(nginx.url + "/v1/openapi.json")
        row("nginx  GET /v1/openapi.json (file)", ng_doc)
        gw_doc = wrk(stack.url + "/v1/openapi.json")
        row("gateway GET /v1/openapi.json", gw_doc, gw_doc[0] / ng_doc[0])
        gw_one = wrk(stack.url + "/v1/health/accounts")
        row("gateway GET /v1/health/accounts", gw_one, gw_one[0] / ng_ping[0])
        print("%-34s %s" % ("", "(one RPC: HTTP -> REQ -> accounts REP, "
                            "which pings PostgreSQL -> HTTP)"))
        gw_five = wrk(stack.url + "/v1/health")
        row("gateway GET /v1/health (5 RPCs)", gw_five,
            gw_five[0] / ng_ping[0])

        print("\nno-RPC route at %.0f%% of nginx (target >= %.0f%%): %s" % (
            ping_ratio * 100, RATIO_TARGET * 100,
            "met" if ping_ratio >= RATIO_TARGET else "NOT met"))
        if have_bare:
            print("gateway at %.0f%% of nng's server alone (what routing, "
                  "request ids, metrics and logging cost)"
                  % (gw_ping[0] / bare_ping[0] * 100))
        print("\nidle RSS (before the load; target < %d MB each):"
              % (RSS_TARGET_KB // 1024))
        for name, kb in idle.items():
            if kb is None:
                print("  %-16s   (not running)" % name)
                continue
            print("  %-16s %7.1f MB  %s" % (
                name, kb / 1024, "" if kb < RSS_TARGET_KB else "over target"))
        if nginx_rss:
            print("  %-16s %7.1f MB  (master only, for reference)" % (
                "nginx", nginx_rss / 1024))
        after = rss_kb(stack.pid("gateway"))
        if after:
            print("  gateway after the load: %.1f MB" % (after / 1024))
        return 0
    finally:
        bare.stop()
        nginx.stop()
        stack.down()


if __name__ == "__main__":
    sys.exit(main())
