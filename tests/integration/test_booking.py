"""Booking through the gateway (issue 5): availability, bookings that never
collide, idempotency, cancellation, atomic reschedule, deadlines, the client
file, and who may use which route.

One stack for the module. Accounts are made the way a user makes them
(sign-up, the verification token read from the accounts outbox, login); the
booking service learns of them through the accounts events, which the tests
wait for.
"""

import json
import os
import re
import sys
import threading
import time
import unittest
import uuid
from datetime import datetime, timedelta, timezone

import creneau_users as users
from creneau_stack import Stack, run_tests

STACK = None
PRACT = None      # (account, token) of the practitioner with hours
OFFERING = None   # their offering (60 min, 15 min buffer after)
RACERS = 64


# ---- accounts, as a user makes them ----

def http(method, path, body=None, token=None, headers=None):
    return users.http(STACK, method, path, body, token, headers, timeout=30)


def new_user(role, verified=True):
    return users.new_user(STACK, role, verified, timeout=30,
                          last_name="Martin", phone="06 12 34 56 78")


def booking_knows(account_id, verified=True, timeout=20):
    """Waits until booking's copy of the account has arrived (events)."""
    deadline = time.monotonic() + timeout
    sql = ("SELECT email_verified FROM accounts WHERE account_id = '%s'"
           % account_id)
    while time.monotonic() < deadline:
        rc, out, _ = STACK.psql(sql, role="booking")
        if rc == 0 and out.strip() == ("t" if verified else "f"):
            return
        time.sleep(0.1)
    raise AssertionError("booking never learnt of account %s" % account_id)


def wait_for_copy(account_id, column, value, timeout=20):
    """Waits until booking's copy of the account has column = value."""
    deadline = time.monotonic() + timeout
    sql = "SELECT %s FROM accounts WHERE account_id = '%s'" % (column,
                                                                account_id)
    while time.monotonic() < deadline:
        rc, out, _ = STACK.psql(sql, role="booking")
        if rc == 0 and out.strip() == value:
            return
        time.sleep(0.1)
    raise AssertionError("booking's copy of %s never had %s = %s"
                         % (account_id, column, value))


def new_client(verified=True):
    account, token = new_user("client", verified)
    booking_knows(account["id"], verified)
    return account, token


# ---- time ----

def rfc3339(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc)


def slots(practitioner_id, offering_id, start, days=7):
    end = start + timedelta(days=days)
    status, _, body = http(
        "GET", "/v1/practitioners/%s/availability?offering=%s&from=%s&to=%s"
        % (practitioner_id, offering_id, rfc3339(start), rfc3339(end)))
    assert status == 200, (status, body)
    return [s["start"] for s in body["slots"]]


def free_slots(hours_ahead, count=1):
    start = datetime.now(timezone.utc) + timedelta(hours=hours_ahead)
    found = slots(PRACT[0]["id"], OFFERING["id"], start)
    assert len(found) >= count, found
    return found[:count]


def book(token, start, note="", key=None, offering=None):
    headers = {"Idempotency-Key": key} if key else None
    return http("POST", "/v1/bookings", {
        "practitioner_id": PRACT[0]["id"],
        "offering_id": (offering or OFFERING)["id"],
        "start": start, "note": note}, token=token, headers=headers)


def setUpModule():
    global STACK, PRACT, OFFERING
    STACK = Stack()
    STACK.up()
    try:
        STACK.wait_healthy(timeout=60)
        PRACT = new_user("practitioner")
        status, _, body = http("PUT", "/v1/me/schedule", {
            "timezone": "Europe/Paris",
            "weekly": [{"weekday": d, "start": "00:00", "end": "24:00"}
                       for d in range(1, 8)],
            "min_notice_min": 0, "horizon_days": 730}, token=PRACT[1])
        assert status == 200, (status, body)
        status, _, OFFERING = http("POST", "/v1/me/offerings", {
            "title": "Sophrologie", "duration_min": 60, "price_cents": 6000,
            "currency": "EUR", "buffer_after_min": 15,
            "location": "office"}, token=PRACT[1])
        assert status == 201, (status, OFFERING)
    except BaseException:
        STACK.dump_logs()
        STACK.down()
        raise


