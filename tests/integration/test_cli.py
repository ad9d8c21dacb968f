#!/usr/bin/env python3
"""The admin's commands as an admin runs them: loket check, try and chat.

Runs bin/loket (or $LOKET_BIN) from the repository root ($LOKET_ROOT) with a
temporary config whose store is a real SQLite file in a temporary directory."""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import sys
import unittest
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from provider import Provider  # noqa: E402

ROOT = os.environ.get("LOKET_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
LOKET = os.environ.get("LOKET_BIN", os.path.join(ROOT, "bin", "loket"))


def run(args, stdin=None, cwd=ROOT):
    return subprocess.run([LOKET] + args, input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loket-cli-")
        self.db = os.path.join(self.tmp, "var", "loket.db")
        self.conf = os.path.join(self.tmp, "loket.ini")
        with open(self.conf, "w") as f:
            f.write("[store]\npath = %s\n[bot]\nintents = %s\n" % (self.db, os.path.join(ROOT, "intents")))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_check_shipped_pack(self):
        r = run(["check", "intents"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok", r.stdout)
        self.assertEqual(r.stderr, "")

    def test_check_broken_file_names_file_and_line(self):
        d = os.path.join(self.tmp, "intents")
        shutil.copytree(os.path.join(ROOT, "intents"), d)
        with open(os.path.join(d, "99-broken.yaml"), "w") as f:
            f.write("- intent: rusak\n  match:\n    id: ['(\\bizin']\n  examples: [izin]\n"
                    "  not_examples: [halo, hai]\n  reply: x\n  colour: red\n")
        r = run(["check", d])
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.strip().splitlines()
        self.assertTrue(any(l.startswith(d + "/99-broken.yaml:3:") and "does not compile" in l for l in lines), lines)
        self.assertTrue(any(l.startswith(d + "/99-broken.yaml:7:3:") and "unknown key \"colour\"" in l for l in lines), lines)

    def test_try_json(self):
        r = run(["try", "--json", "-c", self.conf, "dimana download formulir izin"])
        self.assertEqual(r.returncode, 0, r.stderr)
        o = json.loads(r.stdout)
        self.assertEqual(o["intent"], "formulir")
        self.assertFalse(o["fallback"])
        self.assertEqual(o["language"], "id")
        self.assertIn("http://dpmptsp.tabanankab.go.id/formulir-pendaftaran-izin", o["reply"])
        self.assertIsInstance(o["buttons"], list)
        self.assertIsInstance(o["actions"], list)
        r = run(["try", "--json", "-c", self.conf, "who won the football match"])
        o = json.loads(r.stdout)
        self.assertIsNone(o["intent"])
        self.assertTrue(o["fallback"])

    def test_chat_escalates_and_continues_across_runs(self):
        r = run(["chat", "--json", "-c", self.conf, "--as", "6281234567890"],
                stdin="om swastyastu\nwhat are the office hours\nsaya mau bicara dengan petugas\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(out[0]["intent"], "om_swastyastu")
        self.assertIn("Om Swastyastu", out[0]["reply"])
        self.assertEqual(out[1]["language"], "en")
        self.assertEqual(out[-1]["actions"], ["escalate"])
        # the database holds what was said, readable only by its owner
        mode = stat.S_IMODE(os.stat(self.db).st_mode)
        self.assertEqual(mode, 0o600)
        # a second run continues the same conversation: it waits for an agent
        r = run(["chat", "--json", "-c", self.conf, "--as", "6281234567890"], stdin="halo?\n")
        o = json.loads(r.stdout.splitlines()[0])
        self.assertTrue(o.get("silent"))
        self.assertIsNone(o["reply"])
        db = sqlite3.connect(self.db)
        try:
            n = db.execute("select count(*) from messages").fetchone()[0]
        finally:
            db.close()
        self.assertGreaterEqual(n, 7)  # 4 in, 3 out at least
        # another citizen is not affected
        r = run(["chat", "--json", "-c", self.conf, "--as", "6289999"], stdin="halo\n")
        self.assertEqual(json.loads(r.stdout.splitlines()[0])["intent"], "salam")

    def test_chat_human_output_shows_escalation(self):
        r = run(["chat", "-c", self.conf], stdin="operator please\nhello?\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("handed to the agents' queue", r.stdout)
        self.assertIn("the bot stays silent", r.stdout)

    def test_bad_config_is_reported_with_its_line(self):
        with open(self.conf, "a") as f:
            f.write("[bot]\nlanguagee = en\n")
        r = run(["try", "-c", self.conf, "halo"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(self.conf + ":6: unknown key \"languagee\" in [bot]", r.stderr)

    def test_doctor_says_what_to_fix(self):
        r = run(["doctor", "-c", self.conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 things to fix", r.stdout)
        self.assertIn("sandbox mode", r.stdout)
        with open(self.conf, "a") as f:
            f.write("[whatsapp]\nphone_number_id = 1234\naccess_token = tok\n")
        r = run(["doctor", "--offline", "-c", self.conf])  # no request to the real Graph API
        self.assertEqual(r.returncode, 1)
        self.assertIn("FIX   [whatsapp] app_secret is empty", r.stdout)
        self.assertIn("FIX   [server] public_url http://127.0.0.1:8080 is not https", r.stdout)
        self.assertNotIn("tok", r.stdout.replace("token", ""))
        self.assertNotIn("Cloud API", r.stdout)

    def test_doctor_asks_the_provider_whether_the_token_works(self):
        token = "EAAG-doctor-test-token-0123456789"
        p = Provider().start()
        try:
            with open(self.conf, "a") as f:
                f.write("[server]\npublic_url = https://loket.example.go.id\n"
                        "[whatsapp]\nphone_number_id = 1098765\naccess_token = %s\napp_secret = s3cr3t-app\n"
                        "verify_token = v3rify\napi_base = %s/v21.0/\n" % (token, p.url))
            r = run(["doctor", "-c", self.conf])
            self.assertIn("ok    the WhatsApp Cloud API accepts the access token", r.stdout)
            self.assertEqual(r.returncode, 0, r.stdout)
            req = p.requests()[-1]
            self.assertEqual((req["method"], req["path"].split("?")[0]), ("GET", "/v21.0/1098765"))
            self.assertEqual(req["headers"].get("Authorization"), "Bearer " + token)

            p.set_mode("expired")
            r = run(["doctor", "-c", self.conf])
            self.assertEqual(r.returncode, 1)
            self.assertIn("FIX   the WhatsApp Cloud API refuses [whatsapp] access_token (190 Error validating",
                          r.stdout)
            self.assertNotIn(token, r.stdout + r.stderr)

            p.set_mode("bad")
            r = run(["doctor", "-c", self.conf])
            self.assertEqual(r.returncode, 1)
            self.assertIn("FIX   the WhatsApp Cloud API refused the check of [whatsapp] phone_number_id 1098765",
                          r.stdout)

            p.set_mode("500")
            r = run(["doctor", "-c", self.conf])
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertIn("note  the WhatsApp Cloud API could not answer the check now", r.stdout)
        finally:
            p.stop()
        # nobody listens there now: a note, not a verdict on the token
        r = run(["doctor", "-c", self.conf])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("note  could not reach %s/v21.0/ to check the token" % p.url, r.stdout)  # as configured

    def test_rate_limit_per_contact(self):
        with open(self.conf, "a") as f:
            f.write("[bot]\nrate_limit_per_minute = 3\n")
        r = run(["chat", "--json", "-c", self.conf, "--as", "628777"],
                stdin="halo\nkontak kantor\njam layanan\nformulir\nformulir\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([o["intent"] for o in out[:3]], ["salam", "kontak", "jam_layanan"])
        # the 4th message in the minute is kept but not answered: the citizen is told once
        self.assertIsNone(out[3]["intent"])
        self.assertIn("pesan", out[3]["reply"].lower())
        self.assertTrue(out[4].get("silent"))
        # another citizen is not limited
        r = run(["chat", "--json", "-c", self.conf, "--as", "628888"], stdin="halo\n")
        self.assertEqual(json.loads(r.stdout.splitlines()[0])["intent"], "salam")
        db = sqlite3.connect(self.db)
        try:
            n = db.execute("select count(*) from messages where direction = 'in'").fetchone()[0]
        finally:
            db.close()
        self.assertEqual(n, 6)  # nothing the citizen wrote is lost

    def test_unknown_command(self):
        r = run(["frobnicate"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1)
