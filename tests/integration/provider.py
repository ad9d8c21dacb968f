#!/usr/bin/env python3
"""A fake messaging provider for loket's tests (stdlib only, 127.0.0.1 only).

It answers like the WhatsApp Cloud API's POST /{phone_number_id}/messages, in a
mode the test chooses, and records every request so the test can check exactly
what loket sent.

Command line (the C tests use this):
    python3 tests/integration/provider.py --port 0 --portfile FILE
writes the bound port to FILE once it listens; stops cleanly on SIGTERM/SIGINT.

As a module (in-process, on a thread):
    from provider import Provider
    p = Provider(); p.start(); p.port
    p.set_mode("500", count=2); p.requests(); p.reset(); p.stop()

HTTP control interface (not recorded):
    POST /_control  {"mode": "ok"|"slow"|"500"|"429"|"window"|"bad"|"expired"|"hang", "count": N}
                    the mode holds for the next N recorded requests, then "ok"
                    again; without count it holds until changed
    GET  /_requests a JSON array of {"method", "path", "headers", "body", "time",
                    "wamid"} (wamid: the id an ok or slow answer gives, else null)
    POST /_reset    forgets the requests, mode back to "ok"

Modes, for every other request:
    ok      200, {"messaging_product": "whatsapp", "contacts": [...],
            "messages": [{"id": "wamid.test.<n>"}]} with n unique per provider
    slow    as ok, after SLOW_S seconds (the id is known, in /_requests, at once)
    500     500 with a Graph API error object (code 1, "An unknown error occurred")
    429     429 with Meta's throughput error (code 130429), as the fixture
            whatsapp_send_error_ratelimit.json
    window  400 with code 131047 (more than 24 hours since the citizen wrote)
    bad     400 with code 100 (invalid parameter)
    expired 401 with code 190, subcode 463 (the access token has expired: Meta's
            OAuthException for an expired token)
    hang    reads the request and never answers, until the client gives up
            (the connection is closed after 60 s, or when the provider stops)
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "slow", "500", "429", "window", "bad", "expired", "hang")
HANG_MAX_S = 60.0
SLOW_S = 1.5

ERR_500 = {"error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 1,
                     "error_subcode": 99, "fbtrace_id": "AtestFbtrace500"}}
ERR_429 = {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429,
                     "error_data": {"messaging_product": "whatsapp",
                                    "details": "Cloud API message throughput has been reached."},
                     "error_subcode": 2494055, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}}
ERR_WINDOW = {"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException",
                        "code": 131047,
                        "error_data": {"messaging_product": "whatsapp",
                                       "details": "Message failed to send because more than 24 hours have "
                                                  "passed since the customer last replied to this number."},
                        "fbtrace_id": "AtestFbtraceWin"}}
ERR_EXPIRED = {"error": {"message": "Error validating access token: Session has expired on Friday, "
                                    "27-Nov-26 09:00:00 PST. The current time is Saturday, 28-Nov-26 "
                                    "04:12:40 PST.",
                         "type": "OAuthException", "code": 190, "error_subcode": 463,
                         "fbtrace_id": "AtestFbtraceExp"}}
ERR_BAD = {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100,
                     "error_data": {"messaging_product": "whatsapp", "details": "Parameter value is not valid"},
                     "fbtrace_id": "AtestFbtraceBad"}}


class _State:
    """What the handlers share: the mode, the recorded requests, the id counter."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.reset()

    def reset(self):
        with self.lock:
            self.log = []
            self.mode = "ok"
            self.count = None  # None: until changed
            self.next_id = 0

    def set_mode(self, mode, count=None):
        if mode not in MODES:
            raise ValueError("unknown mode %r" % (mode,))
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
            raise ValueError("count must be a non-negative integer")
        with self.lock:
            self.mode = mode
            self.count = count

    def record(self, entry):
        """Records one request; returns the mode it gets and, for ok, its id."""
        with self.lock:
            self.log.append(entry)
            mode = self.mode
            if self.count is not None:
                if self.count <= 0:
                    mode = "ok"
                    self.mode, self.count = "ok", None
                else:
                    self.count -= 1
                    if self.count == 0:
                        self.mode, self.count = "ok", None
            wamid = None
            if mode in ("ok", "slow"):
                self.next_id += 1
                wamid = "wamid.test.%d" % self.next_id
            entry["wamid"] = wamid
            return mode, wamid

    def requests(self):
        with self.lock:
            return [dict(r) for r in self.log]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Graph API does
    server_version = "loket-test-provider"

    def setup(self):
        super().setup()
        # headers and body leave in separate writes: without this, Nagle plus
        # the client's delayed ACK add 40 ms to every answer on a kept-alive
        # connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # quiet: the tests read /_requests
        pass

    @property
    def state(self):
        return self.server.state

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _control(self, raw):
        if self.command == "GET" and self.path == "/_requests":
            self._send(200, self.state.requests())
        elif self.command == "POST" and self.path == "/_reset":
            self.state.reset()
            self._send(200, {"ok": True})
        elif self.command == "POST" and self.path == "/_control":
            try:
                req = json.loads(raw.decode() or "{}")
                self.state.set_mode(req.get("mode", "ok"), req.get("count"))
            except (ValueError, AttributeError) as e:
                self._send(400, {"error": str(e)})
                return
            self._send(200, {"ok": True})
        else:
            self._send(405, {"error": "method not allowed"})

    def _handle(self):
        raw = self._body()
        if self.path in ("/_control", "/_requests", "/_reset"):
            self._control(raw)
            return
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": raw.decode("utf-8", errors="replace"),
            "time": time.time(),
        }
        mode, wamid = self.state.record(entry)
        if mode == "slow":
            time.sleep(SLOW_S)
            mode = "ok"
        if mode == "ok":
            to = ""
            try:
                to = str(json.loads(entry["body"]).get("to", ""))
            except (ValueError, AttributeError):
                pass
            self._send(200, {"messaging_product": "whatsapp",
                             "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                             "messages": [{"id": wamid}]})
        elif mode == "500":
            self._send(500, ERR_500)
        elif mode == "429":
            self._send(429, ERR_429)
        elif mode == "window":
            self._send(400, ERR_WINDOW)
        elif mode == "bad":
            self._send(400, ERR_BAD)
        elif mode == "expired":
            self._send(401, ERR_EXPIRED)
        else:  # hang
            deadline = time.monotonic() + HANG_MAX_S
            while time.monotonic() < deadline and not self.state.stopping.is_set():
                time.sleep(0.05)
            self.close_connection = True

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that goes away mid-request (a test SIGKILLs loket while
        # it sends) is expected; anything else still prints its traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class Provider:
    """The provider on a background thread of this process."""

    def __init__(self, host="127.0.0.1", port=0):
        self.state = _State()
        self._server = _Server((host, port), _Handler)
        self._server.state = self.state
        self._thread = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    def requests(self):
        return self.state.requests()

    def set_mode(self, mode, count=None):
        self.state.set_mode(mode, count)

    def reset(self):
        self.state.reset()

    def stop(self):
        self.state.stopping.set()  # releases hanging handlers
        if self._thread:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake WhatsApp Cloud API provider for tests (127.0.0.1 only)")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    ap.add_argument("--portfile", help="write the bound port here once listening")
    ap.add_argument("--mode", default="ok", choices=MODES, help="initial mode")
    args = ap.parse_args(argv)

    p = Provider(port=args.port)
    p.set_mode(args.mode)
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    p.start()
    if args.portfile:
        tmp = args.portfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % p.port)
        os.replace(tmp, args.portfile)  # readers never see a half-written file
    else:
        print(p.port, flush=True)
    while not done.wait(0.5):
        pass
    p.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
