#!/usr/bin/env python3
"""loket serve's HTTP surface: verification, limits, signatures, routing,
static files, /healthz and /metrics. Run from the repo root:
    python3 tests/integration/test_gw_http.py
"""

import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gw_harness import ServerTestCase, VERIFY_TOKEN, sign, webhook_text  # noqa: E402


class HttpSurface(ServerTestCase):
    gateway_extra = {"server": {"max_body": "4096"}}

    def test_verification_handshake(self):
        cases = [
            ("good token", "hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1158201444" % VERIFY_TOKEN,
             200, b"1158201444"),
            ("wrong token", "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", 403, None),
            ("token prefix", "hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1" % VERIFY_TOKEN[:-1],
             403, None),
            ("wrong mode", "hub.mode=unsubscribe&hub.verify_token=%s&hub.challenge=1" % VERIFY_TOKEN, 403, None),
            ("no token", "hub.mode=subscribe&hub.challenge=1", 403, None),
            ("no challenge", "hub.mode=subscribe&hub.verify_token=%s" % VERIFY_TOKEN, 403, None),
        ]
        for label, query, want, body in cases:
            with self.subTest(label):
                status, hdrs, got = self.gw.request("GET", "/webhook/whatsapp?" + query)
                self.assertEqual(status, want, label)
                if body is not None:
                    self.assertEqual(got, body, label)
                    self.assertTrue(hdrs["content-type"].startswith("text/plain"), label)

    def test_refused_webhooks(self):
        body = webhook_text("6281200000001", "wamid.http.refused.1", "jam buka")
        cases = [
            ("bad signature", body, sign(body, "another-secret"), 403),
            ("signature of another body", body, sign(body + b" "), 403),
            ("garbled signature", body, "sha256=zz", 403),
            ("missing signature", body, None, 403),
            ("malformed json", b"{not json", True, 400),
            ("json but not a webhook", b"[1,2,3]", True, 400),
        ]
        before = self.gw.metrics()
        for label, b, sig, want in cases:
            with self.subTest(label):
                self.assertEqual(self.gw.post_webhook(b, signature=sig), want, label)
        after = self.gw.metrics()
        self.assertEqual(after['loket_rejected_total{reason="bad_signature"}'] -
                         before['loket_rejected_total{reason="bad_signature"}'], 4)
        self.assertEqual(after['loket_rejected_total{reason="malformed"}'] -
                         before['loket_rejected_total{reason="malformed"}'], 2)
        self.assertEqual(self.gw.db_rows("SELECT count(*) FROM messages WHERE provider_id = ?",
                                         ("wamid.http.refused.1",))[0][0], 0)

    def test_oversized_body_is_413_without_reading_it(self):
        before = self.gw.metrics()['loket_rejected_total{reason="too_large"}']
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        try:
            # announce 1 MB, send only the headers: the answer must not wait for the body
            s.sendall(b"POST /webhook/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1048576\r\nX-Hub-Signature-256: sha256=00\r\n\r\n")
            head = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), head[:40])
        self.assertEqual(self.gw.metrics()['loket_rejected_total{reason="too_large"}'] - before, 1)

    def test_post_without_length_is_411(self):
        s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=10)
        try:
            s.sendall(b"POST /webhook/whatsapp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\n\r\n")
            head = s.recv(4096)
        finally:
            s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 411"), head[:40])
        self.assertGreaterEqual(self.gw.metrics()['loket_rejected_total{reason="no_length"}'], 1)
        # the server is still serving
        self.assertEqual(self.gw.request("GET", "/healthz")[0], 200)

    def test_routing(self):
        cases = [
            ("unknown path", "GET", "/nope", 404),
            ("root", "GET", "/", 404),
            ("healthz by POST", "POST", "/healthz", 405),
            ("metrics by POST", "POST", "/metrics", 405),
            ("webhook by PUT", "PUT", "/webhook/whatsapp", None),  # 405, or lws refuses the method
            ("traversal out of chat", "GET", "/chat/../../Makefile", 404),
            ("encoded traversal", "GET", "/chat/%2e%2e/%2e%2e/Makefile", 404),
            ("traversal out of console", "GET", "/console/../gateway/gw.c", 404),
            ("dotfile", "GET", "/console/../.git/config", 404),
        ]
        for label, method, path, want in cases:
            with self.subTest(label):
                body = b"x" if method in ("POST", "PUT") else None
                status, _, got = self.gw.request(method, path, body=body)
                if want is None:
                    self.assertIn(status, (400, 403, 404, 405), label)
                else:
                    self.assertEqual(status, want, label)
                self.assertNotIn(b"CFLAGS", got, label)
                self.assertNotIn(b"#include", got, label)

    def test_chat_page_is_served(self):
        cases = [
            ("/chat/", "text/html"),
            ("/chat/index.html", "text/html"),
            ("/chat/chat.js", "text/javascript"),
            ("/chat/chat.css", "text/css"),
        ]
        root = os.environ.get("LOKET_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        for path, ctype in cases:
            local = os.path.join(root, "console", "chat", path[len("/chat/"):] or "index.html")
            if not os.path.exists(local):
                continue
            with self.subTest(path):
                status, hdrs, body = self.gw.request("GET", path)
                self.assertEqual(status, 200, path)
                self.assertTrue(hdrs["content-type"].startswith(ctype), (path, hdrs["content-type"]))
                with open(local, "rb") as f:
                    self.assertEqual(body, f.read(), path)

    def test_healthz(self):
        status, hdrs, body = self.gw.request("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "application/json")
        import json
        h = json.loads(body)
        self.assertEqual((h["status"], h["store"], h["sender"], h["credentials"]), ("ok", "ok", "ok", "ok"))
        self.assertIsInstance(h["queue"], int)

    def test_metrics_lists_every_family(self):
        status, hdrs, body = self.gw.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["content-type"].startswith("text/plain"))
        text = body.decode()
        for family in ("loket_inbound_total", "loket_outbound_total", "loket_intent_hits_total",
                       "loket_fallbacks_total", "loket_escalations_total", "loket_queue_length",
                       "loket_webhook_seconds", "loket_send_seconds", "loket_send_retries_total",
                       "loket_dead_letters_total", "loket_rejected_total"):
            with self.subTest(family):
                self.assertIn("# TYPE %s " % family, text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
