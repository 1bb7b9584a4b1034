"""notifications benchmark: mails/s through SMTP to a local sink, and how long
the queue takes to drain after a one-minute SMTP outage. Prints figures.

    tests/bench/notifications_bench.sh [--messages 2000] [--outage 60]
        [--outage-messages 500] [--senders 2] [--retry-base-ms 30000]

The stack is started like the README starts it (tests/lib/creneau_stack.py);
the sink is tests/fakes/smtp_server.py (aiosmtpd, in this process), so the
figure includes a Python SMTP server's own cost: it is a floor, not a
ceiling, of what a real MTA on the same machine would take. Retry settings
are the daemon's defaults (first retry 30 s, doubling, jittered) unless
--retry-base-ms says otherwise.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fakes"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import creneau_stack  # noqa: E402
from smtp_server import SmtpServer  # noqa: E402


def psql(s, sql):
    rc, out, err = s.psql(sql, role="notifications")
    if rc:
        raise RuntimeError(err)
    return out.strip()


def queue(s, n, kind):
    """n copies of a real message (built by the daemon), as new rows."""
    psql(s, "INSERT INTO outbox (id, kind, sender, recipient, message_id, "
            "body) SELECT gen_random_uuid(), '%s', sender, 'sink' || g || "
            "'@example.org', g || '.%s@bench', body FROM (SELECT sender, "
            "body FROM outbox WHERE kind = 'operator_message' LIMIT 1) m, "
            "generate_series(1, %d) g" % (kind, kind, n))


def wait_sent(s, kind, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if int(psql(s, "SELECT count(*) FROM outbox WHERE kind = '%s' AND "
                       "status = 'sent'" % kind)) >= n:
            return True
        time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--outage", type=int, default=60)
    ap.add_argument("--outage-messages", type=int, default=500)
    ap.add_argument("--senders", type=int, default=2)
    ap.add_argument("--retry-base-ms", type=int, default=30000)
    args = ap.parse_args()

    smtp = SmtpServer(count_only=True).start()
    with creneau_stack.Stack(log_level="notice") as s:
        os.makedirs(os.path.join(s.home, "config"), exist_ok=True)
        with open(os.path.join(s.home, "config", "notifications.env"),
                  "w") as f:
            f.write("CRENEAU_MAIL_URL=%s\nCRENEAU_MAIL_SENDERS=%d\n"
                    "CRENEAU_MAIL_RETRY_BASE_MS=%d\n"
                    % (smtp.url, args.senders, args.retry_base_ms))
        s.stop_service("notifications")
        s.start_service("notifications")
        s.wait_healthy(timeout=30)
        env = dict(os.environ)
        env.update(s.env("creneauctl"))
        prog = os.path.join(creneau_stack.BUILD_DIR, "tests", "bin",
                            "notifications_rpc")
        subprocess.run([prog, "SendOperatorMessage", json.dumps({
            "to": "template@example.org", "to_name": "Élodie Brûlé",
            "subject": "Votre rendez-vous est confirmé",
            "body": "Bonjour,\n" + "Texte du message. " * 60 + "\n"})],
            env=env, check=True, capture_output=True)
        smtp.wait_for(1, timeout=30)
        size = int(psql(s, "SELECT octet_length(body) FROM outbox WHERE kind "
                           "= 'operator_message' LIMIT 1"))

        # (1) throughput
        base = smtp.count
        t0 = time.time()
        queue(s, args.messages, "bench")
        ok = wait_sent(s, "bench", args.messages, timeout=600)
        dt = time.time() - t0
        print("notifications: %d mails of %d bytes, %d sender threads: "
              "%.1f s, %.0f mails/s%s (sink received %d)" % (
                  args.messages, size, args.senders, dt, args.messages / dt,
                  "" if ok else " (INCOMPLETE)", smtp.count - base))

        # (2) outage
        smtp.stop()
        t_down = time.time()
        queue(s, args.outage_messages, "outage")
        time.sleep(max(0, args.outage - (time.time() - t_down)))
        smtp.start()
        t_up = time.time()
        ok = wait_sent(s, "outage", args.outage_messages, timeout=3600)
        t_done = time.time()
        attempts = psql(s, "SELECT max(attempts), round(avg(attempts), 1) "
                           "FROM outbox WHERE kind = 'outage'")
        print("notifications: %d mails queued during a %d s SMTP outage: "
              "drained %.1f s after the server came back (%.1f s after "
              "queueing)%s; attempts max|avg %s; retry base %d ms" % (
                  args.outage_messages, args.outage, t_done - t_up,
                  t_done - t_down, "" if ok else " (INCOMPLETE)", attempts,
                  args.retry_base_ms))
        dup = psql(s, "SELECT count(*) FROM outbox WHERE kind IN ('bench', "
                      "'outage') AND status <> 'sent'")
        print("notifications: unsent after the run: %s" % dup)
    smtp.stop()


if __name__ == "__main__":
    main()
