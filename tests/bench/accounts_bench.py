"""accounts_bench.py - the accounts figures (see accounts_bench.sh)."""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from creneau_stack import Stack

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
LOGINS = int(os.environ.get("BENCH_LOGINS", "40"))
PRACTITIONERS = int(os.environ.get("BENCH_PRACTITIONERS", "10000"))
PASSWORD = "Tr3s-b0n-mdp!"

# The statements the accounts service runs for these requests (store.c),
# with their parameters as pgbench variables.
LISTED = ("(a.role = 'practitioner' AND a.email_verified_at IS NOT NULL AND "
          "(a.subscription_status = 'active' OR "
          "(a.subscription_status = 'trial' AND a.trial_ends_at > now())))")
MS = "coalesce((extract(epoch FROM %s) * 1000)::bigint, 0)"
ME_SQL = ("SELECT a.id, a.role, a.email, a.email_verified_at IS NOT NULL, "
          "coalesce(a.pending_email, ''), a.first_name, a.last_name, "
          "coalesce(a.phone, ''), coalesce(a.address, ''), "
          "coalesce(a.terms_version, ''), " + MS % "a.terms_accepted_at" +
          ", a.subscription_status, " + MS % "a.trial_ends_at" + ", " +
          MS % "a.created_at" + ", " + LISTED +
          " FROM accounts a WHERE a.id = :id::uuid;\n")
DIRECTORY_SQL = (
    "SELECT p.account_id, p.display_name, "
    "array_to_string(p.specialties, ','), p.city, p.postcode, p.region, "
    "p.bio, array_to_string(p.languages, ','), p.sort_key "
    "FROM practices p JOIN accounts a ON a.id = p.account_id WHERE " +
    LISTED + " AND p.region = :region "
    "AND p.search @@ websearch_to_tsquery('french', fold(:q)) "
    "ORDER BY p.sort_key, p.account_id LIMIT 21;\n")

SEED_SQL = """
INSERT INTO accounts (role, email, password_hash, first_name, last_name,
                      email_verified_at, subscription_status, trial_ends_at)
SELECT 'practitioner', 'bench' || i || '@example.org', 'x', 'Prénom' || i,
       'Nom' || i, now(), 'active', now() + interval '30 days'
FROM generate_series(1, {n}) i;
INSERT INTO practices (account_id, display_name, specialties, city, postcode,
                       region, bio, languages)
SELECT a.id,
       'Cabinet ' || (ARRAY['Élodie','Marc','Anne','Hélène','Jérôme'])[1 + k % 5]
         || ' ' || k,
       ARRAY[(ARRAY['kinesiologie','sophrologie','naturopathie','reiki',
                    'hypnose','shiatsu','reflexologie','yoga','meditation',
                    'nutrition'])[1 + k % 10]],
       (ARRAY['Lyon','Saint-Étienne','Paris','Rennes','Nantes','Lille',
              'Montpellier','Bordeaux'])[1 + k % 8],
       lpad((1000 + k % 95000)::text, 5, '0'),
       (ARRAY['auvergne-rhone-alpes','ile-de-france','bretagne',
              'pays-de-la-loire','hauts-de-france','occitanie',
              'nouvelle-aquitaine','grand-est'])[1 + k % 8],
       'Séances de ' || (ARRAY['kinésiologie','sophrologie','naturopathie',
                               'reiki','hypnose','shiatsu','réflexologie',
                               'yoga','méditation','nutrition'])[1 + k % 10]
         || ' pour le stress, le sommeil et le bien-être.',
       ARRAY['fr']
FROM (SELECT id, row_number() OVER () AS k FROM accounts
      WHERE email LIKE 'bench%@example.org') a;
ANALYZE accounts;
ANALYZE practices;
"""


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values))) - 1))
    return values[k]


def wrk(url, headers):
    args = ["wrk", "-t%d" % THREADS, "-c%d" % CONNECTIONS,
            "-d%ds" % SECONDS, "--latency"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, text=True,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct in ("50", "99"):
        m = re.search(r"\s%s(?:\.0+)?%%\s+([\d.]+)(us|ms|s)" % pct, out)
        value, unit = float(m.group(1)), m.group(2)
        lat[pct] = value / 1000 if unit == "us" else (
            value * 1000 if unit == "s" else value)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat["50"], lat["99"], int(non2xx.group(1)) if non2xx else 0


def pgbench(stack, sql, variables):
    env = stack.env("accounts")
    conninfo = dict(kv.split("=", 1) for kv in env["CRENEAU_DB"].split())
    tmp = tempfile.mkdtemp(prefix="accounts-bench-")
    script = os.path.join(tmp, "q.sql")
    with open(script, "w") as f:
        f.write(sql)
    penv = dict(os.environ, PGPASSWORD=conninfo.get("password", ""),
                PGOPTIONS="-c search_path=accounts")
    args = ["pgbench", "-n", "-M", "prepared", "-c", str(CONNECTIONS),
            "-j", str(THREADS), "-T", str(SECONDS), "-f", script,
            "-h", conninfo["host"], "-p", conninfo["port"],
            "-U", conninfo["user"], "-l", "--log-prefix",
            os.path.join(tmp, "log")]
    for k, v in variables.items():
        args += ["-D", "%s=%s" % (k, v)]
    out = subprocess.run(args + [conninfo["dbname"]], capture_output=True,
                         text=True, env=penv, cwd=tmp)
    if out.returncode != 0:
        raise RuntimeError("pgbench failed: %s %s" % (out.stdout, out.stderr))
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))
    lat = []
    for name in os.listdir(tmp):
        if name.startswith("log"):
            with open(os.path.join(tmp, name)) as f:
                lat += [int(line.split()[2]) / 1000.0 for line in f]
    subprocess.run(["rm", "-rf", tmp])
    return tps, percentile(lat, 50), percentile(lat, 99)


