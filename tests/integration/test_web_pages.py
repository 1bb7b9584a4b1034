"""The static web client (services/gateway/web), served by the gateway of a
real stack: the pages the mails link to, their one script and style sheet.

Checks each page's answer (200, text/html, the security headers, a Cache-Control
for static files, no inline script or style: the CSP forbids them), then
follows real mails: the verification link of a sign-up mail is opened in
headless Chromium (the page's script confirms the address: the success text
is shown, the account is verified, the same link then says it is no longer
valid), and the reset link of a reset mail leads to the page whose API calls
(made here the way app.js makes them) show a field error, then change the
password.
"""
import email
import email.policy
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import creneau_users as users
from creneau_stack import Stack, run_tests

STACK = None

PAGES = ("/", "/verify-email", "/reset-password", "/newsletter-confirm",
         "/newsletter-unsubscribe")


def wait_for_mail(address, subject_word, timeout=20):
    """The first .eml of the stack's mail dir sent to address whose subject
    contains subject_word (an email.message.EmailMessage); AssertionError
    after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(glob.glob(os.path.join(STACK.mail_dir, "*.eml"))):
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(
                    f, policy=email.policy.default)
            if (address.lower() in str(msg["To"]).lower()
                    and subject_word in str(msg["Subject"])):
                return msg
        time.sleep(0.1)
    raise AssertionError("no mail to %s about %r" % (address, subject_word))


def mail_link(msg, path):
    """The link of msg's text part whose path is path (a parsed URL)."""
    text = msg.get_body(preferencelist=("plain",)).get_content()
    for word in text.split():
        url = urllib.parse.urlparse(word)
        if url.scheme in ("http", "https") and url.path == path:
            return url
    raise AssertionError("no %s link in:\n%s" % (path, text))


def chromium_dom(url, timeout=60):
    """The DOM of url once its scripts are done (headless Chromium)."""
    profile = tempfile.mkdtemp(prefix="creneau-chromium-")
    try:
        proc = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-extensions",
             "--disable-background-networking", "--disable-sync",
             "--user-data-dir=" + profile, "--lang=fr-FR",
             "--virtual-time-budget=10000", "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise AssertionError("chromium failed (%d): %s" % (
            proc.returncode, proc.stderr[-2000:]))
    return proc.stdout


def shown_states(dom):
    """The data-state of each #status message that is not hidden."""
    shown = []
    for tag in re.findall(r"<p\b[^>]*\bdata-state=[^>]*>", dom):
        if not re.search(r"\shidden\b", tag):
            shown.append(re.search(r'data-state="([^"]+)"', tag).group(1))
    return shown


