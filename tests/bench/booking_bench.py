#!/usr/bin/python3
"""booking_bench.py - booking under load, beside raw PostgreSQL (run through
tests/bench/booking_bench.sh, which documents the settings).

Starts a creneau stack, loads BENCH_PRACTITIONERS practitioners (open Monday
to Saturday, 08:00-20:00 Europe/Paris, one 60-minute offering each) and
BENCH_BOOKINGS bookings into the booking schema, then measures through the
gateway with wrk:

  (a) a week of availability (GET /v1/practitioners/{id}/availability, a
      random practitioner per request): p50/p99 and requests/s at 1 and at
      BENCH_CONNECTIONS connections;
  (b) booking creation (POST /v1/bookings by signed-in, verified clients,
      every request a distinct offered slot): bookings/s at
      BENCH_CONNECTIONS connections;

each beside pgbench (prepared statements) running the same SQL as the
service in the same run, as a ratio; and the RSS of every daemon under that
load. Targets: (a) p50 under 1 ms at one connection; (b) at least 70 % of
the raw PostgreSQL rate. Everything it starts is stopped on exit."""

import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

import creneau_bench
import creneau_users
from creneau_bench import rss_kb
from creneau_stack import SERVICES, Stack

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
PRACTITIONERS = int(os.environ.get("BENCH_PRACTITIONERS", "1000"))
BOOKINGS = int(os.environ.get("BENCH_BOOKINGS", "1000000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "64"))
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "notice")

# The availability query of services/booking/store.c (store_avail_load),
# with pgbench variables: practitioner :p, offering :o, window :f..:t (ms).
AVAIL_SQL = (
    "SELECT 's', min_notice_min::bigint, horizon_days::bigint, "
    "slot_step_min::bigint, cancel_deadline_min::bigint, timezone "
    "FROM schedules WHERE practitioner_id = :p "
    "UNION ALL SELECT 'w', weekday, start_min, end_min, 0, '' "
    "FROM weekly_hours WHERE practitioner_id = :p "
    "UNION ALL SELECT 'f', duration_min, buffer_before_min, "
    "buffer_after_min, active::int, '' FROM offerings WHERE "
    "id = :o::uuid AND practitioner_id = :p AND NOT retired "
    "UNION ALL SELECT 'a', suspended::int, 0, 0, 0, '' FROM "
    "accounts WHERE account_id = :p "
    "UNION ALL SELECT 'o', day - date '1970-01-01', closed::int, 0, "
    "0, array_to_string(starts, ',') || '/' || "
    "array_to_string(ends, ',') FROM schedule_overrides WHERE "
    "practitioner_id = :p AND day BETWEEN ((timestamptz 'epoch' + "
    ":f::bigint * interval '1 millisecond') AT TIME ZONE 'UTC')::date - 3 "
    "AND ((timestamptz 'epoch' + :t::bigint * interval '1 millisecond') "
    "AT TIME ZONE 'UTC')::date + 3 "
    "UNION ALL SELECT 'b', (extract(epoch FROM lower(blocked)) * 1000)"
    "::bigint, (extract(epoch FROM upper(blocked)) * 1000)::bigint, 0, 0, "
    "'' FROM bookings WHERE practitioner_id = :p AND status = 'confirmed' "
    "AND blocked && tstzrange((timestamptz 'epoch' + :f::bigint * "
    "interval '1 millisecond') - interval '1 day', (timestamptz 'epoch' + "
    ":t::bigint * interval '1 millisecond') + interval '1 day') AND "
    "(NULL::uuid IS NULL OR id <> NULL::uuid) "
    "UNION ALL SELECT 'x', (extract(epoch FROM lower(during)) * 1000)"
    "::bigint, (extract(epoch FROM upper(during)) * 1000)::bigint, 0, 0, "
    "'' FROM busy_intervals WHERE practitioner_id = :p AND during && "
    "tstzrange((timestamptz 'epoch' + :f::bigint * interval "
    "'1 millisecond') - interval '1 day', (timestamptz 'epoch' + "
    ":t::bigint * interval '1 millisecond') + interval '1 day');")

LOAD_SQL = """
SET client_min_messages = warning;
ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap;
DROP INDEX bookings_practitioner, bookings_client, bookings_offering;
INSERT INTO schedules (practitioner_id, timezone, min_notice_min,
                       horizon_days, slot_step_min)
  SELECT md5('p' || i)::uuid, 'Europe/Paris', 0, 730, 15
    FROM generate_series(1, {np}) AS i;
INSERT INTO weekly_hours (practitioner_id, weekday, start_min, end_min)
  SELECT md5('p' || i)::uuid, d, 480, 1200
    FROM generate_series(1, {np}) AS i, generate_series(1, 6) AS d;
INSERT INTO offerings (id, practitioner_id, title, duration_min,
                       price_cents, location)
  SELECT md5('o' || i)::uuid, md5('p' || i)::uuid, 'Séance', 60, 6000,
         'office' FROM generate_series(1, {np}) AS i;
-- {per} bookings per practitioner, three a day (09:00, 12:00, 15:00 UTC),
-- from 300 days ago onwards: the benchmarked week holds some of them.
INSERT INTO bookings (practitioner_id, client_id, offering_id,
                      offering_title, duration_min, location, price_cents,
                      currency, buffer_before_min, buffer_after_min,
                      start_at, end_at, blocked)
  SELECT md5('p' || i)::uuid, md5('c' || (k % 5000))::uuid,
         md5('o' || i)::uuid, 'Séance', 60, 'office', 6000, 'EUR', 0, 0,
         s, s + interval '1 hour', tstzrange(s, s + interval '1 hour')
    FROM generate_series(1, {np}) AS i, generate_series(0, {per} - 1) AS k,
         LATERAL (SELECT date_trunc('day', now())
                         + ((k / 3) - 300) * interval '1 day'
                         + interval '9 hours' + (k % 3) * interval '3 hours'
                  AS s) AS x;
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist
    (practitioner_id WITH =, blocked WITH &&) WHERE (status = 'confirmed');
CREATE INDEX bookings_practitioner ON bookings (practitioner_id, start_at, id);
CREATE INDEX bookings_client ON bookings (client_id, start_at, id)
    WHERE client_id IS NOT NULL;
CREATE INDEX bookings_offering ON bookings (offering_id);
ANALYZE bookings; ANALYZE offerings; ANALYZE schedules; ANALYZE weekly_hours;
SELECT count(*) FROM bookings;
"""


class RssSampler:
    """Peak RSS of every daemon while it runs."""

    def __init__(self, stack):
        self.pids = {n: stack.pid(n) for n in ["gateway"] + list(SERVICES)}
        self.peak = {n: 0 for n in self.pids}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.wait(0.2):
            for name, pid in self.pids.items():
                kb = rss_kb(pid) or 0
                self.peak[name] = max(self.peak[name], kb)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def wrk(url, script, connections, threads, seconds=SECONDS):
    """creneau_bench.wrk with this benchmark's request timeout."""
    return creneau_bench.wrk(url, connections, threads, seconds,
                             script=script, timeout="10s")


def pgbench(conninfo, script, clients, seconds=SECONDS):
    """(transactions/s, average latency ms) of pgbench, prepared."""
    result = creneau_bench.pgbench(conninfo, script, clients, THREADS,
                                   seconds)
    return result.tps, result.avg


def make_clients(stack, n):
    """n verified clients with a session each: their tokens."""
    clients = creneau_users.new_users(stack, n, "client", timeout=60,
                                      first_name="Bench", last_name="Client")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rc, out, _ = stack.psql("SELECT count(*) FROM accounts WHERE "
                                "email_verified", role="booking")
        if rc == 0 and int(out.strip() or 0) >= n:
            return [token for _, token in clients]
        time.sleep(0.2)
    raise RuntimeError("booking never learnt of the clients")


def first_monday(after):
    day = after.replace(hour=0, minute=0, second=0, microsecond=0)
    while day.weekday() != 0:
        day += timedelta(days=1)
    return day


def lua_availability(path, ids, frm, to):
    with open(path, "w") as f:
        f.write("local paths = {\n")
        for p, o in ids:
            f.write('  "/v1/practitioners/%s/availability?offering=%s'
                    '&from=%s&to=%s",\n' % (p, o, frm, to))
        f.write("}\nmath.randomseed(os.time())\n"
                "request = function()\n"
                "  return wrk.format('GET', paths[math.random(#paths)])\n"
                "end\n")


def lua_create(path, ids, tokens, monday_ms, offset):
    """Each request a distinct slot: practitioner n % P, then the k-th
    Monday-to-Saturday day from monday, at 08:00..17:00 UTC (always inside
    08:00-20:00 Paris)."""
    with open(path, "w") as f:
        f.write("local ids = {\n")
        for p, o in ids:
            f.write('  {"%s", "%s"},\n' % (p, o))
        f.write("}\nlocal tokens = {\n")
        for t in tokens:
            f.write('  "%s",\n' % t)
        f.write("""}
local threads, counter = 0, 0
local monday = %d
local offset = %d
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
init = function(args)
  counter = tid
  nthreads = %d
end
local function iso(ms)
  return os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ", math.floor(ms / 1000))
end
request = function()
  local n = counter + offset
  counter = counter + nthreads
  local p = ids[(n %% #ids) + 1]
  local k = math.floor(n / #ids)
  local hour = k %% 10
  local d = math.floor(k / 10)
  local day = math.floor(d / 6) * 7 + (d %% 6)
  local start = monday + day * 86400000 + (8 + hour) * 3600000
  local body = '{"practitioner_id":"' .. p[1] .. '","offering_id":"' ..
    p[2] .. '","start":"' .. iso(start) .. '"}'
  return wrk.format("POST", "/v1/bookings", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[(n %% #tokens) + 1]}, body)
end
""" % (monday_ms, offset, THREADS))


def pgbench_create_script(path, monday_ms, offset, np):
    """The SQL of one CreateBooking (store.c and common/events.c), each
    transaction a distinct slot taken from a sequence."""
    with open(path, "w") as f:
        f.write("""SELECT nextval('bench_seq') + %d AS n \\gset
\\set p (:n %% %d) + 1
\\set k :n / %d
\\set d :k / 10
\\set start %d + ((:d / 6) * 7 + (:d %% 6)) * 86400000 + (8 + :k %% 10) * 3600000
SELECT role, email_verified, suspended FROM accounts WHERE account_id = md5('c' || :p)::uuid;
SELECT role, email_verified, suspended FROM accounts WHERE account_id = md5('p' || :p)::uuid;
SELECT id, practitioner_id, title, description, duration_min, price_cents, currency, buffer_before_min, buffer_after_min, location, prepayment_required, active, (extract(epoch FROM created_at) * 1000)::bigint, (extract(epoch FROM updated_at) * 1000)::bigint FROM offerings WHERE id = md5('o' || :p)::uuid AND NOT retired;
""" % (offset, np, np, monday_ms))
        f.write(AVAIL_SQL.replace(":p", "md5('p' || :p)::uuid")
                .replace(":o::uuid", "md5('o' || :p)::uuid")
                .replace(":f", ":start").replace(":t", "(:start::bigint + 1)") + "\n")
        f.write("""BEGIN;
WITH rec AS (INSERT INTO clients (practitioner_id, account_id, first_name, last_name, email, phone) SELECT md5('p' || :p)::uuid, md5('c' || :p)::uuid, coalesce(a.first_name, ''), coalesce(a.last_name, ''), coalesce(a.email, ''), coalesce(a.phone, '') FROM (SELECT 1) AS one LEFT JOIN accounts a ON a.account_id = md5('c' || :p)::uuid ON CONFLICT (practitioner_id, account_id) DO UPDATE SET updated_at = clients.updated_at RETURNING id) INSERT INTO bookings (practitioner_id, client_id, client_record_id, offering_id, offering_title, duration_min, location, price_cents, currency, buffer_before_min, buffer_after_min, start_at, end_at, blocked, note, idempotency_key, request_hash) SELECT md5('p' || :p)::uuid, md5('c' || :p)::uuid, rec.id, md5('o' || :p)::uuid, 'Séance', 60, 'office', 6000, 'EUR', 0, 0, (timestamptz 'epoch' + :start::bigint * interval '1 millisecond'), (timestamptz 'epoch' + (:start::bigint + 3600000) * interval '1 millisecond'), tstzrange((timestamptz 'epoch' + :start::bigint * interval '1 millisecond'), (timestamptz 'epoch' + (:start::bigint + 3600000) * interval '1 millisecond')), '', NULL, 'h' FROM rec RETURNING id \\gset b_
SELECT b.id, b.status FROM bookings b LEFT JOIN clients c ON c.id = b.client_record_id LEFT JOIN schedules s ON s.practitioner_id = b.practitioner_id WHERE b.id = :b_id::uuid;
INSERT INTO events_outbox (topic, payload) VALUES ('booking.created', '\\x0a2430303030303030302d303030302d343030302d383030302d303030303030303030303030122430303030303030302d303030302d343030302d383030302d303030303030303030303030');
COMMIT;
""")


def row(name, result, ratio=None, raw=None):
    """One table row of a creneau_bench.WrkResult."""
    line = "%-44s %9.0f %8.2f %8.2f" % (name, result.rps, result.p50,
                                        result.p99)
    if raw is not None:
        line += "  %9.0f  %5.0f%%" % (raw, ratio * 100)
    if result.non2xx:
        line += "   (%d non-2xx of %d)" % (result.non2xx, result.total)
    print(line, flush=True)


def main():
    stack = Stack(log_level=LOG_LEVEL)
    tmp = tempfile.mkdtemp(prefix="creneau-booking-bench-")
    try:
        print("starting the stack (log level %s)..." % LOG_LEVEL, flush=True)
        stack.up()
        stack.wait_healthy(timeout=60)
        conninfo = stack.env("booking")["CRENEAU_DB"]
        per = max(BOOKINGS // PRACTITIONERS, 1)
        print("loading %d practitioners and %d bookings..."
              % (PRACTITIONERS, per * PRACTITIONERS), flush=True)
        t0 = time.monotonic()
        rc, out, err = stack.psql(LOAD_SQL.format(np=PRACTITIONERS, per=per),
                                  role="booking", timeout=3600)
        if rc:
            raise RuntimeError("load failed: %s" % err)
        print("  %s bookings in %.0f s" % (out.split()[-1],
                                           time.monotonic() - t0))
        rc, out, err = stack.psql(
            "SELECT md5('p' || i)::uuid, md5('o' || i)::uuid FROM "
            "generate_series(1, %d) AS i" % PRACTITIONERS, role="booking")
        ids = [tuple(line.split("|")) for line in out.split()]

        # (a) a week of availability, a random practitioner per request
        tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0)
        frm = tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ")
        to = (tomorrow + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        avail_lua = os.path.join(tmp, "availability.lua")
        lua_availability(avail_lua, ids, frm, to)
        f_ms = int(tomorrow.timestamp() * 1000)
        avail_pg = os.path.join(tmp, "availability.sql")
        with open(avail_pg, "w") as f:
            f.write("\\set i random(1, %d)\n" % PRACTITIONERS)
            f.write(AVAIL_SQL.replace(":p", "md5('p' || :i)::uuid")
                    .replace(":o::uuid", "md5('o' || :i)::uuid")
                    .replace(":f", str(f_ms))
                    .replace(":t", str(f_ms + 7 * 86400000)) + "\n")
        status, _, body = stack.http(
            "GET", "/v1/practitioners/%s/availability?offering=%s&from=%s"
            "&to=%s" % (ids[0][0], ids[0][1], frm, to))
        print("  a week of availability: %d slots for one practitioner"
              % len(body.get("slots", [])) if status == 200
              else "  availability failed: %s %s" % (status, body))
        wrk(stack.url, avail_lua, 4, 1, seconds=2)  # warm-up
        print("\n(a) a week of availability, %d cores" % (os.cpu_count() or 1))
        print("%-44s %9s %8s %8s  %9s  %6s" % (
            "", "req/s", "p50 ms", "p99 ms", "pgbench/s", "ratio"))
        with RssSampler(stack) as rss_a:
            one = wrk(stack.url, avail_lua, 1, 1)
            raw1, _ = pgbench(conninfo, avail_pg, 1)
            row("HTTP availability, 1 connection", one, one[0] / raw1, raw1)
            many = wrk(stack.url, avail_lua, CONNECTIONS, THREADS)
            raw64, _ = pgbench(conninfo, avail_pg, CONNECTIONS)
            row("HTTP availability, %d connections" % CONNECTIONS, many,
                many[0] / raw64, raw64)

        # (b) booking creation by signed-in clients
        print("\nsigning up %d clients..." % CLIENTS, flush=True)
        tokens = make_clients(stack, CLIENTS)
        monday = first_monday(datetime.now(timezone.utc) + timedelta(days=40))
        monday_ms = int(monday.timestamp() * 1000)
        create_lua = os.path.join(tmp, "create.lua")
        lua_create(create_lua, ids, tokens, monday_ms, 0)
        create_pg = os.path.join(tmp, "create.sql")
        # pgbench takes slots far beyond the HTTP run's (another year)
        pgbench_create_script(create_pg, monday_ms + 52 * 7 * 86400000, 0,
                              PRACTITIONERS)
        stack.psql("CREATE SEQUENCE bench_seq", role="booking")
        rc, before, _ = stack.psql("SELECT count(*) FROM bookings",
                                   role="booking")
        print("\n(b) booking creation, %d connections" % CONNECTIONS)
        print("%-44s %9s %8s %8s  %9s  %6s" % (
            "", "req/s", "p50 ms", "p99 ms", "pgbench/s", "ratio"))
        with RssSampler(stack) as rss_b:
            made = wrk(stack.url, create_lua, CONNECTIONS, THREADS)
            rc, after, _ = stack.psql("SELECT count(*) FROM bookings",
                                      role="booking")
            created = int(after) - int(before)
            raw, _ = pgbench(conninfo, create_pg, CONNECTIONS)
        per_s = created / SECONDS
        row("HTTP POST /v1/bookings (201s: %d)" % created,
            made._replace(rps=per_s), per_s / raw, raw)
        stack.psql("DROP SEQUENCE bench_seq", role="booking")

        p50 = one[1]
        print("\ntargets:")
        print("  a week of availability at 1 connection: p50 %.2f ms "
              "(target < 1 ms): %s" % (p50, "met" if p50 < 1 else "NOT met"))
        print("  booking creation at %.0f%% of raw PostgreSQL (target >= "
              "70%%): %s" % (100 * per_s / raw,
                            "met" if per_s / raw >= 0.7 else "NOT met"))
        print("\npeak RSS under load (availability / creation):")
        for name in rss_a.peak:
            print("  %-16s %7.1f MB  %7.1f MB" % (
                name, rss_a.peak[name] / 1024, rss_b.peak[name] / 1024))
        return 0
    finally:
        stack.down()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