def decode_token(stack, account_id):
    rc, out, _ = stack.psql(
        "SELECT encode(payload, 'hex') FROM events_outbox WHERE topic = "
        "'account.created' AND position(convert_to('%s', 'UTF8') in "
        "payload) > 0" % account_id, role="accounts")
    payload = bytes.fromhex(out.split()[0])
    i = payload.index(b"\x32\x2b")
    return payload[i + 2:i + 45].decode()


def rss_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def line(name, rps, p50, p99, pg):
    print("%-34s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms   | PostgreSQL "
          "alone %9.0f q/s  p50 %6.2f ms  p99 %6.2f ms  (%.0f%%)" % (
              name, rps, p50, p99, pg[0], pg[1], pg[2],
              100.0 * rps / pg[0] if pg[0] else 0))


def main():
    with Stack(log_level="notice") as s:
        status, _, client = s.http("POST", "/v1/accounts", body={
            "role": "client", "email": "bench.client@example.org",
            "password": PASSWORD, "first_name": "Bench",
            "last_name": "Client", "accept_terms": True})
        assert status == 201, client
        s.http("POST", "/v1/email-verifications/confirm",
               body={"token": decode_token(s, client["id"])})
        status, _, session = s.http("POST", "/v1/sessions", body={
            "email": "bench.client@example.org", "password": PASSWORD})
        assert status == 201, session
        token = session["token"]
        rc, _, err = s.psql(SEED_SQL.format(n=PRACTITIONERS), role="accounts")
        assert rc == 0, err
        status, _, page = s.http("GET", "/v1/practitioners?q=kinesiologie&"
                                 "region=bretagne")
        assert status == 200 and page["items"], page
        print("accounts bench: %d s per run, %d connections, %d practitioners"
              % (SECONDS, CONNECTIONS, PRACTITIONERS))

        rps, p50, p99, bad = wrk(s.url + "/v1/me",
                                 ["Authorization: Bearer " + token])
        pg = pgbench(s, ME_SQL, {"id": client["id"]})
        line("GET /v1/me (Bearer)", rps, p50, p99, pg)
        if bad:
            print("  (%d non-2xx answers)" % bad)

        path = "/v1/practitioners?q=kinesiologie&region=bretagne"
        rps, p50, p99, bad = wrk(s.url + path, [])
        pg = pgbench(s, DIRECTORY_SQL, {"q": "kinesiologie",
                                        "region": "bretagne"})
        line("GET " + path[:30], rps, p50, p99, pg)
        if bad:
            print("  (%d non-2xx answers)" % bad)

        # sign-ins: argon2id is slow on purpose
        pid = s.pid("accounts")
        before = rss_kib(pid, "VmHWM")
        times, lock = [], threading.Lock()

        def worker(n):
            for _ in range(n):
                t0 = time.monotonic()
                st, _, _ = s.http("POST", "/v1/sessions", body={
                    "email": "bench.client@example.org",
                    "password": PASSWORD})
                assert st == 201, st
                with lock:
                    times.append((time.monotonic() - t0) * 1000)
        start = time.monotonic()
        threads = [threading.Thread(target=worker, args=(LOGINS // 2,))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        accounts_env = s.env("accounts")
        mem = int(accounts_env.get("CRENEAU_PWHASH_MEM_MIB", "64"))
        print("%-34s %9.1f logins/s  p50 %7.1f ms  p99 %7.1f ms   | argon2id "
              "%d MiB per hash (x concurrent sign-ins); accounts peak RSS "
              "%d MiB (was %d MiB before)" % (
                  "POST /v1/sessions (2 clients)", len(times) / elapsed,
                  statistics.median(times), percentile(times, 99), mem,
                  rss_kib(pid, "VmHWM") // 1024, before // 1024))


if __name__ == "__main__":
    sys.exit(main())
