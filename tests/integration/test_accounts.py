"""Accounts and authentication through the gateway (issue 4).

One stack for the module; accounts runs with a short login-throttling window
(config/accounts.env) so that throttling can be seen to engage and release.
Tokens that the notifications service would e-mail are read from the
accounts outbox (the event payload), so the flows do not depend on mail; the
verification and reset mails themselves are checked in their own tests.
"""

import glob
import json
import os
import re
import sys
import time
import unittest

import creneau_users as users
from creneau_stack import Stack, run_tests
from creneau_users import PASSWORD

STACK = None
_counter = [0]


def unique_email(tag="user"):
    _counter[0] += 1
    return users.unique_email(tag, "Example.org")


def outbox_events(topic):
    return users.outbox_events(STACK, topic)


def verification_token(account_id):
    return users.verification_token(STACK, account_id)


def reset_token(account_id):
    for ev in reversed(outbox_events("password_reset.requested")):
        if ev.get(1) == account_id:
            return ev[4]
    raise AssertionError("no reset event for %s" % account_id)


def http(method, path, body=None, token=None, headers=None, raw=None):
    return users.http(STACK, method, path, body, token, headers, raw=raw)


def signup(role="client", email=None, password=PASSWORD, **extra):
    return users.signup(STACK, role, email or unique_email(role), password,
                        **extra)


def verify(account):
    users.verify(STACK, account["id"])


def login(email, password=PASSWORD, headers=None):
    return users.login(STACK, email, password, headers)


def new_user(role="client", verified=True):
    return users.new_user(STACK, role, verified, email=unique_email(role))


def practice(display_name, specialties, city, postcode, region, bio=""):
    return {"display_name": display_name, "specialties": specialties,
            "city": city, "postcode": postcode, "region": region,
            "bio": bio, "languages": ["fr"]}


