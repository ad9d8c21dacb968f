#!/usr/bin/env python3
"""The store's commands as an operator runs them: stats, backup, purge and
agent, on a real SQLite file filled through `loket chat`."""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import time
import unittest

ROOT = os.environ.get("LOKET_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
LOKET = os.environ.get("LOKET_BIN", os.path.join(ROOT, "bin", "loket"))


def run(args, stdin=None):
    return subprocess.run([LOKET] + args, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


class CliStoreTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="loket-clistore-")
        self.db = os.path.join(self.tmp, "loket.db")
        self.conf = os.path.join(self.tmp, "loket.ini")
        with open(self.conf, "w") as f:
            f.write("[store]\npath = %s\n[bot]\nintents = %s\n" % (self.db, os.path.join(ROOT, "intents")))
        # two citizens: one asks, one is misunderstood twice and escalated
        r = run(["chat", "-c", self.conf, "--as", "6281111"], stdin="halo\ndimana formulir izin\nkontak kantor\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["chat", "-c", self.conf, "--as", "6282222"], stdin="harga cabai brp\nharga cabai brp\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_stats_json(self):
        r = run(["stats", "-c", self.conf, "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        s = json.loads(r.stdout)
        self.assertEqual(s["inbound"], 5)
        self.assertEqual(s["fallbacks"], 2)
        self.assertEqual(s["escalations"], 1)
        self.assertEqual(s["conversations"], 2)
        intents = {x["intent"]: x["count"] for x in s["intents"]}
        self.assertEqual(intents, {"salam": 1, "formulir": 1, "kontak": 1})
        self.assertEqual(s["unmatched"], [{"text": "harga cabai brp", "count": 2}])
        self.assertEqual((s["outbox_waiting"], s["outbox_oldest_age_s"]), (0, 0))  # loket chat has no outbox
        r = run(["stats", "-c", self.conf])
        self.assertIn("waiting to send   0 now\n", r.stdout)
        self.assertIn("write intents for these", r.stdout)
        self.assertIn("harga cabai brp", r.stdout)

    def test_backup_is_a_consistent_private_copy(self):
        dest = os.path.join(self.tmp, "backup.db")
        r = run(["backup", "-c", self.conf, dest])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(dest).st_mode), 0o600)
        a = sqlite3.connect(self.db)
        b = sqlite3.connect(dest)
        try:
            self.assertEqual(a.execute("select count(*) from messages").fetchone(),
                             b.execute("select count(*) from messages").fetchone())
            self.assertEqual(b.execute("pragma integrity_check").fetchone()[0], "ok")
        finally:
            a.close()
            b.close()
        # never over the live database itself
        r = run(["backup", "-c", self.conf, self.db])
        self.assertNotEqual(r.returncode, 0)

    def test_purge_blanks_old_texts_keeps_counts(self):
        old = int((time.time() - 40 * 86400) * 1000)
        db = sqlite3.connect(self.db)
        try:
            with db:
                db.execute("update messages set at_ms = ? where conversation_id = "
                           "(select conversation_id from messages where text = 'harga cabai brp' limit 1)", (old,))
        finally:
            db.close()
        r = run(["purge", "-c", self.conf, "--older-than", "30"])
        self.assertEqual(r.returncode, 0, r.stderr)
        db = sqlite3.connect(self.db)
        try:
            total, blank = db.execute("select count(*), sum(text is null) from messages").fetchone()
            self.assertEqual(blank, 4)  # 2 in, 2 out of the old conversation
            self.assertEqual(db.execute("select count(*) from messages where text like '%cabai%'").fetchone()[0], 0)
            self.assertEqual(db.execute("select count(*) from messages where text like '%formulir%'").fetchone()[0] > 0, True)
        finally:
            db.close()
        self.assertGreaterEqual(total, 9)
        r = run(["purge", "-c", self.conf, "--older-than", "abc"])
        self.assertNotEqual(r.returncode, 0)

    def test_agents(self):
        r = run(["agent", "add", "-c", self.conf, "ayu", "--role", "admin"], stdin="rahasia-panjang\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["agent", "add", "-c", self.conf, "budi"], stdin="short\n")
        self.assertNotEqual(r.returncode, 0)
        r = run(["agent", "add", "-c", self.conf, "ayu"], stdin="another-password\n")
        self.assertNotEqual(r.returncode, 0)
        r = run(["agent", "list", "-c", self.conf])
        self.assertIn("ayu", r.stdout)
        self.assertIn("admin", r.stdout)
        self.assertNotIn("budi", r.stdout)
        r = run(["agent", "disable", "-c", self.conf, "ayu"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("disabled", run(["agent", "list", "-c", self.conf]).stdout)
        db = sqlite3.connect(self.db)
        try:
            h = db.execute("select pwhash from agents where name='ayu'").fetchone()[0]
        finally:
            db.close()
        self.assertTrue(h.startswith("$argon2"))
        self.assertNotIn("rahasia", h)
        r = run(["agent", "passwd", "-c", self.conf, "nobody"], stdin="whatever-long\n")
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=1)
