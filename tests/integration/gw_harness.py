"""Shared pieces of the gateway's integration tests (stdlib only, 127.0.0.1 only).

Gateway   starts `loket serve -c <temp config>` on a free port with a temp SQLite
          file, the intents fixture of tests/integration/intents and
          whatsapp.api_base pointed at a Provider; stops it by PID.
webhook_* builds WhatsApp Cloud API notifications like tests/fixtures/.
WsClient  a minimal RFC 6455 client: handshake with a subprotocol, masked text
          frames out, frames in.

Environment: LOKET_BIN (default bin/loket), LOKET_ROOT (default: the repo).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("LOKET_ROOT") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("LOKET_BIN") or os.path.join(ROOT, "bin", "loket")
if not os.path.isabs(BIN):
    BIN = os.path.join(ROOT, BIN)
sys.path.insert(0, HERE)

from provider import Provider  # noqa: E402  (tests/integration/provider.py)

APP_SECRET = "0123456789abcdef0123456789abcdef"
VERIFY_TOKEN = "verify-me-7c1d"
ACCESS_TOKEN = "EAAtest-access-token-never-logged"
PHONE_NUMBER_ID = "109876543210987"
INTENTS = os.path.join(HERE, "intents")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sign(body, secret=APP_SECRET):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def fixture(name, fresh=True):
    """A fixture's bytes; fresh: its "timestamp" fields set to now, so that
    WhatsApp's 24-hour window is open for the reply."""
    with open(os.path.join(FIXTURES, name), "rb") as f:
        data = f.read()
    if fresh:
        data = re.sub(rb'"timestamp": "\d+"', b'"timestamp": "%d"' % int(time.time()), data)
    return data


def wait_for(pred, timeout=10.0, step=0.05):
    """Polls pred() until it returns something true; returns it, or None."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


# ---- WhatsApp notifications ----

def _envelope(value):
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102938475610293",
                       "changes": [{"value": dict({"messaging_product": "whatsapp",
                                                   "metadata": {"display_phone_number": "6281190001234",
                                                                "phone_number_id": PHONE_NUMBER_ID}},
                                                  **value),
                                    "field": "messages"}]}]}


def webhook_text(sender, msg_id, text, name="Warga"):
    return json.dumps(_envelope({
        "contacts": [{"profile": {"name": name}, "wa_id": sender}],
        "messages": [{"from": sender, "id": msg_id, "timestamp": str(int(time.time())),
                      "type": "text", "text": {"body": text}}]})).encode()


def webhook_button(sender, msg_id, button_id, title):
    return json.dumps(_envelope({
        "contacts": [{"profile": {"name": "Warga"}, "wa_id": sender}],
        "messages": [{"from": sender, "id": msg_id, "timestamp": str(int(time.time())),
                      "type": "interactive",
                      "interactive": {"type": "button_reply",
                                      "button_reply": {"id": button_id, "title": title}}}]})).encode()


def webhook_reaction(sender, msg_id, to_wamid, emoji):
    """A citizen's emoji on one of our messages (emoji None: taken back)."""
    reaction = {"message_id": to_wamid}
    if emoji is not None:
        reaction["emoji"] = emoji
    return json.dumps(_envelope({
        "contacts": [{"profile": {"name": "Warga"}, "wa_id": sender}],
        "messages": [{"from": sender, "id": msg_id, "timestamp": str(int(time.time())),
                      "type": "reaction", "reaction": reaction}]})).encode()


def webhook_system(sender, msg_id, body):
    """WhatsApp's own notice in a conversation (the citizen changed number)."""
    return json.dumps(_envelope({
        "messages": [{"from": sender, "id": msg_id, "timestamp": str(int(time.time())),
                      "type": "system", "system": {"body": body, "wa_id": "6281299999999",
                                                   "type": "user_changed_number"}}]})).encode()


def webhook_status(wamid, status, recipient="6281234567890"):
    st = {"id": wamid, "status": status, "timestamp": str(int(time.time())), "recipient_id": recipient}
    if status == "failed":
        st["errors"] = [{"code": 131047, "title": "Re-engagement message"}]
    return json.dumps(_envelope({"statuses": [st]})).encode()


# ---- the gateway process ----

