#!/bin/sh
# notifications_bench.sh - prints the figures of the notifications service:
# mails/s through SMTP to a local sink (tests/fakes/smtp_server.py), and how
# long the queue takes to drain after a one-minute SMTP outage.
#
# Not a pass/fail test. Everything listens on 127.0.0.1 and stops by itself.
# Options go to notifications_bench.py: --messages N (2000), --outage S (60),
# --outage-messages N (500), --senders N (2), --retry-base-ms MS (30000).
#
#   CRENEAU_BUILD_DIR   build tree with bin/ (default: <source>/build)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/creneau_bench_env.sh
. "$here/../lib/creneau_bench_env.sh"
bench_need_build notifications_bench notifications
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null ||
	{ echo "notifications_bench: python3-aiosmtpd is not installed" >&2; exit 2; }
exec /usr/bin/python3 "$here/notifications_bench.py" "$@"