def wait_for_mail(needle, timeout=15):
    """Text of the first mail under the stack's mail dir containing needle,
    or None after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in glob.glob(os.path.join(STACK.mail_dir, "**", "*"),
                              recursive=True):
            if not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            unfolded = re.sub(r"=\r?\n", "", text)
            if needle in unfolded or needle in text:
                return unfolded
        time.sleep(0.2)
    return None


class AccountsTest(unittest.TestCase):

    # ---- sign-up, verification, sessions ----

    def test_signup_verify_login_me_logout(self):
        email = unique_email("flow")
        account = signup(email=email, phone="06 12 34 56 78",
                         address="3 rue des Lilas, 69001 Lyon")
        self.assertEqual(account["email"], email.lower())
        self.assertFalse(account["email_verified"])
        self.assertEqual(account["phone"], "+33612345678")
        self.assertEqual(account["role"], "client")
        self.assertTrue(account["terms_accepted_at"])
        self.assertNotIn("password", account)
        verify(account)
        session, hdrs = login(email.upper())
        for key in ("token", "csrf_token", "expires_at", "account"):
            self.assertTrue(session[key], key)
        self.assertTrue(session["account"]["email_verified"])
        cookie = hdrs["Set-Cookie"]
        self.assertIn("creneau_session=" + session["token"], cookie)
        for attr in ("HttpOnly", "Secure", "SameSite=Lax"):
            self.assertIn(attr, cookie)
        status, _, me = http("GET", "/v1/me", token=session["token"])
        self.assertEqual(status, 200, me)
        self.assertEqual(me["id"], account["id"])
        status, _, _ = http("DELETE", "/v1/sessions/current",
                            token=session["token"])
        self.assertEqual(status, 204)
        status, _, body = http("GET", "/v1/me", token=session["token"])
        self.assertEqual(status, 401, body)
        # the token itself never reaches a log
        for service in ("accounts", "gateway"):
            self.assertNotIn(session["token"], STACK.log(service))
            self.assertNotIn(email.lower(), STACK.log(service))

    def test_verification_token_single_use(self):
        account = signup()
        token = verification_token(account["id"])
        self.assertEqual(http("POST", "/v1/email-verifications/confirm",
                              {"token": token})[0], 204)
        status, _, body = http("POST", "/v1/email-verifications/confirm",
                               {"token": token})
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["field"], "token")
        status, _, body = http("POST", "/v1/email-verifications/confirm",
                               {"token": "not-a-token"})
        self.assertEqual(status, 400)

    def test_resend_verification(self):
        account = signup()
        session, _ = login(account["email"])
        token = session["token"]
        # a link was just sent: the next one waits a minute
        status, hdrs, body = http("POST", "/v1/email-verifications",
                                  token=token)
        self.assertEqual(status, 429, body)
        self.assertGreater(int(hdrs["Retry-After"]), 0)
        rc, _, err = STACK.psql(
            "UPDATE tokens SET created_at = now() - interval '2 minutes' "
            "WHERE account_id = '%s'" % account["id"], role="accounts")
        self.assertEqual(rc, 0, err)
        first = verification_token(account["id"])
        status, _, body = http("POST", "/v1/email-verifications", token=token)
        self.assertEqual(status, 202, body)
        second = verification_token(account["id"])
        self.assertNotEqual(first, second)
        # the old link is dead, the new one works
        self.assertEqual(http("POST", "/v1/email-verifications/confirm",
                              {"token": first})[0], 400)
        self.assertEqual(http("POST", "/v1/email-verifications/confirm",
                              {"token": second})[0], 204)
        status, _, body = http("POST", "/v1/email-verifications", token=token)
        self.assertEqual(status, 409, body)
        self.assertEqual(http("POST", "/v1/email-verifications")[0], 401)

    def test_verification_mail(self):
        account = signup()
        token = verification_token(account["id"])
        mail = wait_for_mail(token)
        if mail is None and not glob.glob(os.path.join(STACK.mail_dir, "*")):
            self.skipTest("notifications writes no mail yet")
        self.assertIsNotNone(mail, "no mail carries the verification link")
        self.assertIn(account["email"], mail)

    def test_mail_language(self):
        # refused values name the field and create nothing
        for value in ("de", "EN", "english", 5):
            email = unique_email("lang")
            status, _, body = http("POST", "/v1/accounts", {
                "role": "client", "email": email, "password": PASSWORD,
                "first_name": "A", "last_name": "B", "accept_terms": True,
                "language": value})
            self.assertEqual(status, 400, (value, body))
            self.assertEqual(body["error"]["field"], "language", body)
            self.assertEqual(http("POST", "/v1/sessions", {
                "email": email, "password": PASSWORD})[0], 401)
        # French unless told otherwise
        self.assertEqual(signup()["language"], "fr")
        self.assertEqual(signup(language="")["language"], "fr")
        # an English-speaking account gets its verification mail in English
        account = signup(first_name="Ann", language="en")
        self.assertEqual(account["language"], "en")
        created = [ev for ev in outbox_events("account.created")
                   if ev.get(1) == account["id"]]
        self.assertEqual(created[-1].get(9), "en")
        token = verification_token(account["id"])
        mail = wait_for_mail(token)
        self.assertIsNotNone(mail, "no mail carries the verification link")
        self.assertIn("Subject: Confirm your e-mail address", mail)
        self.assertIn("Hello Ann", mail)
        self.assertNotIn("Bonjour", mail)
        verify(account)
        session, _ = login(account["email"])
        token = session["token"]
        self.assertEqual(session["account"]["language"], "en")
        # ... and its reset mail
        self.assertEqual(http("POST", "/v1/password-resets",
                              {"email": account["email"]})[0], 202)
        mail = wait_for_mail(reset_token(account["id"]))
        self.assertIsNotNone(mail, "no mail carries the reset link")
        self.assertIn("Subject: Resetting your password", mail)
        self.assertIn("Hello Ann", mail)
        self.assertNotIn("Bonjour", mail)
        # PATCH /v1/me changes it; bad values change nothing
        for value in ("", "de", "FR"):
            status, _, body = http("PATCH", "/v1/me", {"language": value},
                                   token=token)
            self.assertEqual(status, 400, (value, body))
            self.assertEqual(body["error"]["field"], "language", body)
        status, _, me = http("GET", "/v1/me", token=token)
        self.assertEqual(me["language"], "en")
        status, _, me = http("PATCH", "/v1/me", {"language": "fr"},
                             token=token)
        self.assertEqual(status, 200, me)
        self.assertEqual(me["language"], "fr")
        self.assertEqual(me["first_name"], "Ann")  # untouched
        updated = [ev for ev in outbox_events("account.updated")
                   if ev.get(1) == account["id"]]
        self.assertEqual(updated[-1].get(7), "fr")
        # one reset mail per address per interval: make the first one old
        STACK.psql("UPDATE connection_log SET at = at - interval '1 day' "
                   "WHERE outcome = 'reset_requested' AND account_id = '%s'"
                   % account["id"], role="accounts")
        self.assertEqual(http("POST", "/v1/password-resets",
                              {"email": account["email"]})[0], 202)
        mail = wait_for_mail(reset_token(account["id"]))
        self.assertIsNotNone(mail, "no mail carries the reset link")
        self.assertIn("Bonjour Ann", mail)
        self.assertNotIn("Hello", mail)
        # a new address and a new language at once: the link comes in the
        # new language
        new_email = unique_email("lang-moved")
        status, _, me = http("PATCH", "/v1/me", {
            "email": new_email, "language": "en"}, token=token)
        self.assertEqual(status, 200, me)
        self.assertEqual(me["language"], "en")
        mail = wait_for_mail(verification_token(account["id"]))
        self.assertIsNotNone(mail, "no mail carries the new address's link")
        self.assertIn(new_email.lower(), mail)
        self.assertIn("Subject: Confirm your e-mail address", mail)
        self.assertNotIn("Bonjour", mail)

    def test_duplicate_email_any_case(self):
        email = unique_email("dup")
        signup(email=email)
        for variant in (email, email.upper(), " " + email.lower() + " "):
            status, _, body = http("POST", "/v1/accounts", {
                "role": "practitioner", "email": variant,
                "password": PASSWORD, "first_name": "A", "last_name": "B",
                "accept_terms": True})
            self.assertEqual(status, 409, body)
            self.assertEqual(body["error"]["field"], "email")

    def test_signup_idempotency_key(self):
        body = {"role": "client", "email": unique_email("idem"),
                "password": PASSWORD, "first_name": "I", "last_name": "K",
                "accept_terms": True}
        key = {"Idempotency-Key": "signup-%d-%d" % (os.getpid(), _counter[0])}
        status, _, first = http("POST", "/v1/accounts", body, headers=key)
        self.assertEqual(status, 201, first)
        status, _, again = http("POST", "/v1/accounts", body, headers=key)
        self.assertEqual(status, 201, again)
        self.assertEqual(again["id"], first["id"])
        status, _, other = http("POST", "/v1/accounts", body, headers={
            "Idempotency-Key": "another-key"})
        self.assertEqual(status, 409, other)
        self.assertEqual(len([ev for ev in outbox_events("account.created")
                              if ev.get(1) == first["id"]]), 1)

    def test_signup_idempotency_key_bound_to_request(self):
        body = {"role": "client", "email": unique_email("idem-bound"),
                "password": PASSWORD, "first_name": "Iris",
                "last_name": "Karl", "phone": "+33612345678",
                "address": "3 rue Secrète, Nantes", "accept_terms": True}
        key = {"Idempotency-Key": "bound-%d-%d" % (os.getpid(), _counter[0])}
        status, _, first = http("POST", "/v1/accounts", body, headers=key)
        self.assertEqual(status, 201, first)
        # another body with the same key and e-mail
        status, _, other = http("POST", "/v1/accounts",
                                dict(body, first_name="Autre"), headers=key)
        self.assertEqual(status, 422, other)
        self.assertEqual(other["error"]["code"], "idempotency_key_reused")
        # the same body with another password: nothing of the account shows
        status, _, guess = http("POST", "/v1/accounts",
                                dict(body, password="Autre#mot2passe"),
                                headers=key)
        self.assertEqual(status, 422, guess)
        self.assertEqual(guess["error"]["code"], "idempotency_key_reused")
        text = json.dumps(guess, ensure_ascii=False)
        for secret in (first["id"], "Iris", "Karl", "+33612345678",
                       "Secrète"):
            self.assertNotIn(secret, text)
        # the true replay still gets its account back
        status, _, again = http("POST", "/v1/accounts", body, headers=key)
        self.assertEqual(status, 201, again)
        self.assertEqual(again["id"], first["id"])
        # the key is scoped to its e-mail: another user may use it too
        status, _, second = http("POST", "/v1/accounts", dict(
            body, email=unique_email("idem-other")), headers=key)
        self.assertEqual(status, 201, second)
        self.assertNotEqual(second["id"], first["id"])

    def test_weak_passwords_refused(self):
        email = unique_email("weak")
        local = email.split("@")[0]
        for password in ("court1!", "seulementdeslettres", "123456789012",
                         "sanschiffre!!", "Azerty123!", "P@ssw0rd2024",
                         "X" + local + "9!"):
            status, _, body = http("POST", "/v1/accounts", {
                "role": "client", "email": email, "password": password,
                "first_name": "A", "last_name": "B", "accept_terms": True})
            self.assertEqual(status, 400, (password, body))
            self.assertEqual(body["error"]["field"], "password")
        # nothing was created
        status, _, _ = http("POST", "/v1/sessions",
                            {"email": email, "password": "Azerty123!"})
        self.assertEqual(status, 401)

    def test_bad_input_names_the_field(self):
        good = {"role": "client", "email": unique_email("bad"),
                "password": PASSWORD, "first_name": "A", "last_name": "B",
                "accept_terms": True}
        cases = [("role", "admin"), ("role", "robot"), ("email", "nope"),
                 ("first_name", ""), ("last_name", "x" * 101),
                 ("phone", "12ab"), ("accept_terms", False),
                 ("address", "y" * 400)]
        for field, value in cases:
            body = dict(good, **{field: value})
            status, _, reply = http("POST", "/v1/accounts", body)
            self.assertIn(status, (400, 413), (field, reply))
            self.assertEqual(reply["error"]["field"], field, reply)
        # wrong JSON type
        status, _, reply = http("POST", "/v1/accounts",
                                dict(good, accept_terms="yes"))
        self.assertEqual(status, 400)
        self.assertEqual(reply["error"]["field"], "accept_terms")
        # unknown fields are ignored
        status, _, reply = http("POST", "/v1/accounts",
                                dict(good, favourite_colour="blue"))
        self.assertEqual(status, 201, reply)
        # SQL goes through parameters only
        status, _, reply = http("GET", "/v1/practitioners?q=%27%3B+DROP+"
                                "TABLE+accounts%3B+--")
        self.assertEqual(status, 200, reply)

    def test_login_one_message_for_any_failure(self):
        account, _ = new_user()
        status1, _, body1 = http("POST", "/v1/sessions", {
            "email": account["email"], "password": "Wrong-pass-123"})
        status2, _, body2 = http("POST", "/v1/sessions", {
            "email": unique_email("ghost"), "password": "Wrong-pass-123"})
        self.assertEqual((status1, status2), (401, 401))
        self.assertEqual(body1["error"], body2["error"])
        # the same time taken, give or take: an unknown e-mail still pays
        # for one argon2id verification
        def timed(email):
            start = time.monotonic()
            http("POST", "/v1/sessions",
                 {"email": email, "password": "Wrong-pass-123"},
                 headers={"X-Real-IP": "198.51.100.%d" % (_counter[0] % 200)})
            return time.monotonic() - start
        # two tries each: a third failure would reach the (test) limit of
        # three per e-mail and answer 429 at once
        known = min(timed(account["email"]) for _ in range(2))
        unknown = min(timed(unique_email("ghost")) for _ in range(2))
        self.assertLess(abs(known - unknown),
                        max(known, unknown) * 0.75 + 0.05)

    def test_throttling_engages_and_releases(self):
        account, _ = new_user()
        ip = {"X-Real-IP": "203.0.113.7"}
        for _ in range(3):
            status, _, _ = http("POST", "/v1/sessions", {
                "email": account["email"], "password": "Wrong-pass-123"},
                headers=ip)
            self.assertEqual(status, 401)
        status, hdrs, body = http("POST", "/v1/sessions", {
            "email": account["email"], "password": PASSWORD}, headers=ip)
        self.assertEqual(status, 429, body)
        self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        time.sleep(int(hdrs["Retry-After"]) + 0.5)
        status, _, body = http("POST", "/v1/sessions", {
            "email": account["email"], "password": PASSWORD}, headers=ip)
        self.assertEqual(status, 201, body)
        # every attempt is in the connection log, with its time and category
        rc, out, err = STACK.psql(
            "SELECT outcome, sweep_category FROM connection_log "
            "WHERE account_id = '%s' OR client_ip = '203.0.113.7' "
            "ORDER BY at" % account["id"], role="accounts")
        self.assertEqual(rc, 0, err)
        outcomes = [line.split("|")[0] for line in out.split()]
        self.assertIn("bad_credentials", outcomes)
        self.assertIn("throttled", outcomes)
        self.assertEqual(outcomes[-1], "success")
        self.assertTrue(all(line.endswith("|connection_log")
                            for line in out.split()))

    def test_throttling_per_ip(self):
        ip = {"X-Real-IP": "192.0.2.99"}
        codes = []
        for _ in range(8):
            status, _, _ = http("POST", "/v1/sessions", {
                "email": unique_email("spray"), "password": "Wrong-pass-1"},
                headers=ip)
            codes.append(status)
        self.assertIn(429, codes)
        self.assertEqual(codes[0], 401)

    def test_sessions_list_and_revoke_within_a_second(self):
        account, token_a = new_user()
        session_b, _ = login(account["email"])
        token_b = session_b["token"]
        status, _, listed = http("GET", "/v1/me/sessions", token=token_a)
        self.assertEqual(status, 200)
        self.assertEqual(len(listed["items"]), 2)
        self.assertEqual(sum(1 for s in listed["items"] if s["current"]), 1)
        other = [s for s in listed["items"] if not s["current"]][0]
        # B is validated and cached by the gateway
        self.assertEqual(http("GET", "/v1/me", token=token_b)[0], 200)
        status, _, _ = http("DELETE", "/v1/me/sessions/" + other["id"],
                            token=token_a)
        self.assertEqual(status, 204)
        revoked_at = time.monotonic()
        while True:
            # a request sent a second or more after the revocation
            # answered must fail
            sent = time.monotonic() - revoked_at
            status = http("GET", "/v1/me", token=token_b)[0]
            if status == 401:
                break
            self.assertEqual(status, 200)
            self.assertLess(sent, 1.0, "revoked session still works")
            time.sleep(0.05)
        self.assertEqual(http("GET", "/v1/me", token=token_a)[0], 200)

    def test_cookie_and_csrf(self):
        account, _ = new_user()
        session, hdrs = login(account["email"])
        cookie = {"Cookie": "theme=dark; creneau_session=" + session["token"]}
        status, _, me = http("GET", "/v1/me", headers=cookie)
        self.assertEqual(status, 200, me)
        status, _, body = http("PATCH", "/v1/me", {"first_name": "Zoé"},
                               headers=cookie)
        self.assertEqual(status, 403, body)
        status, _, body = http("PATCH", "/v1/me", {"first_name": "Zoé"},
                               headers=dict(cookie, **{
                                   "X-CSRF-Token": "x" * 43}))
        self.assertEqual(status, 403, body)
        status, _, body = http("PATCH", "/v1/me", {"first_name": "Zoé"},
                               headers=dict(cookie, **{
                                   "X-CSRF-Token": session["csrf_token"]}))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["first_name"], "Zoé")
        # a route open to anyone still works, anonymously, without the
        # CSRF token: signing in again from the same browser
        status, _, body = http("POST", "/v1/sessions", {
            "email": account["email"], "password": PASSWORD}, headers=cookie)
        self.assertEqual(status, 201, body)
        status, hdrs, _ = http("DELETE", "/v1/sessions/current",
                               headers=dict(cookie, **{
                                   "X-CSRF-Token": session["csrf_token"]}))
        self.assertEqual(status, 204)
        self.assertIn("Max-Age=0", hdrs["Set-Cookie"])

    # ---- password reset, profile, password change ----

    def test_reset_flow(self):
        account, token = new_user()
        status, _, _ = http("POST", "/v1/password-resets",
                            {"email": account["email"].upper()})
        self.assertEqual(status, 202)
        status, _, body = http("POST", "/v1/password-resets",
                               {"email": unique_email("nobody")})
        self.assertEqual(status, 202, body)
        reset = reset_token(account["id"])
        mail = wait_for_mail(reset, timeout=10)
        if mail is not None:
            self.assertIn(account["email"], mail)
        status, _, body = http("POST", "/v1/password-resets/confirm",
                               {"token": reset, "password": "faible"})
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["field"], "password")
        new_password = "Nouveau#mot2passe"
        status, _, body = http("POST", "/v1/password-resets/confirm",
                               {"token": reset, "password": new_password})
        self.assertEqual(status, 204, body)
        # single use
        status, _, _ = http("POST", "/v1/password-resets/confirm",
                            {"token": reset, "password": "Encore#un2autre"})
        self.assertEqual(status, 400)
        # every session revoked (within the gateway's second)
        time.sleep(1.0)
        self.assertEqual(http("GET", "/v1/me", token=token)[0], 401)
        self.assertEqual(http("POST", "/v1/sessions", {
            "email": account["email"], "password": PASSWORD})[0], 401)
        login(account["email"], new_password)

    def test_reset_once_per_interval(self):
        account, _ = new_user()
        before = [ev for ev in outbox_events("password_reset.requested")
                  if ev.get(1) == account["id"]]
        self.assertEqual(before, [])
        for email in (account["email"], account["email"].upper()):
            status, _, body = http("POST", "/v1/password-resets",
                                   {"email": email})
            self.assertEqual(status, 202, body)
        sent = [ev for ev in outbox_events("password_reset.requested")
                if ev.get(1) == account["id"]]
        self.assertEqual(len(sent), 1)
        rc, out, err = STACK.psql(
            "SELECT count(*) FROM tokens WHERE purpose = 'reset_password' "
            "AND account_id = '%s'" % account["id"], role="accounts")
        self.assertEqual((rc, out.strip()), (0, "1"), err)
        # the first link still works
        status, _, body = http("POST", "/v1/password-resets/confirm", {
            "token": sent[0][4], "password": "Nouveau#mot2passe"})
        self.assertEqual(status, 204, body)
        # an unknown address answers the same, twice
        ghost = unique_email("ghost-twice")
        for _ in range(2):
            self.assertEqual(http("POST", "/v1/password-resets",
                                  {"email": ghost})[0], 202)

    def test_reset_per_client_address(self):
        ip = {"X-Real-IP": "198.51.100.77"}
        codes = []
        for _ in range(5):
            status, hdrs, _ = http("POST", "/v1/password-resets",
                                   {"email": unique_email("flood")},
                                   headers=ip)
            codes.append(status)
        self.assertEqual(codes[:4], [202] * 4)
        self.assertEqual(codes[4], 429)
        self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        # another address is not concerned
        self.assertEqual(http("POST", "/v1/password-resets",
                              {"email": unique_email("flood")},
                              headers={"X-Real-IP": "198.51.100.78"})[0], 202)

    def test_reset_mail_only_when_account_exists(self):
        before = len(outbox_events("password_reset.requested"))
        ghost = unique_email("ghost")
        self.assertEqual(http("POST", "/v1/password-resets",
                              {"email": ghost})[0], 202)
        self.assertEqual(len(outbox_events("password_reset.requested")),
                         before)

    def test_profile_update_and_email_reverification(self):
        account, token = new_user()
        status, _, me = http("PATCH", "/v1/me", {
            "first_name": "Léa", "phone": "+33 1 45 67 89 01",
            "address": "1 place Bellecour, Lyon"}, token=token)
        self.assertEqual(status, 200, me)
        self.assertEqual((me["first_name"], me["phone"]),
                         ("Léa", "+33145678901"))
        self.assertEqual(me["last_name"], "Durand")  # untouched
        status, _, me = http("PATCH", "/v1/me", {"phone": ""}, token=token)
        self.assertEqual(me["phone"], "")
        new_email = unique_email("moved")
        status, _, me = http("PATCH", "/v1/me", {"email": new_email},
                             token=token)
        self.assertEqual(status, 200, me)
        # the new address counts only once verified
        self.assertEqual(me["email"], account["email"])
        self.assertEqual(me["pending_email"], new_email.lower())
        verify(account)
        status, _, me = http("GET", "/v1/me", token=token)
        self.assertEqual(me["email"], new_email.lower())
        self.assertEqual(me["pending_email"], "")
        login(new_email)
        status, _, body = http("PATCH", "/v1/me", {"first_name": ""},
                               token=token)
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["field"], "first_name")

    def test_change_password_revokes_sessions(self):
        account, token = new_user()
        status, _, body = http("PUT", "/v1/me/password", {
            "current_password": "Wrong-pass-123",
            "password": "Autre#mot2passe"}, token=token)
        self.assertEqual(status, 403, body)
        status, _, body = http("PUT", "/v1/me/password", {
            "current_password": PASSWORD, "password": "azerty"},
            token=token)
        self.assertEqual(status, 400)
        status, _, body = http("PUT", "/v1/me/password", {
            "current_password": PASSWORD, "password": "Autre#mot2passe"},
            token=token)
        self.assertEqual(status, 204, body)
        time.sleep(1.0)
        self.assertEqual(http("GET", "/v1/me", token=token)[0], 401)
        login(account["email"], "Autre#mot2passe")

    def test_current_password_guesses_throttled(self):
        account, token = new_user()
        for _ in range(3):
            status, _, body = http("PUT", "/v1/me/password", {
                "current_password": "Wrong-pass-123",
                "password": "Autre#mot2passe"}, token=token)
            self.assertEqual(status, 403, body)
        # (wrong guesses still: a slow machine cannot turn this into a
        # change)
        status, hdrs, body = http("PUT", "/v1/me/password", {
            "current_password": "Wrong-pass-456",
            "password": "Autre#mot2passe"}, token=token)
        self.assertEqual(status, 429, body)
        self.assertGreaterEqual(int(hdrs["Retry-After"]), 1)
        status, hdrs, body = http("DELETE", "/v1/me",
                                  {"password": "Wrong-pass-789"}, token=token)
        self.assertEqual(status, 429, body)
        self.assertEqual(http("GET", "/v1/me", token=token)[0], 200)
        time.sleep(int(hdrs["Retry-After"]) + 0.5)
        # released: the right password is checked again (and the weak new
        # one refused, so nothing changes)
        status, _, body = http("PUT", "/v1/me/password", {
            "current_password": PASSWORD, "password": "azerty"}, token=token)
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "password")

    # ---- practitioners ----

    def test_siret_validation(self):
        _, token = new_user("practitioner")
        company = {"legal_name": "Bien-Être SARL", "siret": "732 829 320 00074",
                   "address": "12 rue Victor Hugo, 69002 Lyon",
                   "phone": "04 72 00 00 00"}
        status, _, body = http("PUT", "/v1/me/company", company, token=token)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["siret"], "73282932000074")
        self.assertEqual(body["phone"], "+33472000000")
        for bad in ("73282932000075", "7328293200007", "abcdefghijklmn", ""):
            status, _, body = http("PUT", "/v1/me/company",
                                   dict(company, siret=bad), token=token)
            self.assertEqual(status, 400, (bad, body))
            self.assertEqual(body["error"]["field"], "siret")
        status, _, body = http("GET", "/v1/me/company", token=token)
        self.assertEqual(body["siret"], "73282932000074")

    def test_directory(self):
        tag = "dir%d" % os.getpid()
        people = {
            "kine": practice("Élodie Kinésiologue " + tag,
                             ["kinésiologie"], "Saint-Étienne", "42000",
                             "auvergne-rhone-alpes",
                             "Séances de kinésiologie et réflexologie"),
            "sophro": practice("Marc Sophrologue " + tag, ["sophrologie"],
                               "Rennes", "35000", "Bretagne",
                               "Sophrologie pour le sommeil"),
            "massage": practice("Anne Massages " + tag,
                                ["massage-bien-etre", "reiki"], "Paris",
                                "75011", "ile-de-france",
                                "Massage bien-être et reiki"),
        }
        ids = {}
        for key, body in people.items():
            account, token = new_user("practitioner")
            status, _, reply = http("PUT", "/v1/me/practice", body,
                                    token=token)
            self.assertEqual(status, 200, reply)
            ids[key] = account["id"]
        # an unverified practitioner does not appear
        hidden = signup("practitioner")
        _, hidden_token = None, login(hidden["email"])[0]["token"]
        http("PUT", "/v1/me/practice",
             practice("Caché " + tag, ["yoga"], "Lyon", "69001",
                      "auvergne-rhone-alpes"), token=hidden_token)

        def found(query):
            status, _, body = http("GET", "/v1/practitioners?" + query)
            self.assertEqual(status, 200, (query, body))
            return {item["id"] for item in body["items"]} & set(
                ids.values()) | ({hidden["id"]} & {
                    item["id"] for item in body["items"]})

        self.assertEqual(found("q=" + tag), set(ids.values()))
        self.assertEqual(found("specialty=kinesiologie"), {ids["kine"]})
        self.assertEqual(found("specialty=Kin%C3%A9siologie"), {ids["kine"]})
        self.assertEqual(found("region=bretagne"), {ids["sophro"]})
        self.assertEqual(found("city=saint-etienne"), {ids["kine"]})
        self.assertEqual(found("city=Saint-%C3%89tienne"), {ids["kine"]})
        self.assertEqual(found("postcode=75"), {ids["massage"]})
        self.assertEqual(found("q=kinesiologie"), {ids["kine"]})
        self.assertEqual(found("q=r%C3%A9flexologie"), {ids["kine"]})
        self.assertEqual(found("q=reflexologie+" + tag), {ids["kine"]})
        self.assertEqual(found("q=sommeil"), {ids["sophro"]})
        self.assertEqual(found("q=" + tag + "&specialty=reiki"),
                         {ids["massage"]})
        self.assertEqual(found("q=yoga+" + tag), set())
        status, _, body = http("GET", "/v1/practitioners?region=baviere")
        self.assertEqual(status, 400)
        self.assertEqual(body["error"]["field"], "region")
        # paging with cursors walks every match once
        seen, cursor = [], ""
        while True:
            status, _, body = http("GET", "/v1/practitioners?limit=1&q=%s%s"
                                   % (tag, "&cursor=" + cursor
                                      if cursor else ""))
            self.assertEqual(status, 200, body)
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        self.assertEqual(sorted(seen), sorted(ids.values()))
        # the public profile, and nothing for the hidden one
        status, _, body = http("GET", "/v1/practitioners/" + ids["kine"])
        self.assertEqual(status, 200)
        self.assertEqual(body["city"], "Saint-Étienne")
        self.assertNotIn("email", body)
        self.assertEqual(http("GET", "/v1/practitioners/" + hidden["id"])[0],
                         404)
        # a suspended practitioner disappears
        rc, _, err = STACK.psql(
            "UPDATE accounts SET subscription_status = 'suspended' "
            "WHERE id = '%s'" % ids["sophro"], role="accounts")
        self.assertEqual(rc, 0, err)
        self.assertEqual(found("q=" + tag), {ids["kine"], ids["massage"]})
        self.assertEqual(http("GET", "/v1/practitioners/" + ids["sophro"])[0],
                         404)

    def test_profile_lists_active_offerings(self):
        # accounts asks booking (ListPractitionerOfferings) for the profile
        account, token = new_user("practitioner")
        pid = account["id"]
        status, _, reply = http("PUT", "/v1/me/practice", practice(
            "Offres %d" % os.getpid(), ["sophrologie"], "Nantes", "44000",
            "pays-de-la-loire"), token=token)
        self.assertEqual(status, 200, reply)
        status, _, kept = http("POST", "/v1/me/offerings", {
            "title": "Sophrologie", "description": "Une séance d'une heure",
            "duration_min": 60, "price_cents": 6000, "currency": "EUR",
            "buffer_before_min": 5, "buffer_after_min": 15,
            "location": "office", "prepayment_required": True},
            token=token)
        self.assertEqual(status, 201, kept)
        status, _, retired = http("POST", "/v1/me/offerings", {
            "title": "Ancienne formule", "duration_min": 30,
            "location": "video"}, token=token)
        self.assertEqual(status, 201, retired)
        status, _, reply = http("PATCH", "/v1/me/offerings/" + retired["id"],
                                {"active": False}, token=token)
        self.assertEqual(status, 200, reply)
        status, _, body = http("GET", "/v1/practitioners/" + pid)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["city"], "Nantes")
        self.assertIs(body["offerings_unavailable"], False)
        self.assertEqual(body["offerings"], [kept])
        got = body["offerings"][0]
        for key, want in (("practitioner_id", pid), ("title", "Sophrologie"),
                          ("description", "Une séance d'une heure"),
                          ("duration_min", 60), ("price_cents", 6000),
                          ("currency", "EUR"), ("buffer_before_min", 5),
                          ("buffer_after_min", 15), ("location", "office"),
                          ("prepayment_required", True), ("active", True)):
            self.assertEqual(got[key], want, key)
        # the directory's items do not carry them
        status, _, listed = http("GET", "/v1/practitioners?q=Offres+%d"
                                 % os.getpid())
        self.assertEqual(status, 200, listed)
        self.assertEqual([(i["id"], i["offerings"]) for i in listed["items"]],
                         [(pid, [])])
        # booking down: the profile still answers, at once, without them
        STACK.stop_service("booking")
        try:
            rid = "offerings-down-%d" % os.getpid()
            started = time.monotonic()
            status, _, body = http("GET", "/v1/practitioners/" + pid,
                                   headers={"X-Request-Id": rid})
            elapsed = time.monotonic() - started
            self.assertEqual(status, 200, body)
            self.assertLess(elapsed, 3.0)
            self.assertIs(body["offerings_unavailable"], True)
            self.assertEqual(body["offerings"], [])
            self.assertEqual(body["display_name"], "Offres %d" % os.getpid())
            warned = [line for line in STACK.log("accounts").splitlines()
                      if rid in line and "offerings" in line]
            self.assertTrue(warned, "no warning with the request id")
        finally:
            STACK.start_service("booking")
        # booking back: so are the offerings (once accounts reconnected)
        deadline = time.monotonic() + 30
        while True:
            status, _, body = http("GET", "/v1/practitioners/" + pid)
            self.assertEqual(status, 200, body)
            if not body["offerings_unavailable"] or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertIs(body["offerings_unavailable"], False)
        self.assertEqual([o["id"] for o in body["offerings"]], [kept["id"]])

    def test_reference_lists(self):
        status, _, body = http("GET", "/v1/regions")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["items"]), 18)
        status, _, body = http("GET", "/v1/specialties")
        codes = {item["code"] for item in body["items"]}
        for code in ("naturopathie", "sophrologie", "kinesiologie",
                     "reflexologie", "hypnose", "shiatsu", "reiki",
                     "massage-bien-etre", "art-therapie", "yoga",
                     "meditation", "nutrition"):
            self.assertIn(code, codes)

    def test_trial_state(self):
        account, token = new_user("practitioner")
        status, _, me = http("GET", "/v1/me", token=token)
        self.assertEqual(me["subscription_status"], "trial")
        self.assertTrue(me["trial_ends_at"])

    def test_trial_lapses(self):
        account, token = new_user("practitioner")
        http("PUT", "/v1/me/practice",
             practice("Essai Fini", ["shiatsu"], "Brest", "29200",
                      "bretagne"), token=token)
        self.assertEqual(http("GET", "/v1/practitioners/" + account["id"])[0],
                         200)
        rc, _, err = STACK.psql(
            "UPDATE accounts SET trial_ends_at = now() - interval '1 second'"
            " WHERE id = '%s'" % account["id"], role="accounts")
        self.assertEqual(rc, 0, err)
        # hidden at once; the job (every second here) marks it lapsed
        self.assertEqual(http("GET", "/v1/practitioners/" + account["id"])[0],
                         404)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            me = http("GET", "/v1/me", token=token)[2]
            if me["subscription_status"] == "lapsed":
                break
            time.sleep(0.2)
        self.assertEqual(me["subscription_status"], "lapsed")
        events = [ev for ev in outbox_events("account.suspended")
                  if ev.get(1) == account["id"]]
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0].get(3), 4)  # SUBSCRIPTION_STATUS_LAPSED

    def test_outbox_tokens_blanked_once_expired(self):
        account = signup()
        token = verification_token(account["id"])
        # the link expires after CRENEAU_VERIFY_TTL_S: make the row older
        rc, _, err = STACK.psql(
            "UPDATE events_outbox SET created_at = now() - interval '3 days' "
            "WHERE topic = 'account.created' AND position(convert_to('%s', "
            "'UTF8') in payload) > 0" % account["id"], role="accounts")
        self.assertEqual(rc, 0, err)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ev = [e for e in outbox_events("account.created")
                  if e.get(1) == account["id"]][0]
            if 6 not in ev:
                break
            time.sleep(0.2)
        self.assertNotIn(6, ev, "the token is still in the outbox")
        self.assertEqual(ev[3], account["email"])  # the rest stays
        self.assertNotEqual(token, "")

    def test_favorites(self):
        pract, ptoken = new_user("practitioner")
        http("PUT", "/v1/me/practice",
             practice("Favori Naturo", ["naturopathie"], "Nantes", "44000",
                      "pays-de-la-loire"), token=ptoken)
        _, ctoken = new_user("client")
        path = "/v1/me/favorites/" + pract["id"]
        self.assertEqual(http("PUT", path, token=ctoken)[0], 204)
        self.assertEqual(http("PUT", path, token=ctoken)[0], 204)
        status, _, body = http("GET", "/v1/me/favorites", token=ctoken)
        self.assertEqual([i["id"] for i in body["items"]], [pract["id"]])
        self.assertEqual(http("PUT", "/v1/me/favorites/"
                              "00000000-0000-4000-8000-000000000000",
                              token=ctoken)[0], 404)
        self.assertEqual(http("PUT", "/v1/me/favorites/junk",
                              token=ctoken)[0], 404)
        self.assertEqual(http("GET", "/v1/me/favorites", token=ptoken)[0],
                         403)
        self.assertEqual(http("DELETE", path, token=ctoken)[0], 204)
        self.assertEqual(http("DELETE", path, token=ctoken)[0], 404)
        status, _, body = http("GET", "/v1/me/favorites", token=ctoken)
        self.assertEqual(body["items"], [])

    # ---- deletion ----

    def test_deletion(self):
        pract, ptoken = new_user("practitioner")
        http("PUT", "/v1/me/practice",
             practice("Bientôt Parti", ["hypnose"], "Lille", "59000",
                      "hauts-de-france"), token=ptoken)
        account, token = new_user("client")
        http("PUT", "/v1/me/favorites/" + pract["id"], token=token)
        status, _, body = http("DELETE", "/v1/me", {"password": "nope-Nope-1"},
                               token=token)
        self.assertEqual(status, 403, body)
        status, _, body = http("DELETE", "/v1/me", {"password": PASSWORD},
                               token=token)
        self.assertEqual(status, 202, body)
        time.sleep(1.0)
        self.assertEqual(http("GET", "/v1/me", token=token)[0], 401)
        self.assertEqual(http("POST", "/v1/sessions", {
            "email": account["email"], "password": PASSWORD})[0], 401)
        for table, column in (("accounts", "id"), ("sessions", "account_id"),
                              ("favorites", "client_id"),
                              ("tokens", "account_id")):
            rc, out, err = STACK.psql("SELECT count(*) FROM %s WHERE %s = "
                                      "'%s'" % (table, column, account["id"]),
                                      role="accounts")
            self.assertEqual((rc, out.strip()), (0, "0"), (table, err))
        deleted = [ev for ev in outbox_events("account.deleted")
                   if ev.get(1) == account["id"]]
        self.assertEqual(len(deleted), 1)
        # the address is free again
        signup(email=account["email"])

    # ---- authorisation ----

    def test_no_account_reaches_another(self):
        """Every accounts route, called with A's credentials (or none), never
        shows or changes B's data."""
        a_acc, a_tok = new_user("practitioner")
        b_acc, b_tok = new_user("practitioner")
        c_acc, c_tok = new_user("client")
        http("PUT", "/v1/me/company", {
            "legal_name": "B SAS", "siret": "73282932000074",
            "address": "B street", "phone": ""}, token=b_tok)
        http("PUT", "/v1/me/practice",
             practice("B Pratique", ["shiatsu"], "Dijon", "21000",
                      "bourgogne-franche-comte"), token=b_tok)
        b_sessions = http("GET", "/v1/me/sessions", token=b_tok)[2]["items"]
        b_sid = b_sessions[0]["id"]
        table = [
            # (method, path, body, token, expected statuses)
            ("GET", "/v1/me", None, None, {401}),
            ("PATCH", "/v1/me", {"first_name": "X"}, None, {401}),
            ("DELETE", "/v1/me", {"password": PASSWORD}, None, {401}),
            ("PUT", "/v1/me/password", {"current_password": PASSWORD,
                                        "password": "Zz#12345678"}, None,
             {401}),
            ("GET", "/v1/me/sessions", None, None, {401}),
            ("DELETE", "/v1/me/sessions/" + b_sid, None, None, {401}),
            ("DELETE", "/v1/me/sessions/" + b_sid, None, a_tok, {404}),
            ("DELETE", "/v1/sessions/current", None, None, {401}),
            ("GET", "/v1/me/company", None, None, {401}),
            ("GET", "/v1/me/company", None, c_tok, {403}),
            ("PUT", "/v1/me/company", {"legal_name": "C"}, c_tok, {403}),
            ("GET", "/v1/me/practice", None, c_tok, {403}),
            ("PUT", "/v1/me/practice", {"display_name": "C"}, c_tok, {403}),
            ("GET", "/v1/me/favorites", None, None, {401}),
            ("GET", "/v1/me/favorites", None, a_tok, {403}),
            ("PUT", "/v1/me/favorites/" + b_acc["id"], None, None, {401}),
            ("PUT", "/v1/me/favorites/" + b_acc["id"], None, a_tok, {403}),
            ("DELETE", "/v1/me/favorites/" + b_acc["id"], None, a_tok,
             {403}),
        ]
        for method, path, body, token, expected in table:
            status, _, reply = http(method, path, body, token=token)
            self.assertIn(status, expected, (method, path, reply))
        # A's own views show only A
        status, _, me = http("GET", "/v1/me", token=a_tok)
        self.assertEqual(me["id"], a_acc["id"])
        self.assertEqual(http("GET", "/v1/me/company", token=a_tok)[0], 404)
        self.assertEqual(http("GET", "/v1/me/practice", token=a_tok)[0], 404)
        ids = {s["id"] for s in http("GET", "/v1/me/sessions",
                                     token=a_tok)[2]["items"]}
        self.assertNotIn(b_sid, ids)
        # a principal smuggled in the body changes nothing
        status, _, me = http("PATCH", "/v1/me", {"id": b_acc["id"],
                                                  "account_id": b_acc["id"],
                                                  "first_name": "Aline"},
                             token=a_tok)
        self.assertEqual(me["id"], a_acc["id"])
        # B is untouched and still signed in
        status, _, b_me = http("GET", "/v1/me", token=b_tok)
        self.assertEqual(status, 200)
        self.assertEqual(b_me["first_name"], "Camille")
        self.assertEqual(http("GET", "/v1/me/company",
                              token=b_tok)[2]["legal_name"], "B SAS")
        # a forged or unknown Bearer token is refused
        self.assertEqual(http("GET", "/v1/me", token="A" * 43)[0], 401)
        self.assertEqual(http("GET", "/v1/me", token="garbage")[0], 401)


def setUpModule():
    global STACK
    STACK = Stack()
    STACK.up()
    with open(os.path.join(STACK.home, "config", "accounts.env"), "a") as f:
        f.write("CRENEAU_LOGIN_WINDOW_S=3\nCRENEAU_LOGIN_MAX_PER_EMAIL=3\n"
                "CRENEAU_LOGIN_MAX_PER_IP=6\nCRENEAU_ACCOUNTS_JOB_S=1\n"
                "CRENEAU_RESET_MAX_PER_IP=4\n"
                # tests sign in often: a cheaper (still argon2id) hash
                "CRENEAU_PWHASH_MEM_MIB=16\n")
    STACK.stop_service("accounts")
    STACK.start_service("accounts")
    STACK.wait_healthy(timeout=60)


def tearDownModule():
    if STACK is not None:
        STACK.down()


if __name__ == "__main__":
    run_tests()
