#!/usr/bin/env python3
"""The web chat over a real websocket (/ws/chat, subprotocol loket-chat):
sessions, replies, resume with hello{session, since}, errors, refused upgrades.
Run from the repo root:
    python3 tests/integration/test_gw_webchat.py
"""

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gw_harness import ServerTestCase, WsClient, WsError  # noqa: E402


def is_type(t):
    return lambda f: f.get("type") == t


class WebChat(ServerTestCase):
    def connect(self):
        ws = WsClient(self.gw.port)
        self.addCleanup(ws.close)
        return ws

    def test_new_session_then_a_question(self):
        ws = self.connect()
        self.assertEqual(ws.protocol, "loket-chat")
        sess = ws.recv_json()
        self.assertEqual(sess["type"], "session")
        self.assertRegex(sess["id"], r"^[0-9a-f]{32}$")
        self.assertEqual(sess["office"], "DPMPPTSP Kabupaten Tabanan")  # from [office] name
        ws.send_json({"type": "message", "text": "jam buka kantor brp?"})
        msg, _ = ws.recv_until(is_type("message"))
        self.assertEqual(msg["from"], "bot")
        self.assertIn("GW-JAM", msg["text"])
        self.assertEqual(msg["buttons"], [{"id": "kontak", "title": "Kontak"}])
        self.assertIsInstance(msg["seq"], int)
        # a quick reply
        ws.send_json({"type": "message", "button": "kontak"})
        msg2, _ = ws.recv_until(is_type("message"))
        self.assertIn("GW-KONTAK", msg2["text"])
        self.assertGreater(msg2["seq"], msg["seq"])
        # nothing reached the WhatsApp provider
        self.assertFalse([r for r in self.p.requests() if sess["id"] in r["body"]])

    def test_session_ids_differ(self):
        ids = set()
        for _ in range(5):
            ws = self.connect()
            ids.add(ws.recv_json()["id"])
        self.assertEqual(len(ids), 5)

    def test_resume_with_hello_gets_missed_messages(self):
        ws = self.connect()
        sid = ws.recv_json()["id"]
        ws.send_json({"type": "message", "text": "jam layanan kapan"})
        first, _ = ws.recv_until(is_type("message"))
        ws.close()
        # a second socket of the same session, then the page reloads and asks since the first
        ws2 = self.connect()
        ws2.send_json({"type": "hello", "session": sid, "since": 0})
        s2, _ = ws2.recv_until(is_type("session"))
        self.assertEqual(s2["id"], sid)
        again, _ = ws2.recv_until(is_type("message"))
        self.assertEqual((again["seq"], again["text"]), (first["seq"], first["text"]))
        ws2.send_json({"type": "message", "text": "nomor telepon kantor"})
        later, _ = ws2.recv_until(is_type("message"))
        ws2.close()
        ws3 = self.connect()
        ws3.send_json({"type": "hello", "session": sid, "since": first["seq"]})
        ws3.recv_until(is_type("session"))
        got, _ = ws3.recv_until(is_type("message"))
        self.assertEqual(got["seq"], later["seq"], "only what came after since")
        self.assertIn("GW-KONTAK", got["text"])

    def test_every_socket_of_a_session_gets_the_reply(self):
        a = self.connect()
        sid = a.recv_json()["id"]
        b = self.connect()
        b.send_json({"type": "hello", "session": sid})
        b.recv_until(is_type("session"))
        a.send_json({"type": "message", "text": "jam kerja kantor"})
        ra, _ = a.recv_until(is_type("message"))
        rb, _ = b.recv_until(is_type("message"))
        self.assertEqual(ra, rb)

    def test_escalation_sends_state(self):
        ws = self.connect()
        ws.recv_json()
        ws.send_json({"type": "message", "text": "mau bicara dengan petugas"})
        st, seen = ws.recv_until(is_type("state"))
        self.assertEqual(st["state"], "queued")
        self.assertGreaterEqual(st["position"], 1)
        self.assertTrue(any(f.get("type") == "message" and "GW-PETUGAS" in f["text"] for f in seen))

    def test_resent_message_id_is_answered_once(self):
        ws = self.connect()
        ws.recv_json()
        ws.send_json({"type": "message", "text": "jam buka", "id": "c-1"})
        ws.recv_until(is_type("message"))
        ws.send_json({"type": "message", "text": "jam buka", "id": "c-1"})
        ws.send_json({"type": "message", "text": "nomor telepon", "id": "c-2"})
        nxt, _ = ws.recv_until(is_type("message"))
        self.assertIn("GW-KONTAK", nxt["text"], "the re-sent c-1 got no second answer")

    def test_bad_frames_get_errors(self):
        cases = [
            ("not json", b"{nope", "bad_request"),
            ("not an object", b"[1]", "bad_request"),
            ("unknown type", json.dumps({"type": "dance"}).encode(), "bad_request"),
            ("empty text", json.dumps({"type": "message", "text": ""}).encode(), "bad_request"),
            ("text not a string", json.dumps({"type": "message", "text": 5}).encode(), "bad_request"),
            ("too long", json.dumps({"type": "message", "text": "a" * 4097}).encode(), "too_long"),
            ("far too long", json.dumps({"type": "message", "text": "a" * 40000}).encode(), "too_long"),
        ]
        ws = self.connect()
        ws.recv_json()
        for label, frame, code in cases:
            with self.subTest(label):
                ws.send_frame(frame)
                err, _ = ws.recv_until(is_type("error"))
                self.assertEqual(err["code"], code, label)
        # still usable afterwards
        ws.send_json({"type": "message", "text": "a" * 4096})
        ok, _ = ws.recv_until(is_type("message"))
        self.assertEqual(ok["from"], "bot")

    def test_citizen_text_stays_text(self):
        ws = self.connect()
        sid = ws.recv_json()["id"]
        evil = "<img src=x onerror=alert(1)> \"quoted\" \\ \u00e9"
        ws.send_json({"type": "message", "text": evil})
        ws.recv_until(is_type("message"))
        stored = self.gw.db_rows("SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                                 "JOIN contacts k ON k.id = c.contact_id WHERE k.address = ? AND "
                                 "m.direction = 'in'", (sid,))
        self.assertEqual(stored[0][0], evil)

    def test_refused_upgrades(self):
        cases = [
            ("no subprotocol", "/ws/chat", None),
            ("wrong path", "/ws/other", "loket-chat"),
            ("webhook path", "/webhook/whatsapp", "loket-chat"),
            ("wrong subprotocol", "/ws/chat", "loket-console-nope"),
        ]
        for label, path, proto in cases:
            with self.subTest(label):
                with self.assertRaises(WsError, msg=label):
                    WsClient(self.gw.port, path=path, protocol=proto).close()

    def test_metrics_count_web(self):
        before = self.gw.metrics()
        ws = self.connect()
        ws.recv_json()
        ws.send_json({"type": "message", "text": "jam buka"})
        ws.recv_until(is_type("message"))
        after = self.gw.metrics()
        self.assertEqual(after['loket_inbound_total{channel="web"}'] - before['loket_inbound_total{channel="web"}'], 1)
        self.assertEqual(after['loket_outbound_total{channel="web",outcome="pushed"}'] -
                         before['loket_outbound_total{channel="web",outcome="pushed"}'], 1)
        self.assertTrue(re.search(r"\d", str(after["loket_queue_length"])))


if __name__ == "__main__":
    unittest.main(verbosity=2)
