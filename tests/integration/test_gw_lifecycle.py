#!/usr/bin/env python3
"""loket serve under crashes and stops: SIGKILL in the middle of a stream of
webhooks loses no acknowledged message, SIGTERM answers what it took and exits 0.
Run from the repo root:
    python3 tests/integration/test_gw_lifecycle.py
"""

import collections
import os
import signal
import sqlite3
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gw_harness import Gateway, Provider, provider_messages, wait_for, webhook_text  # noqa: E402

N_WEBHOOKS = 200
N_THREADS = 4


def stream(gw, n, threads, prefix, acked, failed, started=None):
    """Posts n webhooks (distinct senders and ids) from several threads; fills
    acked with the senders answered 200 and failed with the others."""
    lock = threading.Lock()
    counter = iter(range(n))

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            sender = "62899%07d" % (int(prefix) * 100000 + i)
            body = webhook_text(sender, "wamid.%s.%d" % (prefix, i), "jam buka kantor")
            try:
                status = gw.post_webhook(body, timeout=10)
            except OSError:
                status = None
            with lock:
                (acked if status == 200 else failed).append((sender, status))
                if started is not None:
                    started.set()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    return ts


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.p = Provider().start()
        self.addCleanup(self.p.stop)

    def gateway(self, **kw):
        gw = Gateway(self.p.url, extra={"sender": {"timeout_ms": "1000"}}, **kw)
        self.addCleanup(gw.cleanup)
        self.addCleanup(gw.stop)
        return gw

    def test_sigkill_mid_stream_loses_no_acknowledged_message(self):
        gw = self.gateway().start()
        acked, failed = [], []
        ts = stream(gw, N_WEBHOOKS, N_THREADS, "1", acked, failed)
        wait_for(lambda: len(acked) >= N_WEBHOOKS // 3, timeout=30, step=0.001)
        gw.kill9()
        for t in ts:
            t.join()
        n_acked = len(acked)
        self.assertGreater(n_acked, 0)
        # restart on the same database
        gw2 = Gateway(self.p.url, tmpdir=gw.tmp, db=gw.db, extra={"sender": {"timeout_ms": "1000"}})
        self.addCleanup(gw2.stop)
        gw2.start()
        acked_senders = set(s for s, _ in acked)

        def all_delivered():
            got = set(to for to, _, _ in provider_messages(self.p))
            return acked_senders <= got

        self.assertTrue(wait_for(all_delivered, timeout=40),
                        "acknowledged webhooks without a delivered reply: %d" %
                        len(acked_senders - set(to for to, _, _ in provider_messages(self.p))))
        # every acknowledged message is in the database exactly once
        stored = gw2.db_rows("SELECT count(*) FROM messages WHERE direction = 'in' AND provider_id LIKE 'wamid.1.%'")[0][0]
        self.assertGreaterEqual(stored, n_acked)
        per_to = collections.Counter(to for to, _, _ in provider_messages(self.p))
        twice = sum(1 for to in per_to if per_to[to] > 1)
        print("\nsigkill: %d webhooks acknowledged before the kill, %d refused or cut, %d stored, "
              "%d replies delivered, %d replies sent twice" % (n_acked, len(failed), stored, len(per_to), twice))
        self.assertEqual(gw2.stop(), 0)

    def test_sigterm_answers_what_it_took_and_exits_0(self):
        gw = self.gateway().start()
        acked, failed = [], []
        started = threading.Event()
        ts = stream(gw, N_WEBHOOKS, N_THREADS, "2", acked, failed, started)
        started.wait(10)
        time.sleep(0.05)
        gw.signal(signal.SIGTERM)
        rc = gw.wait(30)
        for t in ts:
            t.join()
        self.assertEqual(rc, 0, gw.log()[-2000:])
        self.assertGreater(len(acked), 0)
        # each 200 was committed; the others got 503 or found the door closed
        ids = set(r[0] for r in gw.db_rows("SELECT provider_id FROM messages WHERE direction = 'in'"))
        for sender, _ in acked:
            i = int(sender) % 100000
            self.assertIn("wamid.2.%d" % i, ids)
        self.assertTrue(all(st in (None, 503) for _, st in failed), set(st for _, st in failed))
        log = gw.log()
        self.assertIn("serve_stop", log)
        print("\nsigterm: %d acknowledged, %d refused (503 or closed)" % (len(acked), len(failed)))

    def test_locked_database_is_503_then_everything_goes_through(self):
        """Another process holds the database's write lock (an admin's sqlite3
        shell, a stuck tool): webhooks are answered 503 after the busy timeout
        (Meta retries), /healthz says so, nothing is half-written; once the
        lock is released the retried webhook goes through and every reply is
        sent once and recorded."""
        gw = Gateway(self.p.url, extra={"sender": {"timeout_ms": "1000"}, "store": {"busy_timeout_ms": "300"}})
        self.addCleanup(gw.cleanup)
        self.addCleanup(gw.stop)
        gw.start()
        first = webhook_text("6281300000001", "wamid.lock.1", "jam buka kantor")
        self.assertEqual(gw.post_webhook(first), 200)
        self.assertTrue(wait_for(lambda: provider_messages(self.p, "6281300000001"), timeout=10))

        holder = sqlite3.connect(gw.db, timeout=10, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            second = webhook_text("6281300000002", "wamid.lock.2", "jam buka kantor")
            t0 = time.monotonic()
            status = gw.post_webhook(second)
            self.assertEqual(status, 503, "a webhook while the database is locked")
            self.assertGreaterEqual(time.monotonic() - t0, 0.25, "answered before the busy timeout")
            code, _, _ = gw.request("GET", "/healthz")
            self.assertEqual(code, 503)
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        self.assertEqual(gw.post_webhook(second), 200, "the provider's retry after the lock")
        self.assertTrue(wait_for(lambda: provider_messages(self.p, "6281300000002"), timeout=10))
        # every reply recorded as sent
        self.assertTrue(wait_for(lambda: gw.db_rows(
            "SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'sent'")[0][0] == 2, timeout=10),
            gw.db_rows("SELECT id, status FROM messages WHERE direction = 'out'"))
        self.assertEqual(gw.db_rows("SELECT count(*) FROM messages WHERE provider_id = 'wamid.lock.2'")[0][0], 1)
        self.assertEqual(gw.db_rows("SELECT count(*) FROM outbox")[0][0], 0)
        self.assertEqual(len(provider_messages(self.p, "6281300000001")), 1, "the first reply was sent twice")
        self.assertEqual(gw.request("GET", "/healthz")[0], 200)
        self.assertEqual(gw.stop(), 0)

    def test_start_fails_clearly_on_a_bad_store_path(self):
        gw = self.gateway()
        blocker = os.path.join(gw.tmp, "a-file")
        open(blocker, "w").close()  # a path under a regular file can never be created
        gw2 = Gateway(self.p.url, tmpdir=gw.tmp, db=os.path.join(blocker, "loket.db"))
        gw2.start(wait=False)
        rc = gw2.wait(15)
        gw2.logf.close()
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot open the store", gw2.log())

    def test_start_fails_clearly_when_the_port_is_taken(self):
        gw = self.gateway().start()
        gw2 = Gateway(self.p.url)
        self.addCleanup(gw2.cleanup)
        with open(gw2.config) as f:
            cfg = f.read().replace(":%d" % gw2.port, ":%d" % gw.port)
        with open(gw2.config, "w") as f:
            f.write(cfg)
        gw2.start(wait=False)
        rc = gw2.wait(15)
        gw2.logf.close()
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot listen", gw2.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
