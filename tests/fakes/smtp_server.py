"""smtp_server - a real SMTP server for the tests (aiosmtpd, Debian's python3-aiosmtpd).

It records what it receives and answers, on demand, temporary (4xx) or
permanent (5xx) failures:

    from smtp_server import SmtpServer
    with SmtpServer() as smtp:             # 127.0.0.1, a free port
        smtp.url                           # "smtp://127.0.0.1:<port>"
        smtp.plan_data("451 4.3.0 try later", "451 4.3.0 try later")
                                           # the next two DATA answers
        smtp.reject_rcpt("x@example.org", "550 5.1.1 no such user")
        smtp.wait_for(1, timeout=10)       # -> list of received messages
        m = smtp.messages[0]               # .mail_from .rcpt_tos .data
                                           # .message (email.message.Message)
        smtp.stop(); smtp.start()          # an outage (connections refused)

Run alone it is a sink that counts messages (for the benchmark):
    /usr/bin/python3 tests/fakes/smtp_server.py --port 2525
"""
import argparse
import email
import email.policy
import socket
import threading
import time

from aiosmtpd.controller import Controller


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
            if o._planned:
                answer = o._planned.pop(0)
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
    def __init__(self, port=None, count_only=False):
        self.port = port or free_port()
        self.count_only = count_only
        self.count = 0
        self.messages = []
        self.refused = []
        self.data_commands = 0
        self._planned = []
        self._rcpt_rules = {}
        self._cond = threading.Condition()
        self._controller = None

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def start(self):
        self._controller = Controller(_Handler(self), hostname="127.0.0.1",
                                      port=self.port, ready_timeout=10,
                                      data_size_limit=64 * 1024 * 1024)
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

    def plan_data(self, *answers):
        """The next DATA commands get these answers ("250 ..." accepts)."""
        with self._cond:
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
