"""creneau_bench - running the load tools of the benchmarks (tests/bench/)
and reading their figures: wrk against an HTTP server, pgbench against the
stack's PostgreSQL, and a daemon's resident memory from /proc.

Every tool runs in the foreground with a time limit and is gone when its
function returns; a run that yields no figure raises RuntimeError with the
tool's output. Latencies are in milliseconds, NaN where the tool printed
none."""

import collections
import os
import re
import shutil
import subprocess
import tempfile

from creneau_stack import PG_BIN

WRK = shutil.which("wrk") or "/usr/bin/wrk"
PGBENCH = os.path.join(PG_BIN, "pgbench")

WrkResult = collections.namedtuple(
    "WrkResult", "rps p50 p99 non2xx total errors")
WrkResult.__doc__ = """One wrk run: requests/s, p50 and p99 latency (ms),
non-2xx/3xx answers, requests made, wrk's "Socket errors:" line or ""."""

PgbenchResult = collections.namedtuple("PgbenchResult", "tps avg p50 p99")
PgbenchResult.__doc__ = """One pgbench run: transactions/s, average latency
(ms) and, when asked for, p50 and p99 latency (ms; otherwise NaN)."""


def to_ms(text):
    """wrk's "812.00us", "1.23ms" or "2.01s" in milliseconds; NaN if text is
    empty or None or not such a figure."""
    m = re.match(r"([\d.]+)(us|ms|s)", text or "")
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" \
        else value


def percentile(values, p):
    """The p-th percentile (nearest rank) of values; NaN if there are none."""
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values))) - 1))
    return values[k]


def wrk(url, connections, threads, seconds, script=None, headers=(),
        timeout=None):
    """Runs `wrk --latency` on url for `seconds` with `connections` and
    `threads`, the Lua `script` if any, each "Name: value" of `headers` and
    the per-request `timeout` (wrk's syntax, e.g. "10s") if any: a
    WrkResult."""
    args = [WRK, "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
            "--latency"]
    if timeout:
        args += ["--timeout", timeout]
    if script:
        args += ["-s", script]
    for header in headers:
        args += ["-H", header]
    proc = subprocess.run(args + [url], capture_output=True, text=True,
                          timeout=seconds + 120)
    out = proc.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise RuntimeError("wrk failed on %s:\n%s%s" % (url, out,
                                                          proc.stderr))
    p50 = re.search(r"^\s+50(?:\.0+)?%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99(?:\.0+)?%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return WrkResult(float(rps.group(1)), to_ms(p50 and p50.group(1)),
                     to_ms(p99 and p99.group(1)),
                     int(bad.group(1)) if bad else 0,
                     int(total.group(1)) if total else 0,
                     errors.group(0) if errors else "")


def pgbench(conninfo, script, clients, threads, seconds, variables=None,
            latencies=False):
    """Runs pgbench (prepared statements, no vacuum) with the script file
    `script` against the libpq `conninfo`, `clients` connections on
    min(clients, threads) threads, for `seconds`, with the -D `variables`
    ({name: value}); with `latencies`, every transaction's latency is logged
    (in a temporary directory, removed) for p50 and p99: a PgbenchResult."""
    tmp = tempfile.mkdtemp(prefix="creneau-pgbench-")
    try:
        args = [PGBENCH, "-n", "-M", "prepared", "-f", script,
                "-c", str(clients), "-j", str(min(clients, threads)),
                "-T", str(seconds)]
        for name, value in (variables or {}).items():
            args += ["-D", "%s=%s" % (name, value)]
        if latencies:
            args += ["-l", "--log-prefix", os.path.join(tmp, "log")]
        proc = subprocess.run(args + [conninfo], capture_output=True,
                              text=True, cwd=tmp, timeout=seconds + 120)
        tps = re.search(r"tps = ([\d.]+)", proc.stdout)
        if proc.returncode or not tps:
            raise RuntimeError("pgbench failed:\n%s%s" % (proc.stdout,
                                                          proc.stderr))
        avg = re.search(r"latency average = ([\d.]+) ms", proc.stdout)
        times = []
        for name in os.listdir(tmp):
            if name.startswith("log"):
                with open(os.path.join(tmp, name)) as f:
                    times += [int(line.split()[2]) / 1000.0 for line in f]
        return PgbenchResult(float(tps.group(1)),
                             float(avg.group(1)) if avg else float("nan"),
                             percentile(times, 50), percentile(times, 99))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rss_kb(pid, field="VmRSS"):
    """A memory figure of /proc/<pid>/status in kB (VmRSS, VmHWM...); None
    if the process or the field is not there (or pid is None)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return None
