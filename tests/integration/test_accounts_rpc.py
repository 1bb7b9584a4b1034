"""The accounts service's RPC interface for other daemons and the operator:
GetAccountStatus (booking), SetSubscription, CreateAdmin (creneauctl), and
the privacy interface (Export, Erase, Sweep). Driven with the accounts_rpc
helper program over the real REP socket, with the deployment key; users are
made through the gateway as usual."""

import json
import os
import subprocess
import time
import unittest

from creneau_stack import Stack, run_tests

PASSWORD = "Tr3s-b0n-mdp!"
STACK = None
SERVICE = ("", "service", "")
PROG = os.path.join(os.environ.get("CRENEAU_BUILD_DIR", ""), "tests", "bin",
                    "accounts_rpc")
_n = [0]


def rpc(method, request, principal=None):
    env = dict(os.environ)
    accounts = STACK.env("accounts")
    env["CRENEAU_RPC_KEY"] = accounts["CRENEAU_RPC_KEY"]
    env["ACCOUNTS_URLS"] = accounts["CRENEAU_LISTEN"]
    args = [PROG, method, json.dumps(request)]
    if principal:
        args += list(principal)
    out = subprocess.run(args, env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def signup(role):
    _n[0] += 1
    email = "rpc.%d.%d@example.org" % (os.getpid(), _n[0])
    status, _, body = STACK.http("POST", "/v1/accounts", body={
        "role": role, "email": email, "password": PASSWORD,
        "first_name": "Rémi", "last_name": "Petit", "accept_terms": True})
    assert status == 201, body
    return body


def verify(account):
    rc, out, _ = STACK.psql(
        "SELECT encode(payload, 'hex') FROM events_outbox WHERE topic = "
        "'account.created' AND position(convert_to('%s', 'UTF8') in payload)"
        " > 0" % account["id"], role="accounts")
    payload = bytes.fromhex(out.split()[0])
    # the token is field 6: find it by its tag and length (0x32, 43)
    i = payload.index(b"\x32\x2b")
    token = payload[i + 2:i + 2 + 43].decode()
    status, _, body = STACK.http("POST", "/v1/email-verifications/confirm",
                                 body={"token": token})
    assert status == 204, body


class AccountsRpcTest(unittest.TestCase):

    def test_account_status_for_booking(self):
        client = signup("client")
        reply = rpc("GetAccountStatus", {"account_id": client["id"]}, SERVICE)
        self.assertTrue(reply["ok"], reply)
        self.assertFalse(reply["reply"]["can_book"])  # not verified yet
        verify(client)
        reply = rpc("GetAccountStatus", {"account_id": client["id"]}, SERVICE)
        self.assertTrue(reply["reply"]["can_book"])
        pract = signup("practitioner")
        verify(pract)
        reply = rpc("GetAccountStatus", {"account_id": pract["id"]}, SERVICE)
        self.assertEqual(reply["reply"]["subscription_status"], "trial")
        self.assertTrue(reply["reply"]["listed"])
        reply = rpc("GetAccountStatus",
                    {"account_id": "00000000-0000-4000-8000-000000000000"},
                    SERVICE)
        self.assertEqual(reply["status"], "not_found")

    def test_set_subscription(self):
        pract = signup("practitioner")
        verify(pract)
        # users cannot; the operator (service role) can
        reply = rpc("SetSubscription", {"account_id": pract["id"],
                                        "subscription_status": "suspended"},
                    (pract["id"], "practitioner", ""))
        self.assertEqual(reply["status"], "forbidden")
        reply = rpc("SetSubscription", {"account_id": pract["id"],
                                        "subscription_status": "suspended"},
                    ("", "service", ""))
        self.assertTrue(reply["ok"], reply)
        status = rpc("GetAccountStatus", {"account_id": pract["id"]},
                     SERVICE)["reply"]
        self.assertFalse(status["listed"])
        reply = rpc("SetSubscription", {"account_id": pract["id"],
                                        "subscription_status": "active"},
                    ("", "service", ""))
        self.assertTrue(rpc("GetAccountStatus", {
            "account_id": pract["id"]}, SERVICE)["reply"]["listed"])
        client = signup("client")
        reply = rpc("SetSubscription", {"account_id": client["id"],
                                        "subscription_status": "active"},
                    ("", "service", ""))
        self.assertEqual(reply["status"], "not_found")

    def test_create_admin_only_by_the_operator(self):
        request = {"email": "admin.%d@example.org" % os.getpid(),
                   "password": PASSWORD, "first_name": "Ada",
                   "last_name": "Admin"}
        reply = rpc("CreateAdmin", request)
        self.assertEqual(reply["status"], "forbidden")
        reply = rpc("CreateAdmin", request, ("", "service", ""))
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["reply"]["role"], "admin")
        self.assertTrue(reply["reply"]["email_verified"])
        # and nobody signs up as an admin over HTTP
        status, _, body = STACK.http("POST", "/v1/accounts", body=dict(
            request, role="admin", email="x" + request["email"],
            accept_terms=True))
        self.assertEqual(status, 400, body)

    def test_creneauctl_admin_create(self):
        email = "ctl.admin.%d@example.org" % os.getpid()
        ctl = os.path.join(os.environ.get("CRENEAU_BUILD_DIR", ""), "bin",
                           "creneauctl")
        env = dict(os.environ)
        env.update(STACK.env("creneauctl"))
        out = subprocess.run([ctl, "admin", "create", email, "Ada", "Admin"],
                             input=PASSWORD + "\n", env=env, text=True,
                             capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("admin created id=", out.stdout)
        self.assertNotIn(PASSWORD, out.stdout + out.stderr)
        status, _, session = STACK.http("POST", "/v1/sessions", body={
            "email": email, "password": PASSWORD})
        self.assertEqual(status, 201, session)
        self.assertEqual(session["account"]["role"], "admin")
        # a weak password is refused, naming the field
        out = subprocess.run([ctl, "admin", "create", "x" + email, "A", "B"],
                             input="azerty\n", env=env, text=True,
                             capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn("weak_password", out.stderr)

    def test_export_and_erase(self):
        client = signup("client")
        status, _, session = STACK.http("POST", "/v1/sessions", body={
            "email": client["email"], "password": PASSWORD})
        self.assertEqual(status, 201)
        reply = rpc("Export", {"subject": {"account_id": client["id"]}},
                    SERVICE)
        doc = json.loads(reply["reply"]["document"])
        self.assertEqual(doc["account"]["email"], client["email"])
        self.assertNotIn("password_hash", doc["account"])
        self.assertEqual(doc["account"]["language"], "fr")
        self.assertEqual(len(doc["sessions"]), 1)
        self.assertEqual(doc["connection_log"][-1]["outcome"], "success")
        reply = rpc("Erase", {"subject": {"account_id": client["id"]}},
                    SERVICE)
        self.assertEqual(reply["reply"]["erased"], 1)
        time.sleep(1.0)
        status, _, _ = STACK.http("GET", "/v1/me", headers={
            "Authorization": "Bearer " + session["token"]})
        self.assertEqual(status, 401)
        reply = rpc("Export", {"subject": {"account_id": client["id"]}},
                    SERVICE)
        self.assertIsNone(json.loads(reply["reply"]["document"])["account"])

    def test_internal_methods_for_services_only(self):
        """GetAccountStatus and the privacy interface answer only the
        service role: an anonymous or a user's envelope (signed all the
        same) is FORBIDDEN and changes nothing."""
        client = signup("client")
        STACK.http("POST", "/v1/sessions", body={
            "email": client["email"], "password": "Wrong-pass-123"})
        subject = {"subject": {"account_id": client["id"]}}
        cutoff = int(time.time() * 1000) + 1000
        calls = (("GetAccountStatus", {"account_id": client["id"]}),
                 ("Export", subject), ("Erase", subject),
                 ("Sweep", {"category": "connection_log",
                            "cutoff_ms": cutoff}))
        for principal in (None, ("", "none", ""),
                          (client["id"], "client", ""),
                          (client["id"], "practitioner", ""),
                          (client["id"], "admin", "")):
            for method, request in calls:
                reply = rpc(method, request, principal)
                self.assertEqual(reply.get("status"), "forbidden",
                                 (method, principal, reply))
                self.assertNotIn("reply", reply)
        # nothing changed: the account and its connection log are there
        rc, out, _ = STACK.psql("SELECT count(*) FROM accounts WHERE id = "
                                "'%s'" % client["id"], role="accounts")
        self.assertEqual(out.strip(), "1")
        rc, out, _ = STACK.psql("SELECT count(*) FROM connection_log",
                                role="accounts")
        self.assertGreater(int(out), 0)
        status, _, session = STACK.http("POST", "/v1/sessions", body={
            "email": client["email"], "password": PASSWORD})
        self.assertEqual(status, 201, session)

    def test_sweep_connection_log(self):
        client = signup("client")
        STACK.http("POST", "/v1/sessions", body={
            "email": client["email"], "password": "Wrong-pass-123"})
        rc, out, _ = STACK.psql("SELECT count(*) FROM connection_log",
                                role="accounts")
        self.assertGreater(int(out), 0)
        reply = rpc("Sweep", {"category": "connection_log",
                              "cutoff_ms": int(time.time() * 1000) + 1000},
                    SERVICE)
        self.assertTrue(reply["ok"], reply)
        self.assertGreater(reply["reply"]["erased"], 0)
        rc, out, _ = STACK.psql("SELECT count(*) FROM connection_log",
                                role="accounts")
        self.assertEqual(int(out), 0)
        reply = rpc("Sweep", {"category": "bookings", "cutoff_ms": 1},
                    SERVICE)
        self.assertEqual(reply["status"], "invalid")


def setUpModule():
    global STACK
    STACK = Stack()
    STACK.up()


def tearDownModule():
    if STACK is not None:
        STACK.down()


if __name__ == "__main__":
    run_tests()
