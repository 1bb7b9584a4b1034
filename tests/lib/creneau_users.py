"""creneau_users - accounts made the way a user makes them, through the
gateway of a running stack (tests/lib/creneau_stack.py): sign up, confirm
the e-mail address, log in.

The verification token that the notifications service would mail is read
from the accounts outbox (the payload of the account.created and
account.email_verification_requested events), so nothing here depends on
mail. Shared by the integration tests (tests/integration/test_*.py) and the
benchmarks (tests/bench/*.py).

Every function takes the Stack first. An answer other than the one a user
expects raises AssertionError with the status and the body; `timeout` is the
HTTP timeout of each request, in seconds."""

import itertools
import os

PASSWORD = "Tr3s-b0n-mdp!"

_serial = itertools.count(1)


def unique_email(tag="user", domain="example.org"):
    """An address no other account of this process or of another has:
    <tag>.<pid>.<n>@<domain>."""
    return "%s.%d.%d@%s" % (tag, os.getpid(), next(_serial), domain)


def decode_pb(data):
    """A flat protobuf message (bytes) as {field number: value}: varints as
    int, length-delimited fields as str (UTF-8, errors replaced; the first
    occurrence of a repeated field). Other wire types: ValueError."""
    i, out = 0, {}

    def varint():
        nonlocal i
        value, shift = 0, 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out[field] = varint()
        elif wire == 2:
            n = varint()
            raw = data[i:i + n]
            i += n
            out.setdefault(field, raw.decode("utf-8", "replace"))
        else:
            raise ValueError("wire type %d" % wire)
    return out


def outbox_events(stack, topic):
    """The events of `topic` in the accounts outbox, oldest first, each
    decoded by decode_pb."""
    rc, out, err = stack.psql(
        "SELECT encode(payload, 'hex') FROM events_outbox WHERE topic = '%s' "
        "ORDER BY id" % topic, role="accounts")
    assert rc == 0, err
    return [decode_pb(bytes.fromhex(line)) for line in out.split()]


def verification_tokens(stack):
    """{account id: its latest e-mail verification token} (field 6 of
    account.created, field 4 of account.email_verification_requested)."""
    tokens = {}
    for ev in (outbox_events(stack, "account.created") +
               outbox_events(stack, "account.email_verification_requested")):
        tokens[ev.get(1)] = (ev.get(6) if 6 in ev and len(str(ev[6])) > 30
                             else ev.get(4))
    return tokens


def verification_token(stack, account_id):
    """The latest e-mail verification token of one account."""
    token = verification_tokens(stack).get(account_id)
    if token is None:
        raise AssertionError("no verification event for %s" % account_id)
    return token


def http(stack, method, path, body=None, token=None, headers=None, **kw):
    """stack.http with `token`, if any, as a Bearer Authorization header;
    other keywords (raw, timeout) go to stack.http."""
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = "Bearer " + token
    return stack.http(method, path, body=body, headers=hdrs, **kw)


def signup(stack, role="client", email=None, password=PASSWORD,
           first_name="Camille", last_name="Durand", timeout=10, **extra):
    """POST /v1/accounts (terms accepted; `extra` adds or overrides body
    fields); the new account. The address defaults to unique_email(role)."""
    body = {"role": role, "email": email or unique_email(role),
            "password": password, "first_name": first_name,
            "last_name": last_name, "accept_terms": True}
    body.update(extra)
    status, _, reply = http(stack, "POST", "/v1/accounts", body,
                            timeout=timeout)
    assert status == 201, (status, reply)
    return reply


def confirm_email(stack, token, timeout=10):
    """POST /v1/email-verifications/confirm with `token`; expects 204."""
    status, _, reply = http(stack, "POST", "/v1/email-verifications/confirm",
                            {"token": token}, timeout=timeout)
    assert status == 204, (status, reply)


def verify(stack, account_id, timeout=10):
    """Confirms the account's address with its token from the outbox."""
    confirm_email(stack, verification_token(stack, account_id), timeout)


def login(stack, email, password=PASSWORD, headers=None, timeout=10):
    """POST /v1/sessions; (the session as answered, the answer's headers)."""
    status, hdrs, reply = http(stack, "POST", "/v1/sessions",
                               {"email": email, "password": password},
                               headers=headers, timeout=timeout)
    assert status == 201, (status, reply)
    return reply, hdrs


def new_users(stack, n, role="client", verified=True, password=PASSWORD,
              timeout=10, **extra):
    """n accounts signed up (signup's `extra`), verified unless told not to,
    and logged in: [(account, session token)]. The outbox is read once for
    all of them."""
    accounts = [signup(stack, role, password=password, timeout=timeout,
                       **extra) for _ in range(n)]
    if verified:
        tokens = verification_tokens(stack)
        for account in accounts:
            if account["id"] not in tokens:
                raise AssertionError("no verification event for %s"
                                     % account["id"])
            confirm_email(stack, tokens[account["id"]], timeout)
    return [(account, login(stack, account["email"], password,
                            timeout=timeout)[0]["token"])
            for account in accounts]


def new_user(stack, role="client", verified=True, password=PASSWORD,
             timeout=10, **extra):
    """One account as new_users makes them: (account, session token)."""
    return new_users(stack, 1, role, verified, password, timeout, **extra)[0]