class WebPagesTest(unittest.TestCase):

    def assert_static(self, path, content_type, cache):
        status, hdrs, _ = STACK.http("GET", path)
        body = STACK.last_raw
        self.assertEqual(status, 200, path)
        self.assertEqual(hdrs["Content-Type"], content_type, path)
        self.assertIn("default-src 'self'",
                      hdrs["Content-Security-Policy"], path)
        self.assertEqual(hdrs["X-Content-Type-Options"], "nosniff", path)
        self.assertEqual(hdrs["Referrer-Policy"], "no-referrer", path)
        self.assertEqual(hdrs.get_all("Cache-Control"), [cache], path)
        self.assertEqual(int(hdrs["Content-Length"]), len(body), path)
        return body.decode("utf-8")

    def test_pages(self):
        for path in PAGES + ("/verify-email?token=abc&lang=en",):
            html = self.assert_static(path, "text/html; charset=utf-8",
                                      "no-cache")
            self.assertTrue(html.startswith("<!DOCTYPE html>"), path)
            self.assertIn('<html lang="fr">', html, path)
            # the CSP allows no inline script nor style: none is written
            scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html,
                                 re.S)
            self.assertEqual(scripts, [(' src="/app.js" defer', "")], path)
            self.assertNotIn("<style", html, path)
            self.assertIsNone(re.search(r"\s(style|on[a-z]+)=", html), path)
            self.assertIn('<link rel="stylesheet" href="/app.css">', html)
            # both languages in the one page
            self.assertIn('class="fr"', html, path)
            self.assertIn('class="en" lang="en"', html, path)
        status, hdrs, _ = STACK.http("HEAD", "/verify-email")
        self.assertEqual(status, 200)
        self.assertEqual(STACK.last_raw, b"")
        status, hdrs, _ = STACK.http("POST", "/verify-email", body={})
        self.assertEqual(status, 405)
        self.assertEqual(hdrs["Allow"], "GET, HEAD")
        self.assertEqual(STACK.http("GET", "/verify-email/x")[0], 404)
        self.assertEqual(STACK.http("GET", "/?lang=en")[0], 200)
        self.assertIn(b'href="/v1/openapi.json"', STACK.last_raw)

    def test_script_and_style(self):
        js = self.assert_static("/app.js", "text/javascript; charset=utf-8",
                                "public, max-age=300")
        self.assertIn('"/v1/email-verifications/confirm"', js)
        self.assertIn('"/v1/password-resets/confirm"', js)
        self.assertIn('"/v1/newsletter/confirm"', js)
        self.assertIn('"/v1/newsletter/unsubscribe"', js)
        css = self.assert_static("/app.css", "text/css; charset=utf-8",
                                 "public, max-age=300")
        self.assertIn("[hidden]", css)
        # the API keeps its no-store
        status, hdrs, _ = STACK.http("GET", "/v1/ping")
        self.assertEqual(hdrs["Cache-Control"], "no-store")

    def test_verification_link_from_mail(self):
        address = users.unique_email("web")
        account = users.signup(STACK, email=address)
        msg = wait_for_mail(address, "adresse e-mail")
        url = mail_link(msg, "/verify-email")
        # a link to our own origin, the token only in its query string
        self.assertEqual("%s://%s" % (url.scheme, url.netloc), STACK.url)
        token = urllib.parse.parse_qs(url.query)["token"][0]
        self.assertEqual(urllib.parse.parse_qs(url.query), {"token": [token]})
        status, hdrs, _ = STACK.http("GET", url.path + "?" + url.query)
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/html"))
        self.assertIn(b'data-page="verify-email"', STACK.last_raw)

        # a browser opens the link: app.js confirms the address
        dom = chromium_dom(url.geturl())
        self.assertEqual(shown_states(dom), ["done"], dom)
        self.assertIn("Votre adresse e-mail est confirmée", dom)
        session, _ = users.login(STACK, address)
        status, _, me = users.http(STACK, "GET", "/v1/me",
                                   token=session["token"])
        self.assertEqual(status, 200, me)
        self.assertEqual(me["id"], account["id"])
        self.assertTrue(me["email_verified"])

        # the same link again, in English: no longer valid
        dom = chromium_dom(url.geturl() + "&lang=en")
        self.assertEqual(shown_states(dom), ["invalid"], dom)
        self.assertIn('<html lang="en">', dom)
        # and without its token
        dom = chromium_dom(STACK.url + "/verify-email")
        self.assertEqual(shown_states(dom), ["no-token"], dom)

    def test_reset_link_from_mail(self):
        address = users.unique_email("webreset")
        users.signup(STACK, email=address)
        status, _, body = STACK.http("POST", "/v1/password-resets",
                                     body={"email": address})
        self.assertEqual(status, 202, body)
        msg = wait_for_mail(address, "mot de passe")
        url = mail_link(msg, "/reset-password")
        self.assertEqual("%s://%s" % (url.scheme, url.netloc), STACK.url)
        token = urllib.parse.parse_qs(url.query)["token"][0]
        status, hdrs, _ = STACK.http("GET", url.path + "?" + url.query)
        self.assertEqual(status, 200)
        self.assertIn(b'data-page="reset-password"', STACK.last_raw)
        self.assertIn(b'autocomplete="new-password"', STACK.last_raw)

        # what app.js sends and shows: a refused password names its field
        # (and leaves the link usable), a good one is taken
        status, _, body = STACK.http("POST", "/v1/password-resets/confirm",
                                     body={"token": token,
                                           "password": "court"})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "password")
        self.assertTrue(body["error"]["message"])
        new_password = "N0uveau-mdp-s0lide!"
        status, _, body = STACK.http("POST", "/v1/password-resets/confirm",
                                     body={"token": token,
                                           "password": new_password})
        self.assertEqual(status, 204, body)
        users.login(STACK, address, new_password)
        status, _, body = STACK.http("POST", "/v1/password-resets/confirm",
                                     body={"token": token,
                                           "password": new_password})
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"]["field"], "token")

    def test_newsletter_link_acts_only_on_click(self):
        address = users.unique_email("webnews")
        status, _, body = STACK.http("POST", "/v1/newsletter/subscriptions",
                                     body={"email": address})
        self.assertEqual(status, 202, body)
        msg = wait_for_mail(address, "lettre d'information")
        url = mail_link(msg, "/newsletter-confirm")
        self.assertEqual("%s://%s" % (url.scheme, url.netloc), STACK.url)
        token = urllib.parse.parse_qs(url.query)["token"][0]

        def status_of():
            rc, out, err = STACK.psql(
                "SELECT status FROM newsletter_subscribers WHERE email = "
                "'%s'" % address, role="notifications")
            self.assertEqual(rc, 0, err)
            return out.strip()

        # a scanner that opens the link, even running its script, confirms
        # nothing: the page waits for its button
        dom = chromium_dom(url.geturl())
        self.assertIn('data-page="newsletter-confirm"', dom)
        self.assertEqual(shown_states(dom), [], dom)
        self.assertEqual(status_of(), "pending")
        # what the button sends
        status, _, body = STACK.http("POST", "/v1/newsletter/confirm",
                                     body={"token": token})
        self.assertEqual(status, 204, body)
        self.assertEqual(status_of(), "confirmed")
        dom = chromium_dom(STACK.url + "/newsletter-unsubscribe")
        self.assertEqual(shown_states(dom), ["no-token"], dom)


def setUpModule():
    global STACK
    STACK = Stack()
    STACK.up()
    STACK.wait_healthy()


def tearDownModule():
    if STACK is not None:
        STACK.down()


if __name__ == "__main__":
    run_tests()
