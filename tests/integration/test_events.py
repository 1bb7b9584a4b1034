"""test_events - no event is ever lost, and none is applied twice.

Real processes on real sockets against a real PostgreSQL: two replicas of a
publisher (tests/bin/events_pub serve: FetchEvents over RPC and the outbox
relay), an emitter (events_pub emit) and a subscriber (tests/bin/events_sub)
that records every event it applies in its own schema, with the sequence as
primary key. The subscriber starts after 10 000 events were emitted, then is
killed (-9) and restarted, and stopped (SIGSTOP) long enough for its socket
buffers to overflow, while more events are emitted; one publisher replica is
killed too. At the end every sequence 1..N must be applied exactly once, in
order, with the payload the publisher wrote.
"""

import glob
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("CRENEAU_BUILD_DIR", "build")
BIN = os.path.join(BUILD_DIR, "tests", "bin")
PUBLISHER = "pubsvc"
FIRST_BATCH = 10000
SECOND_BATCH = 10000
BURST = 3000       # events emitted while the subscriber is stopped ...
BURST_PAD = 4000   # ... of this many bytes each: more than socket buffers


def free_port():
    """A free TCP port on 127.0.0.1, below the ephemeral range."""
    for _ in range(200):
        port = random.randint(20000, 32767)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


class ScratchPostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1 (trust auth, user
    postgres), in a temporary directory removed by stop(). Run as the
    postgres user when the test runs as root (PostgreSQL refuses root)."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                      key=lambda p: int(p.split("/")[4]))
        if not bins:
            raise RuntimeError("PostgreSQL server binaries not found")
        self.bindir = os.path.dirname(bins[-1])
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="creneau-pg-")
        self.data = os.path.join(self.dir, "data")
        self.proc = None
        self.user = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.user = "postgres"
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.conninfo = ("host=127.0.0.1 port=%d dbname=postgres "
                         "user=postgres" % self.port)

    def _run(self, args, **kw):
        return subprocess.run(args, user=self.user, check=True,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, **kw)

    def start(self):
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data,
                   "-U", "postgres", "--auth=trust", "-E", "UTF8",
                   "--no-sync"])
        self.log = open(os.path.join(self.dir, "postgres.log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(self.bindir, "postgres"), "-D", self.data,
             "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", "unix_socket_directories=" + self.dir,
             "-c", "fsync=off", "-c", "max_connections=100"],
            user=self.user, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: " + self.log_text())
            ok = subprocess.run(
                [os.path.join(self.bindir, "pg_isready"), "-q", "-h",
                 "127.0.0.1", "-p", str(self.port)]).returncode == 0
            if ok:
                return self
            time.sleep(0.2)
        raise RuntimeError("postgres did not start")

    def log_text(self):
        with open(os.path.join(self.dir, "postgres.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def psql(self, sql):
        """Runs sql; returns stdout (unaligned, tuples only)."""
        r = subprocess.run(
            [os.path.join(self.bindir, "psql"), "-X", "-At", "-v",
             "ON_ERROR_STOP=1", "-d", self.conninfo, "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode:
            raise RuntimeError("psql failed: %s" % r.stderr.decode())
        return r.stdout.decode().strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Proc:
    """A helper program whose stderr goes to a file; stopped by pid."""

    def __init__(self, name, args, logdir):
        self.name = name
        self.args = args
        self.logpath = os.path.join(logdir, name + ".log")
        self.p = None

    def start(self, wait_ready=True):
        self.close_pipe()
        log = open(self.logpath, "ab")
        self.p = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                  stderr=log)
        log.close()
        if wait_ready:
            line = self.p.stdout.readline().decode().strip()
            if line != "ready":
                raise AssertionError("%s did not start:\n%s"
                                     % (self.name, self.log_tail()))
        return self

    def close_pipe(self):
        if self.p and self.p.stdout:
            self.p.stdout.close()
            self.p.stdout = None

    def signal(self, sig):
        if self.p and self.p.poll() is None:
            os.kill(self.p.pid, sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.p.wait()
        self.close_pipe()

    def stop(self):
        if not self.p:
            return
        if self.p.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.close_pipe()

    def log_text(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])


class EventsNeverLost(unittest.TestCase):
    def setUp(self):
        self.pg = ScratchPostgres().start()
        self.logdir = tempfile.mkdtemp(prefix="creneau-events-")
        self.procs = []
        self.pg.psql("CREATE SCHEMA pubsvc; CREATE SCHEMA subsvc")
        self.key = os.urandom(32).hex()
        self.pub_conninfo = self.pg.conninfo + \
            " options='-c search_path=pubsvc'"
        self.sub_conninfo = self.pg.conninfo + \
            " options='-c search_path=subsvc'"

    def tearDown(self):
        for p in self.procs:
            p.stop()
        self.pg.stop()
        if os.environ.get("CRENEAU_KEEP_LOGS"):
            sys.stderr.write("logs kept in %s\n" % self.logdir)
        else:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def publisher(self, name):
        pub_url = "tcp://127.0.0.1:%d" % free_port()
        rpc_url = "tcp://127.0.0.1:%d" % free_port()
        p = Proc(name, [os.path.join(BIN, "events_pub"), "serve",
                        self.pub_conninfo, "pubsvc", pub_url, rpc_url,
                        self.key], self.logdir)
        p.pub_url, p.rpc_url = pub_url, rpc_url
        self.procs.append(p)
        return p

    def emitter(self, tag, count, per_txn, threads, delay_ms, pad=0):
        p = Proc("emit-" + tag, [os.path.join(BIN, "events_pub"), "emit",
                                 self.pub_conninfo, tag, str(count),
                                 str(per_txn), str(threads), str(delay_ms),
                                 str(pad)],
                 self.logdir)
        self.procs.append(p)
        return p

    def scalar(self, sql):
        return int(self.pg.psql(sql) or 0)

    def applied(self):
        if not self.scalar("SELECT count(*) FROM pg_tables WHERE "
                           "schemaname = 'subsvc' AND tablename = 'applied'"):
            return 0  # the subscriber has not migrated its schema yet
        return self.scalar("SELECT count(*) FROM subsvc.applied")

    def head(self):
        return self.scalar("SELECT last_seq FROM pubsvc.events_head")

    def wait_until(self, what, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        self.fail("timed out waiting for " + what)

    def dump_logs(self):
        for p in self.procs:
            sys.stderr.write("---- %s (tail) ----\n%s\n"
                             % (p.name, p.log_tail()))

    def test_no_event_lost(self):
        try:
            self.scenario()
        except BaseException:
            self.dump_logs()
            raise

    def note(self, step):
        sys.stderr.write("%-34s head=%-6d applied=%d\n"
                         % (step, self.head(), self.applied()))

    def assert_emitting(self, emitter, step):
        self.assertIsNone(emitter.p.poll(),
                          "the emitter finished before " + step)

    def scenario(self):
        pub_a = self.publisher("pub-a").start()
        pub_b = self.publisher("pub-b").start()
        sub = Proc("sub", [os.path.join(BIN, "events_sub"),
                           self.sub_conninfo, "subsvc", PUBLISHER,
                           pub_a.pub_url + "," + pub_b.pub_url,
                           pub_a.rpc_url + "," + pub_b.rpc_url, self.key,
                           "debug"],
                   self.logdir)
        self.procs.append(sub)

        # 10 000 events while nobody listens
        first = self.emitter("first", FIRST_BATCH, 50, 4, 0)
        first.start(wait_ready=False)
        self.assertEqual(first.p.wait(300), 0, first.log_tail())
        first.close_pipe()
        self.wait_until("the relay to sequence the first batch",
                        lambda: self.head() == FIRST_BATCH, 60)
        self.note("first batch sequenced")

        # the subscriber catches up, then lives through a storm: a steady
        # stream of small transactions from two connections ...
        sub.start()
        second = self.emitter("second", SECOND_BATCH, 5, 2, 15)
        second.start(wait_ready=False)
        self.wait_until("live events to flow",
                        lambda: self.applied() > FIRST_BATCH + 300, 120)
        self.note("subscriber live")

        # ... the subscriber killed mid-stream, probably mid-transaction ...
        self.assert_emitting(second, "the subscriber was killed")
        sub.kill9()
        self.note("subscriber killed")
        time.sleep(0.5)
        sub.start()
        self.wait_until("the restarted subscriber to move",
                        lambda: self.applied() > FIRST_BATCH + 1500, 120)
        self.note("subscriber restarted")

        # ... stopped, while live on PUB, as a burst of big events
        # overflows its buffers ...
        self.wait_until("the subscriber to catch up",
                        lambda: self.head() - self.applied() < 50, 120)
        self.note("subscriber caught up")
        self.assert_emitting(second, "the subscriber was stopped")
        sub.signal(signal.SIGSTOP)
        burst = self.emitter("burst", BURST, 100, 1, 0, BURST_PAD)
        burst.start(wait_ready=False)
        self.assertEqual(burst.p.wait(300), 0, burst.log_tail())
        burst.close_pipe()
        time.sleep(2)
        self.note("subscriber stopped, burst sent")
        sub.signal(signal.SIGCONT)

        # ... and a publisher replica dies; the other carries on
        self.assert_emitting(second, "the publisher was killed")
        pub_a.kill9()
        self.note("publisher a killed")
        time.sleep(1.5)
        pub_a.start()

        self.assertEqual(second.p.wait(300), 0, second.log_tail())
        second.close_pipe()
        total = FIRST_BATCH + SECOND_BATCH + BURST
        self.wait_until("every event to be sequenced",
                        lambda: self.head() == total, 60)
        self.wait_until("every event to be applied",
                        lambda: self.applied() >= total, 180)
        time.sleep(1.5)  # anything extra would show now
        self.note("done")

        # every sequence exactly once (the primary key forbids twice) ...
        self.assertEqual(self.applied(), total)
        self.assertEqual(self.scalar(
            "SELECT min(seq) FROM subsvc.applied"), 1)
        self.assertEqual(self.scalar(
            "SELECT max(seq) FROM subsvc.applied"), total)
        # ... in sequence order ...
        self.assertEqual(self.scalar(
            "SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY ord)"
            " AS prev FROM subsvc.applied) x WHERE prev IS NOT NULL"
            " AND seq <> prev + 1"), 0)
        # ... with what the publisher wrote, every emitted event once
        self.assertEqual(self.scalar(
            "SELECT count(*) FROM subsvc.applied a JOIN pubsvc.events_outbox"
            " o USING (seq) WHERE a.payload = o.payload"
            " AND a.topic = o.topic"), total)
        self.assertEqual(self.scalar(
            "SELECT count(DISTINCT payload) FROM subsvc.applied"), total)
        self.assertEqual(self.scalar(
            "SELECT last_seq FROM subsvc.events_cursor"
            " WHERE publisher = 'pubsvc'"), total)
        log = sub.log_text()
        # the subscriber never tried to apply one twice ...
        self.assertNotIn("apply failed", log)
        # ... and it did lose PUB messages (a gap in the stream, or a
        # heartbeat beyond its cursor), and made up for them
        self.assertTrue("events gap" in log or "events behind head" in log,
                        "the subscriber never noticed a loss")


if __name__ == "__main__":
    unittest.main(verbosity=2)
