#!/usr/bin/env python3
"""A webhook's way through loket serve: signed notification -> durable commit ->
200 -> the bot's reply at the provider; duplicates, statuses, buttons, media,
provider failures. Run from the repo root:
    python3 tests/integration/test_gw_webhook.py
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gw_harness import (BIN, ServerTestCase, fixture, provider_messages, wait_for, webhook_button,  # noqa: E402
                        webhook_reaction, webhook_status, webhook_system, webhook_text)

FIXTURE_SENDER = "6281234567890"


class Webhooks(ServerTestCase):
    def setUp(self):
        self.p.set_mode("ok")

    def replies(self, to, n=1, timeout=10):
        got = wait_for(lambda: len(provider_messages(self.p, to)) >= n and provider_messages(self.p, to),
                       timeout=timeout)
        return got or provider_messages(self.p, to)

    def test_text_reply_reaches_the_provider(self):
        cases = [
            ("indonesian", "6281200000101", "jam buka kantor brp?", "GW-JAM"),
            ("english", "6281200000102", "what are your opening hours", "GW-JAM"),
            ("contact", "6281200000103", "minta nomor telepon", "GW-KONTAK"),
            ("nothing matches", "6281200000104", "qwertyuiop", "GW-"),
        ]
        for label, sender, text, marker in cases:
            with self.subTest(label):
                body = webhook_text(sender, "wamid.text.%s" % sender, text)
                self.assertEqual(self.gw.post_webhook(body), 200, label)
                # durable before the 200: the message is in the file already
                self.assertEqual(self.gw.db_rows("SELECT count(*) FROM messages WHERE provider_id = ?",
                                                 ("wamid.text.%s" % sender,))[0][0], 1, label)
                got = self.replies(sender)
                self.assertEqual(len(got), 1, label)
                to, reply, req = got[0]
                self.assertEqual(to, sender, label)
                self.assertIn(marker, reply, label)
        reqs = [r for r in self.p.requests() if r["path"].endswith("/messages")]
        self.assertTrue(all(r["headers"].get("Authorization", "").startswith("Bearer ") for r in reqs))

    def test_fixture_text_message(self):
        self.assertEqual(self.gw.post_webhook(fixture("whatsapp_text.json")), 200)
        got = self.replies(FIXTURE_SENDER)
        self.assertGreaterEqual(len(got), 1)

    def test_duplicate_message_id_is_answered_once(self):
        sender = "6281200000201"
        body = webhook_text(sender, "wamid.dup.1", "jam layanan kapan")
        before = self.gw.metrics()['loket_rejected_total{reason="duplicate"}']
        for i in range(3):
            self.assertEqual(self.gw.post_webhook(body), 200, "attempt %d" % i)
        self.replies(sender)
        time.sleep(1.0)  # give a second reply the time to show up, if there were one
        self.assertEqual(len(provider_messages(self.p, sender)), 1)
        self.assertEqual(self.gw.metrics()['loket_rejected_total{reason="duplicate"}'] - before, 2)
        self.assertEqual(self.gw.db_rows("SELECT count(*) FROM messages WHERE provider_id = 'wamid.dup.1'")[0][0], 1)

    def test_button_reply_leads_to_its_intent(self):
        sender = "6281200000301"
        self.assertEqual(self.gw.post_webhook(webhook_button(sender, "wamid.btn.1", "kontak", "Kontak")), 200)
        got = self.replies(sender)
        self.assertIn("GW-KONTAK", got[0][1])
        # the fixture's button names no intent of ours: answered, not crashed
        self.assertEqual(self.gw.post_webhook(fixture("whatsapp_button_reply.json")), 200)

    def test_image_gets_the_text_only_reply(self):
        body = fixture("whatsapp_image.json").replace(FIXTURE_SENDER.encode(), b"6281200000401")
        self.assertEqual(self.gw.post_webhook(body), 200)
        got = self.replies("6281200000401")
        self.assertIn("GW-TEXTONLY", got[0][1])

    def test_reaction_and_system_notice_are_kept_and_not_answered(self):
        """A thumbs-up on the bot's answer and WhatsApp's notice of a changed
        number are kept (the transcript shows them) and get no reply: not the
        text-only note media gets."""
        sender = "6281200000411"
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.re.1", "jam buka kantor")), 200)
        self.assertEqual(len(self.replies(sender)), 1)
        for msg_id, emoji in (("wamid.re.2", "\U0001F44D"), ("wamid.re.3", None)):
            self.assertEqual(self.gw.post_webhook(webhook_reaction(sender, msg_id, "wamid.test.1", emoji)), 200)
        notice = "Warga changed their phone number to a new number"
        self.assertEqual(self.gw.post_webhook(webhook_system(sender, "wamid.re.5", notice)), 200)
        rows = self.gw.db_rows("SELECT kind, media_type, text FROM messages WHERE provider_id IN "
                               "('wamid.re.2', 'wamid.re.3', 'wamid.re.5') ORDER BY provider_id")
        self.assertEqual(rows, [("event", "reaction", "\U0001F44D"), ("event", "reaction", None),
                                ("event", "system", notice)])
        time.sleep(1.0)  # a reply would have reached the provider by now (the first one took ms)
        self.assertEqual(len(provider_messages(self.p, sender)), 1, "no reply to a reaction or a notice")
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.re.4", "jam buka kantor")), 200)
        self.assertEqual(len(self.replies(sender, n=2)), 2, "the next question is answered as usual")

    def test_statuses_update_the_stored_message(self):
        sender = "6281200000501"
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.st.1", "jam kerja kantor")), 200)
        self.replies(sender)
        row = wait_for(lambda: self.gw.db_rows(
            "SELECT m.provider_id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "JOIN contacts k ON k.id = c.contact_id WHERE k.address = ? AND m.direction = 'out' "
            "AND m.status = 'sent'", (sender,)))
        self.assertTrue(row, "the reply was never marked sent")
        wamid = row[0][0]
        cases = [("delivered", "delivered"), ("read", "read"), ("delivered after read", "read")]
        for label, want in cases:
            status = label.split()[0]
            with self.subTest(label):
                self.assertEqual(self.gw.post_webhook(webhook_status(wamid, status, sender)), 200, label)
                got = self.gw.db_rows("SELECT status FROM messages WHERE provider_id = ?", (wamid,))[0][0]
                self.assertEqual(got, want, label)
        # the fixtures: an unknown id is fine (200), nothing changes
        self.assertEqual(self.gw.post_webhook(fixture("whatsapp_status_delivered.json")), 200)

    def test_failed_status_keeps_the_error(self):
        sender = "6281200000601"
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.st.2", "kontak kantor apa")), 200)
        self.replies(sender)
        row = wait_for(lambda: self.gw.db_rows(
            "SELECT m.provider_id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "JOIN contacts k ON k.id = c.contact_id WHERE k.address = ? AND m.direction = 'out' "
            "AND m.status = 'sent'", (sender,)))
        wamid = row[0][0]
        self.assertEqual(self.gw.post_webhook(webhook_status(wamid, "failed", sender)), 200)
        status, error = self.gw.db_rows("SELECT status, error FROM messages WHERE provider_id = ?", (wamid,))[0]
        self.assertEqual(status, "failed")
        self.assertIn("131047", error or "")
        self.assertEqual(self.gw.post_webhook(fixture("whatsapp_status_failed.json")), 200)

    def test_status_before_the_send_outcome_is_applied_late(self):
        # Meta can report "sent" and "delivered" before its answer to the send
        # reaches loket: the provider answers 1.5 s late, the statuses come
        # at once, and they still land on the message once the send is known.
        sender = "6281200000651"
        self.p.set_mode("slow", count=1)
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.early.1", "jam buka kantor")), 200)
        req = wait_for(lambda: [r for r in self.p.requests() if r.get("wamid") and sender in r["body"]])
        self.assertTrue(req, "the reply never reached the provider")
        wamid = req[0]["wamid"]
        for status in ("sent", "delivered"):
            self.assertEqual(self.gw.post_webhook(webhook_status(wamid, status, sender)), 200, status)
        self.assertEqual(self.gw.db_rows("SELECT count(*) FROM messages WHERE provider_id = ?", (wamid,))[0][0], 0,
                         "the send's outcome should not be known yet")
        got = wait_for(lambda: self.gw.db_rows(
            "SELECT status FROM messages WHERE provider_id = ? AND status = 'delivered'", (wamid,)), timeout=10)
        self.assertTrue(got, "the early delivered status was lost")
        hist = [r[0] for r in self.gw.db_rows(
            "SELECT h.status FROM message_status h JOIN messages m ON m.id = h.message_id "
            "WHERE m.provider_id = ? ORDER BY h.id", (wamid,))]
        self.assertEqual(hist, ["sent", "sent", "delivered"], "the outcome, then the reports in order")
        self.assertIn("late=1", self.gw.log())

    def test_queue_counts_follow_the_outbox(self):
        # /metrics and /healthz report the writer's kept counts (an exact count
        # reads every outbox row): they must match the outbox at every step.
        def counts():
            m = self.gw.metrics()
            _, _, body = self.gw.request("GET", "/healthz")
            live = self.gw.db_rows("SELECT count(*) FROM outbox WHERE dead = 0")[0][0]
            return m["loket_queue_length"] + m.get("loket_outbox_leased", 0), json.loads(body)["queue"], live

        self.assertTrue(wait_for(lambda: counts() == (0, 0, 0)), counts())
        self.p.set_mode("500")  # every send refused: the replies wait for their retries
        for i in range(5):
            self.assertEqual(self.gw.post_webhook(webhook_text("62812000008%02d" % i, "wamid.q.%d" % i,
                                                               "jam buka kantor")), 200)
        self.assertTrue(wait_for(lambda: counts() == (5, 5, 5)), counts())
        self.p.set_mode("ok")
        self.assertTrue(wait_for(lambda: counts() == (0, 0, 0), timeout=5), counts())
        self.assertGreaterEqual(len(provider_messages(self.p, "6281200000804")), 2, "refused, then sent")

    def test_provider_500_then_ok_delivers_after_retry(self):
        sender = "6281200000701"
        before = len(self.p.requests())
        self.p.set_mode("500", count=2)
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.retry.1", "jam buka")), 200)
        got = self.replies(sender, n=3, timeout=15)
        self.assertEqual(len(got), 3, "two refused attempts and one that went through")
        self.assertTrue(all(g[1] == got[0][1] for g in got), "the same reply each time")
        # the provider has answered; the sender records the outcome right after
        self.assertTrue(wait_for(lambda: self.gw.db_rows(
            "SELECT m.status FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "JOIN contacts k ON k.id = c.contact_id WHERE k.address = ? AND m.direction = 'out'",
            (sender,))[0][0] == "sent"), "the reply is recorded as sent")
        self.assertGreater(len(self.p.requests()), before)
        self.assertGreaterEqual(self.gw.metrics()["loket_send_retries_total"], 2)

    def test_expired_token_holds_replies_until_it_works(self):
        """Meta answers 401 with code 190 (the access token expired): the reply
        is not failed but waits in the outbox, /healthz and /metrics say the
        credentials are refused, the log says so at error level without the
        token, and the reply goes once the provider accepts the token again."""
        sender = "6281200000951"
        self.p.set_mode("expired")
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.exp.1", "jam buka kantor")), 200)
        self.assertTrue(wait_for(lambda: self.gw.metrics()["loket_send_credentials_refused"] == 1),
                        "the gauge says the credentials are refused")
        status, _, body = self.gw.request("GET", "/healthz")
        h = json.loads(body)
        self.assertEqual((status, h["status"], h["credentials"]), (200, "ok", "refused"),
                         "still 200: inbound messages are still taken")
        m = self.gw.metrics()
        self.assertGreaterEqual(m['loket_outbound_total{channel="all",outcome="unauthorized"}'], 1)
        self.assertEqual(m['loket_outbound_total{channel="all",outcome="failed"}'], 0)
        row = self.gw.db_rows(
            "SELECT o.attempts, o.dead, o.last_error, m.status FROM outbox o JOIN messages m ON m.id = o.message_id "
            "JOIN conversations c ON c.id = m.conversation_id JOIN contacts k ON k.id = c.contact_id "
            "WHERE k.address = ?", (sender,))
        self.assertEqual(len(row), 1)
        attempts, dead, last_error, status = row[0]
        self.assertEqual((attempts, dead, status), (0, 0, "queued"), "waiting, no attempt counted")
        self.assertTrue(last_error.startswith("190 "), last_error)
        # what an admin sees meanwhile, from another process on the live file
        r = subprocess.run([BIN, "stats", "-c", self.gw.config, "--json"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(json.loads(r.stdout)["outbox_waiting"], 1)
        r = subprocess.run([BIN, "stats", "-c", self.gw.config], capture_output=True, text=True, timeout=30)
        self.assertRegex(r.stdout, r"waiting to send   [1-9]\d* now, the oldest for \d+ s")
        log = self.gw.log()
        self.assertRegex(log, r' error send_unauthorized channel="whatsapp" http=401 error="190 ')

        self.p.set_mode("ok")
        self.assertTrue(wait_for(lambda: self.gw.db_rows(
            "SELECT m.status FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "JOIN contacts k ON k.id = c.contact_id WHERE k.address = ? AND m.direction = 'out'",
            (sender,))[0][0] == "sent"), "the reply goes once the token works")
        h = json.loads(self.gw.request("GET", "/healthz")[2])
        self.assertEqual(h["credentials"], "ok")
        self.assertEqual(self.gw.metrics()["loket_send_credentials_refused"], 0)
        self.assertIn('info send_authorized channel="whatsapp"', self.gw.log())

    def test_metrics_move(self):
        before = self.gw.metrics()
        sender = "6281200000801"
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.m.1", "jam buka kantor")), 200)
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.m.2", "zzzz xxxx")), 200)
        self.replies(sender, n=2)
        after = self.gw.metrics()
        self.assertEqual(after['loket_inbound_total{channel="whatsapp"}'] -
                         before['loket_inbound_total{channel="whatsapp"}'], 2)
        self.assertEqual(after['loket_intent_hits_total{intent="jam_layanan"}'] -
                         before.get('loket_intent_hits_total{intent="jam_layanan"}', 0), 1)
        self.assertEqual(after["loket_fallbacks_total"] - before["loket_fallbacks_total"], 1)
        self.assertGreaterEqual(after["loket_webhook_seconds_count"] - before["loket_webhook_seconds_count"], 2)
        self.assertGreater(after['loket_outbound_total{channel="whatsapp",outcome="queued"}'],
                           before['loket_outbound_total{channel="whatsapp",outcome="queued"}'])

    def test_escalation_is_counted(self):
        before = self.gw.metrics()["loket_escalations_total"]
        sender = "6281200000901"
        self.assertEqual(self.gw.post_webhook(webhook_text(sender, "wamid.esc.1", "mau bicara dengan petugas")), 200)
        self.replies(sender)
        self.assertEqual(self.gw.metrics()["loket_escalations_total"] - before, 1)
        state = self.gw.db_rows("SELECT c.state FROM conversations c JOIN contacts k ON k.id = c.contact_id "
                                "WHERE k.address = ?", (sender,))[0][0]
        self.assertEqual(state, "queued")


if __name__ == "__main__":
    unittest.main(verbosity=2)
