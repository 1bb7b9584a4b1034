#!/bin/sh
# accounts_bench.sh - prints the figures of the accounts service through the
# gateway: requests/s and p50/p99 of an authenticated GET /v1/me and of a
# directory search over 10 000 practitioners, each beside PostgreSQL's own
# rate for the same query (pgbench, prepared) in the same run; and sign-ins/s
# with argon2id with the memory they take.
#
# Not a pass/fail test. Everything listens on 127.0.0.1 and stops by itself.
#
#   CRENEAU_BUILD_DIR   build tree with bin/ (default: <source>/build)
#   BENCH_SECONDS       length of each run (default 10)
#   BENCH_CONNECTIONS   concurrent connections (default 32)
#   BENCH_THREADS       wrk and pgbench threads (default 2)
#   BENCH_LOGINS        sign-ins to time (default 40)
#   BENCH_PRACTITIONERS directory size (default 10000)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/creneau_bench_env.sh
. "$here/../lib/creneau_bench_env.sh"
PATH="$PATH:/usr/lib/postgresql/15/bin"
for tool in wrk pgbench; do
	bench_need_tool accounts_bench "$tool"
done
bench_need_build accounts_bench accounts
exec /usr/bin/python3 "$here/accounts_bench.py" "$@"
