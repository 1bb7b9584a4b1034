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
source_dir=$(cd "$here/../.." && pwd)
export CRENEAU_SOURCE_DIR="${CRENEAU_SOURCE_DIR:-$source_dir}"
export CRENEAU_BUILD_DIR="${CRENEAU_BUILD_DIR:-$source_dir/build}"
export PYTHONPATH="$source_dir/tests/lib${PYTHONPATH:+:$PYTHONPATH}"
PATH="$PATH:/usr/lib/postgresql/15/bin"
for tool in wrk pgbench; do
	command -v "$tool" >/dev/null 2>&1 ||
		{ echo "accounts_bench: $tool is not installed" >&2; exit 2; }
done
[ -x "$CRENEAU_BUILD_DIR/bin/accounts" ] ||
	{ echo "accounts_bench: no $CRENEAU_BUILD_DIR/bin/accounts: build first" >&2; exit 2; }
exec /usr/bin/python3 "$here/accounts_bench.py" "$@"
