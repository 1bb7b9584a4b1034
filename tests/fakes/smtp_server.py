"""smtp_server - a real SMTP server for the tests (aiosmtpd, Debian's python3-aiosmtpd).

It records what it receives and answers, on demand, temporary (4xx) or
permanent (5xx) failures:

    from smtp_server import SmtpServer
    with SmtpServer() as smtp:             # 127.0.0.1, a free port
        smtp.url                           # "smtp://127.0.0.1:<port>"
        smtp.plan_data("451 4.3.0 try later", "451 4.3.0 try later",
                       rcpt="x@example.org")
                                           # the next two DATA answers (for
                                           # mail to that recipient)
        smtp.reject_rcpt("x@example.org", "550 5.1.1 no such user")
        smtp.wait_for(1, timeout=10)       # -> list of received messages
        m = smtp.messages[0]               # .mail_from .rcpt_tos .data
                                           # .message (email.message.Message)
        smtp.stop(); smtp.start()          # an outage (connections refused)

With TLS and authentication (STARTTLS required, AUTH only over TLS):
    cert, key = make_certificate(tmpdir)   # self-signed for 127.0.0.1
    SmtpServer(tls=(cert, key), credentials=("user", "secret"))
    smtp.logins                            # [(mechanism, login)] accepted

Run alone it is a sink that counts messages (for the benchmark):
    /usr/bin/python3 tests/fakes/smtp_server.py --port 2525
"""
import argparse
import email
import email.policy
import os
import socket
import ssl
import subprocess
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1 (openssl CLI): (cert, key)."""
    cert = os.path.join(directory, "smtp-cert.pem")
    key = os.path.join(directory, "smtp-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class Received:
    def __init__(self, mail_from, rcpt_tos, data):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.data = data
        self.time = time.time()
        self.message = email.message_from_bytes(data, policy=email.policy.default)

    @property
    def message_id(self):
        return self.message["Message-ID"]


class _Handler:
    def __init__(self, owner):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self.owner._rcpt_rules.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        o = self.owner
        with o._cond:
            o.data_commands += 1
            plan = o._planned
            for rcpt in envelope.rcpt_tos:
                if o._planned_for.get(rcpt.lower()):
                    plan = o._planned_for[rcpt.lower()]
            if plan:
                answer = plan.pop(0)
                if not answer.startswith("2"):
                    o.refused.append(answer)
                    return answer
            if o.count_only:
                o.count += 1
            else:
                o.messages.append(Received(envelope.mail_from, envelope.rcpt_tos,
                                           envelope.content))
            o._cond.notify_all()
        return "250 2.0.0 queued"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    def __init__(self, port=None, count_only=False, tls=None,
                 credentials=None):
        self.port = port or free_port()
        self.tls = tls
        self.credentials = credentials
        self.logins = []
        self.count_only = count_only
        self.count = 0
        self.messages = []
        self.refused = []
        self.data_commands = 0
        self._planned = []
        self._planned_for = {}
        self._rcpt_rules = {}
        self._cond = threading.Condition()
        self._controller = None

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def _authenticate(self, server, session, envelope, mechanism, data):
        if (isinstance(data, LoginPassword) and self.credentials and
                (data.login.decode(), data.password.decode()) ==
                tuple(self.credentials)):
            self.logins.append((mechanism, data.login.decode()))
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self):
        kwargs = {}
        if self.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*self.tls)
            kwargs.update(tls_context=ctx, require_starttls=True)
        if self.credentials:
            kwargs.update(authenticator=self._authenticate,
                          auth_required=True, auth_require_tls=True)
        self._controller = Controller(_Handler(self), hostname="127.0.0.1",
                                      port=self.port, ready_timeout=10,
                                      data_size_limit=64 * 1024 * 1024,
                                      **kwargs)
        self._controller.start()
        return self

    def stop(self):
        if self._controller:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def plan_data(self, *answers, rcpt=None):
        """The next DATA commands (of mail to rcpt, or of any mail) get
        these answers ("250 ..." accepts)."""
        with self._cond:
            if rcpt:
                self._planned_for.setdefault(rcpt.lower(), []).extend(answers)
            else:
                self._planned.extend(answers)

    def reject_rcpt(self, address, answer="550 5.1.1 no such user"):
        with self._cond:
            self._rcpt_rules[address.lower()] = answer

    def wait_for(self, n, timeout=30):
        """Waits until n messages have arrived; returns them (maybe fewer)."""
        deadline = time.time() + timeout
        with self._cond:
            while len(self.messages) + self.count < n:
                left = deadline - time.time()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.messages)


def main():
    ap = argparse.ArgumentParser(description="SMTP sink that counts messages")
    ap.add_argument("--port", type=int, default=2525)
    args = ap.parse_args()
    s = SmtpServer(args.port, count_only=True).start()
    print("listening smtp://127.0.0.1:%d" % s.port, flush=True)
    try:
        last = 0
        while True:
            time.sleep(1)
            if s.count != last:
                print("received %d" % s.count, flush=True)
                last = s.count
    except KeyboardInterrupt:
        s.stop()


if __name__ == "__main__":
    main()
