"""accounts_bench.py - the accounts figures (see accounts_bench.sh)."""

import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

import creneau_bench
import creneau_users
from creneau_bench import percentile, rss_kb
from creneau_stack import Stack
from creneau_users import PASSWORD

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
LOGINS = int(os.environ.get("BENCH_LOGINS", "40"))
PRACTITIONERS = int(os.environ.get("BENCH_PRACTITIONERS", "10000"))

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


def wrk(url, headers):
    """(requests/s, p50 ms, p99 ms, non-2xx answers) of one wrk run."""
    result = creneau_bench.wrk(url, CONNECTIONS, THREADS, SECONDS,
                               headers=headers)
    return result.rps, result.p50, result.p99, result.non2xx


def pgbench(stack, sql, variables):
    """(queries/s, p50 ms, p99 ms) of `sql` alone, as the accounts role."""
    tmp = tempfile.mkdtemp(prefix="accounts-bench-")
    try:
        script = os.path.join(tmp, "q.sql")
        with open(script, "w") as f:
            f.write(sql)
        result = creneau_bench.pgbench(stack.env("accounts")["CRENEAU_DB"],
                                       script, CONNECTIONS, THREADS, SECONDS,
                                       variables, latencies=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result.tps, result.p50, result.p99


def line(name, rps, p50, p99, pg):
    print("%-34s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms   | PostgreSQL "
          "alone %9.0f q/s  p50 %6.2f ms  p99 %6.2f ms  (%.0f%%)" % (
              name, rps, p50, p99, pg[0], pg[1], pg[2],
              100.0 * rps / pg[0] if pg[0] else 0))


def main():
    with Stack(log_level="notice") as s:
        client, token = creneau_users.new_user(
            s, "client", email="bench.client@example.org",
            first_name="Bench", last_name="Client")
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
        before = rss_kb(pid, "VmHWM")
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
                  rss_kb(pid, "VmHWM") // 1024, before // 1024))


if __name__ == "__main__":
    sys.exit(main())
