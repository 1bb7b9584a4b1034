"""Notifications with the default of deploy/creneau up: mail written as
.eml files in $CRENEAU_HOME/mail, one file per message, named by its id."""
import email
import email.policy
import glob
import json
import os
import subprocess
import sys
import time
import unittest

import creneau_stack


class FileTransportTest(unittest.TestCase):
    def test_mail_lands_in_the_home(self):
        with creneau_stack.Stack() as s:
            env = dict(os.environ)
            env.update(s.env("creneauctl"))
            prog = os.path.join(creneau_stack.BUILD_DIR, "tests", "bin",
                                "notifications_rpc")
            proc = subprocess.run(
                [prog, "SendOperatorMessage", json.dumps({
                    "to": "newcomer@example.org", "to_name": "Nouvelle",
                    "subject": "Bienvenue à bord",
                    "body": "Ce message est un fichier .eml.\n"})],
                env=env, capture_output=True, text=True, timeout=30)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            reply = json.loads(proc.stdout)
            path = os.path.join(s.mail_dir, reply["id"] + ".eml")
            deadline = time.time() + 20
            while not os.path.exists(path) and time.time() < deadline:
                time.sleep(0.1)
            self.assertTrue(os.path.exists(path), os.listdir(s.mail_dir)
                            if os.path.isdir(s.mail_dir) else "no mail dir")
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(
                    f, policy=email.policy.default)
            self.assertEqual(str(msg["Subject"]), "Bienvenue à bord")
            self.assertEqual(msg["Message-ID"], "<%s>" % reply["message_id"])
            # no temporary file left behind, nothing else written
            self.assertEqual(glob.glob(os.path.join(s.mail_dir, ".*")), [])
            rc, out, err = s.psql("SELECT status FROM outbox WHERE id = '%s'"
                                  % reply["id"], role="notifications")
            self.assertEqual(out.strip(), "sent")
            # the operator's command: creneauctl mail send ADDRESS FILE
            text = os.path.join(s.home, "message.txt")
            with open(text, "w") as f:
                f.write("Subject: Maintenance à 22 h\n\nBonsoir,\n"
                        "coupure de 10 minutes.\n")
            rc, out, err = s.ctl("mail", "send", "ops@example.org", text)
            self.assertEqual(rc, 0, (out, err))
            msg_id = out.split()[-1]
            path = os.path.join(s.mail_dir, msg_id + ".eml")
            deadline = time.time() + 20
            while not os.path.exists(path) and time.time() < deadline:
                time.sleep(0.1)
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(
                    f, policy=email.policy.default)
            self.assertEqual(str(msg["Subject"]), "Maintenance à 22 h")
            rc, out, err = s.ctl("mail", "send", "not-an-address", text)
            self.assertNotEqual(rc, 0)
            self.assertIn("invalid_email", err)


if __name__ == "__main__":
    creneau_stack.run_tests()