class Gateway:
    """One `loket serve` process with its own temp directory."""

    def __init__(self, provider_url, tmpdir=None, db=None, extra=None, app_secret=APP_SECRET):
        self.tmp = tmpdir or tempfile.mkdtemp(prefix="loket-gw-")
        self.port = free_port()
        self.db = db or os.path.join(self.tmp, "loket.db")
        self.log_path = os.path.join(self.tmp, "serve.log")
        self.proc = None
        sections = {
            "server": {"listen": "127.0.0.1:%d" % self.port, "public_url": "http://127.0.0.1:%d" % self.port,
                       "max_body": "65536"},
            "store": {"path": self.db, "synchronous": "FULL"},
            "bot": {"intents": INTENTS, "rate_limit_per_minute": "1000"},
            "whatsapp": {"phone_number_id": PHONE_NUMBER_ID, "access_token": ACCESS_TOKEN,
                         "app_secret": app_secret, "verify_token": VERIFY_TOKEN, "api_base": provider_url},
            "sender": {"backoff_initial_ms": "100", "backoff_max_ms": "400", "timeout_ms": "3000"},
            "log": {"level": "info"},
        }
        for sec, kv in (extra or {}).items():
            sections.setdefault(sec, {}).update(kv)
        self.config = os.path.join(self.tmp, "loket.ini")
        with open(self.config, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "-c", self.config], cwd=ROOT, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        if wait and not wait_for(self._healthy, timeout=15):
            self.stop()
            raise RuntimeError("loket serve did not become healthy; log:\n" + self.log())
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError("loket serve exited with %s; log:\n%s" % (self.proc.returncode, self.log()))
        try:
            status, _, _ = self.request("GET", "/healthz", timeout=1)
            return status == 200
        except OSError:
            return False

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout=20):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """SIGTERM, then SIGKILL if it does not exit; returns the exit code."""
        if not self.proc:
            return None
        rc = self.proc.poll()
        if rc is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            rc = self.wait(20)
            if rc is None:
                os.kill(self.proc.pid, signal.SIGKILL)
                rc = self.proc.wait()
        self.logf.close()
        return rc

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.logf.close()

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- HTTP ----

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def post_webhook(self, body, signature=True, headers=None, timeout=10):
        h = {"Content-Type": "application/json"}
        if signature is True:
            h["X-Hub-Signature-256"] = sign(body)
        elif signature:
            h["X-Hub-Signature-256"] = signature
        h.update(headers or {})
        return self.request("POST", "/webhook/whatsapp", body, h, timeout)[0]

    def metrics(self):
        status, _, body = self.request("GET", "/metrics")
        assert status == 200, status
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def db_rows(self, sql, args=()):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()


class ServerTestCase(unittest.TestCase):
    """One provider and one `loket serve` for a whole test class. Set
    gateway_extra to add config keys. At the end the server must stop with exit
    code 0 and no secret may appear in its log; LOKET_TEST_LOG=1 prints it."""
    gateway_extra = None

    @classmethod
    def setUpClass(cls):
        cls.p = Provider().start()
        cls.gw = Gateway(cls.p.url, extra=cls.gateway_extra)
        try:
            cls.gw.start()
        except Exception:
            cls.p.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        cls.p.stop()
        log = cls.gw.log()
        if rc != 0 or os.environ.get("LOKET_TEST_LOG"):
            sys.stderr.write(log)
        cls.gw.cleanup()
        assert rc == 0, "loket serve exited with %r" % rc
        for secret in (ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN):
            assert secret not in log, "a secret reached the log"


def provider_messages(p, to=None):
    """The provider's recorded send requests as (to, text, body dict), oldest first."""
    out = []
    for r in p.requests():
        if r["method"] != "POST" or not r["path"].endswith("/messages"):
            continue
        try:
            b = json.loads(r["body"])
        except ValueError:
            continue
        text = (b.get("text") or {}).get("body")
        if text is None and b.get("type") == "interactive":
            text = ((b.get("interactive") or {}).get("body") or {}).get("text")
        if to is None or b.get("to") == to:
            out.append((b.get("to"), text or "", b))
    return out


# ---- a minimal websocket client (RFC 6455) ----

class WsError(Exception):
    pass


class WsClient:
    def __init__(self, port, path="/ws/chat", protocol="loket-chat", timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, port, key))
        if protocol:
            req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
        try:
            self.sock.sendall((req + "\r\n").encode())
            head = self._read_until(b"\r\n\r\n")
        except (OSError, WsError):
            self.sock.close()
            raise WsError("handshake refused: connection closed")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if len(lines[0].split()) > 1 else 0
        hdrs = dict((l.split(":", 1)[0].strip().lower(), l.split(":", 1)[1].strip()) for l in lines[1:] if ":" in l)
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        if self.status != 101 or hdrs.get("sec-websocket-accept", "").encode() != want:
            self.sock.close()
            raise WsError("handshake refused: %s" % lines[0])
        self.protocol = hdrs.get("sec-websocket-protocol")

    def _read_until(self, marker):
        while marker not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise WsError("connection closed during handshake")
            self.buf += d
        i = self.buf.index(marker) + len(marker)
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def _read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise WsError("connection closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, payload, opcode=1):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_json(self, obj):
        self.send_frame(json.dumps(obj).encode())

    def recv_frame(self, timeout=10):
        self.sock.settimeout(timeout)
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        if b1 & 0x80:
            mask = self._read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
        else:
            data = self._read(n)
        return b0 & 0x0F, data

    def recv_json(self, timeout=10):
        """The next text frame as JSON (answers pings, raises on close)."""
        while True:
            op, data = self.recv_frame(timeout)
            if op == 1:
                return json.loads(data.decode())
            if op == 9:
                self.send_frame(data, opcode=10)
            elif op == 8:
                raise WsError("closed by server")

    def recv_until(self, pred, timeout=10):
        """Frames until pred(frame) is true; returns (that frame, all frames seen)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WsError("timeout; frames seen: %r" % seen)
            f = self.recv_json(left)
            seen.append(f)
            if pred(f):
                return f, seen

    def close(self):
        try:
            self.send_frame(struct.pack("!H", 1000), opcode=8)
        except OSError:
            pass
        self.sock.close()