def tearDownModule():
    if STACK:
        STACK.down()


class BookingTest(unittest.TestCase):

    def test_schedule_and_offerings_round_trip(self):
        status, _, sched = http("GET", "/v1/me/schedule", token=PRACT[1])
        self.assertEqual(status, 200, sched)
        self.assertEqual(sched["timezone"], "Europe/Paris")
        self.assertEqual(len(sched["weekly"]), 7)
        self.assertEqual(sched["weekly"][0]["end"], "24:00")
        status, _, body = http("PUT", "/v1/me/schedule", {
            "timezone": "Mars/Olympus", "weekly": []}, token=PRACT[1])
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "timezone")
        status, _, body = http("PUT", "/v1/me/schedule", {
            "weekly": [{"weekday": 8, "start": "09:00", "end": "10:00"}]},
            token=PRACT[1])
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "weekly[0]")
        status, _, body = http("POST", "/v1/me/offerings", {
            "title": "x", "duration_min": 3, "location": "office"},
            token=PRACT[1])
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "duration_min")
        # a title is one line: it ends up in mail subjects
        status, _, body = http("POST", "/v1/me/offerings", {
            "title": "Sophrologie\r\nBcc: x@example.org", "duration_min": 30,
            "location": "office"}, token=PRACT[1])
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "title")
        status, _, body = http("GET", "/v1/me/offerings", token=PRACT[1])
        self.assertEqual(status, 200, body)
        self.assertIn(OFFERING["id"], [o["id"] for o in body["items"]])

    def test_dst_in_paris_through_http(self):
        # a second practitioner with 09:00-10:00 every day in Paris
        pract, token = new_user("practitioner")
        self.assertEqual(http("PUT", "/v1/me/schedule", {
            "timezone": "Europe/Paris",
            "weekly": [{"weekday": d, "start": "09:00", "end": "10:00"}
                       for d in range(1, 8)],
            "min_notice_min": 0, "horizon_days": 730}, token=token)[0], 200)
        status, _, off = http("POST", "/v1/me/offerings", {
            "title": "Shiatsu", "duration_min": 60, "location": "office"},
            token=token)
        self.assertEqual(status, 201, off)
        year = datetime.now(timezone.utc).year + 1
        # the last Sundays of March and October of next year
        march = max(d for d in (datetime(year, 3, day, tzinfo=timezone.utc)
                                for day in range(25, 32))
                    if d.weekday() == 6)
        october = max(d for d in (datetime(year, 10, day, tzinfo=timezone.utc)
                                  for day in range(25, 32))
                      if d.weekday() == 6)
        got = slots(pract["id"], off["id"], march - timedelta(days=1), days=2)
        self.assertEqual(got, [rfc3339(march - timedelta(days=1, hours=-8)),
                               rfc3339(march + timedelta(hours=7))])
        got = slots(pract["id"], off["id"], october - timedelta(days=1),
                    days=2)
        self.assertEqual(got, [rfc3339(october - timedelta(days=1, hours=-7)),
                               rfc3339(october + timedelta(hours=8))])

    def test_64_clients_race_for_the_same_slots(self):
        clients = [new_client() for _ in range(RACERS)]
        # two slots two hours apart (60 min + 15 min buffer never overlap)
        for start in free_slots(200, count=9)[::8]:
            results = [None] * RACERS
            barrier = threading.Barrier(RACERS)

            bodies = [None] * RACERS

            def race(i):
                barrier.wait()
                results[i], _, bodies[i] = book(clients[i][1], start)

            threads = [threading.Thread(target=race, args=(i,))
                       for i in range(RACERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(results.count(201), 1, (results, bodies[:2]))
            self.assertEqual(results.count(409), RACERS - 1,
                             (results, bodies[:2]))
            self.assertNotIn(start, slots(PRACT[0]["id"], OFFERING["id"],
                                          parse(start) - timedelta(hours=2),
                                          days=1))

    def test_idempotent_retry(self):
        _, token = new_client()
        start = free_slots(300)[0]
        key = str(uuid.uuid4())
        s1, _, b1 = book(token, start, note="hello", key=key)
        self.assertEqual(s1, 201, b1)
        s2, _, b2 = book(token, start, note="hello", key=key)
        self.assertEqual(s2, 201, b2)
        self.assertEqual(b1["id"], b2["id"])
        s3, _, b3 = book(token, start, note="changed", key=key)
        self.assertEqual(s3, 422, b3)
        rc, out, _ = STACK.psql("SELECT count(*) FROM bookings WHERE "
                                "idempotency_key = '%s'" % key,
                                role="booking")
        self.assertEqual(out.strip(), "1")

    def test_cancellation_frees_the_slot(self):
        _, a = new_client()
        _, b = new_client()
        start = free_slots(320)[0]
        status, _, booking = book(a, start)
        self.assertEqual(status, 201, booking)
        self.assertEqual(book(b, start)[0], 409)
        status, _, done = http("POST", "/v1/bookings/%s/cancel"
                               % booking["id"], {"reason": "empêchement"},
                               token=a)
        self.assertEqual(status, 200, done)
        self.assertEqual(done["status"], "cancelled")
        self.assertEqual(done["cancelled_by"], "client")
        self.assertIn(start, slots(PRACT[0]["id"], OFFERING["id"],
                                   parse(start) - timedelta(hours=1), days=1))
        self.assertEqual(book(b, start)[0], 201)

    def test_reschedule_is_atomic(self):
        _, a = new_client()
        _, b = new_client()
        mine, theirs, later = free_slots(340, count=17)[::8]
        status, _, booking = book(a, mine)
        self.assertEqual(status, 201, booking)
        self.assertEqual(book(b, theirs)[0], 201)
        status, _, body = http("POST", "/v1/bookings/%s/reschedule"
                               % booking["id"], {"start": theirs}, token=a)
        self.assertEqual(status, 409, body)
        self.assertEqual(body["error"]["code"], "slot_taken")
        status, _, now = http("GET", "/v1/bookings/%s" % booking["id"],
                              token=a)
        self.assertEqual(now["start"], mine)
        status, _, moved = http("POST", "/v1/bookings/%s/reschedule"
                                % booking["id"], {"start": later}, token=a)
        self.assertEqual(status, 200, moved)
        self.assertEqual(moved["start"], later)
        self.assertEqual(book(b, mine)[0], 201)

    def test_deadlines_hold(self):
        _, a = new_client()
        start = free_slots(3)[0]  # inside the 24 h cancellation deadline
        status, _, booking = book(a, start)
        self.assertEqual(status, 201, booking)
        path = "/v1/bookings/%s/cancel" % booking["id"]
        status, _, body = http("POST", path, {}, token=a)
        self.assertEqual(status, 422, body)
        self.assertEqual(body["error"]["code"], "deadline_passed")
        status, _, body = http("POST", path, {"reason": "malade"},
                               token=PRACT[1])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["cancelled_by"], "practitioner")
        # completing a booking that has not begun is refused
        status, _, booking = book(a, free_slots(30)[0])
        self.assertEqual(status, 201, booking)
        status, _, body = http("POST", "/v1/bookings/%s/complete"
                               % booking["id"], {}, token=PRACT[1])
        self.assertEqual(status, 422, body)

    def test_unverified_client_cannot_book(self):
        _, token = new_client(verified=False)
        status, _, body = book(token, free_slots(400)[0])
        self.assertEqual(status, 422, body)
        self.assertEqual(body["error"]["code"], "email_not_verified")

    def test_client_file_and_its_deletion(self):
        account, a = new_client()
        # the copy is of the account as booking knows it when the first
        # booking is made: the phone given at sign-up comes with
        # account.created
        self.assertEqual(account["phone"], "+33612345678")
        wait_for_copy(account["id"], "phone", "+33612345678")
        start = free_slots(420)[0]
        status, _, booking = book(a, start, note="first visit")
        self.assertEqual(status, 201, booking)
        status, _, listed = http("GET", "/v1/me/clients?limit=200",
                                 token=PRACT[1])
        self.assertEqual(status, 200, listed)
        record = [c for c in listed["items"]
                  if c["account_id"] == account["id"]][0]
        self.assertEqual(record["first_name"], "Camille")
        self.assertEqual(record["phone"], "+33612345678")
        status, _, rec = http("PATCH", "/v1/me/clients/%s" % record["id"],
                              {"notes": "préfère le matin"}, token=PRACT[1])
        self.assertEqual(status, 200, rec)
        self.assertEqual(rec["notes"], "préfère le matin")
        # refused while a booking is still to come
        status, _, body = http("DELETE", "/v1/me/clients/%s" % record["id"],
                               token=PRACT[1])
        self.assertEqual(status, 422, body)
        self.assertEqual(http("POST", "/v1/bookings/%s/cancel"
                              % booking["id"], {}, token=PRACT[1])[0], 200)
        status, _, body = http("DELETE", "/v1/me/clients/%s" % record["id"],
                               token=PRACT[1])
        self.assertEqual(status, 204, body)
        self.assertEqual(http("GET", "/v1/me/clients/%s" % record["id"],
                              token=PRACT[1])[0], 404)
        status, _, seen = http("GET", "/v1/bookings/%s" % booking["id"],
                               token=PRACT[1])
        self.assertEqual(status, 200, seen)
        self.assertEqual(seen["client_id"], "")
        self.assertNotIn("client", seen)
        self.assertEqual(seen["note"], "")
        # the client still has their own history
        status, _, mine = http("GET", "/v1/me/bookings", token=a)
        self.assertIn(booking["id"], [b["id"] for b in mine["items"]])

    def test_my_bookings_pages(self):
        _, a = new_client()
        starts = free_slots(500, count=17)[::8]
        for start in starts:
            self.assertEqual(book(a, start)[0], 201)
        seen, cursor = [], ""
        while True:
            status, _, page = http("GET", "/v1/me/bookings?limit=2&cursor="
                                   + cursor, token=a)
            self.assertEqual(status, 200, page)
            seen += [b["start"] for b in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, starts)
        status, _, page = http("GET", "/v1/me/bookings?status=nonsense",
                               token=a)
        self.assertEqual(status, 400, page)

    def test_authorisation_over_every_route(self):
        other_pract = new_user("practitioner")
        _, owner = new_client()
        _, stranger = new_client()
        start = free_slots(600)[0]
        status, _, booking = book(owner, start)
        self.assertEqual(status, 201, booking)
        status, _, listed = http("GET", "/v1/me/clients?limit=200",
                                 token=PRACT[1])
        record = listed["items"][-1]["id"]
        bid, off = booking["id"], OFFERING["id"]
        p_id = PRACT[0]["id"]
        anon, pract, other = None, PRACT[1], other_pract[1]
        rows = [
            # (method, path, body, who, expected status)
            ("GET", "/v1/me/offerings", None, anon, 401),
            ("GET", "/v1/me/offerings", None, owner, 403),
            ("GET", "/v1/me/offerings", None, pract, 200),
            ("POST", "/v1/me/offerings", {}, anon, 401),
            ("POST", "/v1/me/offerings", {}, owner, 403),
            ("PATCH", "/v1/me/offerings/" + off, {"title": "x"}, anon, 401),
            ("PATCH", "/v1/me/offerings/" + off, {"title": "x"}, owner, 403),
            ("PATCH", "/v1/me/offerings/" + off, {"title": "x"}, other, 404),
            ("DELETE", "/v1/me/offerings/" + off, None, anon, 401),
            ("DELETE", "/v1/me/offerings/" + off, None, owner, 403),
            ("DELETE", "/v1/me/offerings/" + off, None, other, 404),
            ("GET", "/v1/me/schedule", None, anon, 401),
            ("GET", "/v1/me/schedule", None, owner, 403),
            ("PUT", "/v1/me/schedule", {}, anon, 401),
            ("PUT", "/v1/me/schedule", {}, owner, 403),
            ("GET", "/v1/me/schedule/overrides", None, anon, 401),
            ("GET", "/v1/me/schedule/overrides", None, owner, 403),
            ("POST", "/v1/me/schedule/overrides", {}, owner, 403),
            ("DELETE", "/v1/me/schedule/overrides/" + off, None, owner, 403),
            ("DELETE", "/v1/me/schedule/overrides/" + off, None, other, 404),
            ("GET", "/v1/practitioners/%s/availability?offering=%s"
             % (p_id, off), None, anon, 200),
            ("GET", "/v1/practitioners/%s/offerings" % p_id, None, anon, 200),
            ("POST", "/v1/bookings", {}, anon, 401),
            ("POST", "/v1/bookings", {}, pract, 403),
            ("GET", "/v1/me/bookings", None, anon, 401),
            ("GET", "/v1/me/bookings", None, stranger, 200),
            ("GET", "/v1/bookings/" + bid, None, anon, 401),
            ("GET", "/v1/bookings/" + bid, None, stranger, 404),
            ("GET", "/v1/bookings/" + bid, None, other, 404),
            ("GET", "/v1/bookings/" + bid, None, owner, 200),
            ("GET", "/v1/bookings/" + bid, None, pract, 200),
            ("POST", "/v1/bookings/%s/cancel" % bid, {}, anon, 401),
            ("POST", "/v1/bookings/%s/cancel" % bid, {}, stranger, 404),
            ("POST", "/v1/bookings/%s/cancel" % bid, {}, other, 404),
            ("POST", "/v1/bookings/%s/reschedule" % bid, {"start": start},
             stranger, 404),
            ("POST", "/v1/bookings/%s/reschedule" % bid, {"start": start},
             other, 404),
            ("POST", "/v1/bookings/%s/complete" % bid, {}, owner, 403),
            ("POST", "/v1/bookings/%s/complete" % bid, {}, other, 404),
            ("POST", "/v1/bookings/%s/no-show" % bid, {}, owner, 403),
            ("POST", "/v1/bookings/%s/no-show" % bid, {}, other, 404),
            ("GET", "/v1/me/clients", None, anon, 401),
            ("GET", "/v1/me/clients", None, owner, 403),
            ("GET", "/v1/me/clients/" + record, None, other, 404),
            ("GET", "/v1/me/clients/" + record, None, owner, 403),
            ("PATCH", "/v1/me/clients/" + record, {"notes": "x"}, other, 404),
            ("DELETE", "/v1/me/clients/" + record, None, other, 404),
            ("DELETE", "/v1/me/clients/" + record, None, owner, 403),
        ]
        # every booking route of the API is in the table
        with open(os.path.join(os.environ["CRENEAU_SOURCE_DIR"], "docs",
                               "openapi.json")) as f:
            doc = json.load(f)
        routed = set()
        for pattern, ops in doc["paths"].items():
            for method, op in ops.items():
                if "booking" in op.get("tags", []):
                    routed.add((method.upper(), pattern))
        covered = set()
        for method, path, _, _, _ in rows:
            bare = path.split("?")[0]
            for m, pattern in routed:
                regex = "^" + re.sub(r"\{\w+\}", "[^/]+", pattern) + "$"
                if m == method and re.match(regex, bare):
                    covered.add((m, pattern))
        self.assertGreaterEqual(len(routed), 22)
        self.assertEqual(routed - covered, set())
        failures = []
        for method, path, body, who, want in rows:
            status, _, reply = http(method, path, body, token=who)
            if status != want:
                failures.append("%s %s as %s: %s, want %s (%s)" % (
                    method, path, {None: "anonymous", owner: "owner",
                                   stranger: "another client",
                                   pract: "the practitioner",
                                   other: "another practitioner"}[who],
                    status, want, reply))
        self.assertEqual(failures, [])
        # nothing above changed the booking or the offering
        status, _, now = http("GET", "/v1/bookings/" + bid, token=owner)
        self.assertEqual(now["status"], "confirmed")
        self.assertEqual(now["start"], start)
        status, _, offs = http("GET", "/v1/me/offerings", token=pract)
        self.assertIn(off, [o["id"] for o in offs["items"]])


if __name__ == "__main__":
    run_tests()
