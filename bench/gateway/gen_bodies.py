#!/usr/bin/env python3
"""Pre-generates signed WhatsApp webhook bodies for the gateway benchmark.

HMAC-SHA256 in wrk's Lua is impractical, so every request is signed here, ahead
of time: one file per wrk thread, one request per line, "signature<TAB>body".
Every body has its own message id and each sender writes a handful of messages,
so the run exercises new contacts, new conversations and dedup lookups alike.

usage: gen_bodies.py OUTDIR THREADS PER_THREAD APP_SECRET
"""

import hashlib
import hmac
import json
import os
import sys
import time

TEXTS = ["jam buka kantor brp?", "minta nomor telepon kantor", "apakah kantor perizinan tutup?",
         "bagaimana cara mengajukan izin online", "qwerty asdf", "terima kasih banyak"]


def main():
    outdir, threads, per, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
    os.makedirs(outdir, exist_ok=True)
    now = str(int(time.time()))
    for t in range(threads):
        with open(os.path.join(outdir, "bodies.%d.txt" % t), "w") as f:
            for i in range(per):
                n = t * per + i
                sender = "6281%09d" % (n // 4)  # four messages per citizen
                body = json.dumps({
                    "object": "whatsapp_business_account",
                    "entry": [{"id": "102938475610293", "changes": [{"field": "messages", "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "6281190001234", "phone_number_id": "109876543210987"},
                        "contacts": [{"profile": {"name": "Warga %d" % n}, "wa_id": sender}],
                        "messages": [{"from": sender, "id": "wamid.bench.%d.%d" % (os.getpid(), n),
                                      "timestamp": now, "type": "text",
                                      "text": {"body": TEXTS[n % len(TEXTS)]}}]}}]}]},
                    separators=(",", ":"))
                sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
                f.write("sha256=%s\t%s\n" % (sig, body))


if __name__ == "__main__":
    main()
