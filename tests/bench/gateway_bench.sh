#!/bin/sh
# gateway_bench.sh - prints the gateway's throughput and latency beside
# nginx's on the same machine, and the idle memory of every daemon.
#
# Not a pass/fail test: figures to read (targets: a route without RPC at
# >= 80% of nginx's requests/s; each idle daemon < 16 MB RSS). Everything
# listens on 127.0.0.1 and stops by itself; a run takes about
# 4 x BENCH_SECONDS plus the stack's start-up.
#
#   CRENEAU_BUILD_DIR   build tree with bin/ (default: <source>/build)
#   BENCH_SECONDS       length of each wrk run (default 10)
#   BENCH_CONNECTIONS   concurrent connections (default 64)
#   BENCH_THREADS       wrk threads (default 2)
#   BENCH_LOG_LEVEL     the daemons' log level (default notice: no line per
#                       request, as nginx runs with access_log off)
#   CRENEAU_TEST_PORTS  port range "lo-hi" for the stack and nginx
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/creneau_bench_env.sh
. "$here/../lib/creneau_bench_env.sh"
for tool in wrk nginx; do
	command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
	bench_need_tool gateway_bench "$tool" "apt-get install $tool"
done
bench_need_build gateway_bench gateway
exec /usr/bin/python3 "$here/gateway/bench.py" "$@"
