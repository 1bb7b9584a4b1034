#!/bin/sh
# booking_bench.sh - booking under load (issue 5): a week of availability and
# booking creation through the gateway, each beside pgbench running the same
# SQL (prepared) in the same run, and every daemon's RSS under that load.
#
# Not a pass/fail test: figures to read (targets: a week of availability
# under 1 ms p50 at one connection; booking creation at >= 70% of the raw
# PostgreSQL rate). Loading 1 000 000 bookings takes a minute or two; each
# measurement runs BENCH_SECONDS.
#
#   CRENEAU_BUILD_DIR    build tree with bin/ (default: <source>/build)
#   BENCH_SECONDS        length of each wrk and pgbench run (default 10)
#   BENCH_CONNECTIONS    concurrent connections (default 64)
#   BENCH_THREADS        wrk threads, pgbench jobs (default 2)
#   BENCH_PRACTITIONERS  practitioners loaded (default 1000)
#   BENCH_BOOKINGS       bookings loaded (default 1000000)
#   BENCH_CLIENTS        signed-in clients making bookings (default 64)
#   BENCH_LOG_LEVEL      the daemons' log level (default notice)
#   CRENEAU_TEST_PORTS   port range "lo-hi" for the stack
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/creneau_bench_env.sh
. "$here/../lib/creneau_bench_env.sh"
bench_need_tool booking_bench wrk "apt-get install wrk"
[ -x /usr/lib/postgresql/15/bin/pgbench ] ||
	{ echo "booking_bench: pgbench is not installed (postgresql-15)" >&2; exit 2; }
bench_need_build booking_bench booking
exec /usr/bin/python3 "$here/booking_bench.py" "$@"
