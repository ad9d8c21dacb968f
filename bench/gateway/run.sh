#!/bin/sh
# The gateway benchmark: signed WhatsApp webhooks driven by wrk into
# `loket serve` (synchronous=FULL), replies delivered to nginx on 127.0.0.1
# answering Meta's success body. Prints one block of figures; see README.md.
#
# usage: run.sh [LOKET]   env: DURATION (s, 10) CONNS (webhooks in flight, 256) PER_THREAD (bodies per wrk thread, 180000)
#                          SENDER_CONCURRENCY ([sender] concurrency, 128)
#                          SANDBOX=1: no access token, replies stored as sandboxed (the writer alone)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
loket=${1:-$root/bin/loket}
duration=${DURATION:-10}
conns=${CONNS:-256}
per=${PER_THREAD:-180000}
threads=2
secret=bench-app-secret-0123456789abcdef
tmp=$(mktemp -d /tmp/loket-bench.XXXXXX)
loket_pid=
nginx_pid=
sampler_pid=

cleanup() {
	[ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
	[ -n "$loket_pid" ] && kill "$loket_pid" 2>/dev/null && wait "$loket_pid" 2>/dev/null || true
	[ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
metric() { # name: the value of one metric line from /metrics
	curl -s "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

token=bench-token
[ "${SANDBOX:-0}" = 1 ] && token=
port=$(free_port)
nport=$(free_port)

# ---- is the machine free? Another busy process moves every figure ----
cpu_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
before=$(cpu_busy)
sleep 1
after=$(cpu_busy)
busy=$(echo "$before $after" | awk '{ t = $4 - $2; print (t > 0 ? int(100 * ($3 - $1) / t) : 0) }')
if [ "$busy" -gt 15 ]; then
	echo "warning: ${busy} % of the CPUs were busy in the second before the run; the figures will be low" \
		"(ps -eo pcpu,cmd --sort=-pcpu | head)" >&2
fi

# ---- the provider: nginx answering like the Graph API ----
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$nport;
		location / {
			default_type application/json;
			return 200 '{"messaging_product":"whatsapp","contacts":[{"input":"6281","wa_id":"6281"}],"messages":[{"id":"wamid.\$request_id"}]}';
		}
	}
}
NGINX
/usr/sbin/nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' &
nginx_pid=$!

# ---- the requests, signed ahead of time ----
python3 "$here/gen_bodies.py" "$tmp/bodies" "$threads" "$per" "$secret"

# ---- the gateway ----
cat >"$tmp/loket.ini" <<INI
[server]
listen = 127.0.0.1:$port
[store]
path = $tmp/loket.db
synchronous = FULL
batch_max = 256
[bot]
intents = $root/intents
[whatsapp]
phone_number_id = 109876543210987
access_token = $token
app_secret = $secret
verify_token = bench-verify
api_base = http://127.0.0.1:$nport
send_rate = 100000
[sender]
concurrency = ${SENDER_CONCURRENCY:-128}
[log]
level = warn
INI
(cd "$root" && exec "$loket" serve -c "$tmp/loket.ini" 2>"$tmp/serve.log") &
loket_pid=$!
i=0
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "loket did not start:"; cat "$tmp/serve.log"; exit 1; }
	sleep 0.1
done

# ---- replies delivered over time (the sender's "sent" counter, once a second) ----
# every second: time, replies sent, webhooks' messages stored (loket's counters)
(while :; do
	curl -s "http://127.0.0.1:$port/metrics" | awk -v t="$(date +%s.%N)" '
		$1 == "loket_outbound_total{channel=\"all\",outcome=\"sent\"}" { s = $2 }
		$1 == "loket_inbound_total{channel=\"whatsapp\"}" { i = $2 }
		END { print t, s + 0, i + 0 }'
	sleep 1
done) >"$tmp/sent.log" &
sampler_pid=$!

cpu0=$(cpu_ticks "$loket_pid")
t0=$(date +%s.%N)
wrk -t$threads -c"$conns" -d"${duration}s" --latency -s "$here/webhook.lua" "http://127.0.0.1:$port/webhook/whatsapp" \
	-- "$tmp/bodies" >"$tmp/wrk.txt"
t1=$(date +%s.%N)
cpu1=$(cpu_ticks "$loket_pid")
sent1=$(metric 'loket_outbound_total{channel="all",outcome="sent"}')
inbound=$(metric 'loket_inbound_total{channel="whatsapp"}')

# wait for the outbox to drain
i=0
while :; do
	q=$(metric loket_queue_length)
	leased=$(metric loket_outbox_leased)
	[ "${q:-1}" = 0 ] && [ "${leased:-1}" = 0 ] && break
	i=$((i + 1))
	[ $i -gt 600 ] && { echo "outbox did not drain: pending=$q leased=$leased"; break; }
	sleep 0.2
done
t2=$(date +%s.%N)
cpu2=$(cpu_ticks "$loket_pid")
sent=$(metric 'loket_outbound_total{channel="all",outcome="sent"}')
queued=$(metric 'loket_outbound_total{channel="whatsapp",outcome="queued"}')
dead=$(metric loket_dead_letters_total)
hwm=$(awk '/VmHWM/ { print $2 " " $3 }' "/proc/$loket_pid/status")

# ---- the same server's ceiling for a trivial answer (a static file) ----
wrk -t$threads -c"$conns" -d5s --latency "http://127.0.0.1:$port/chat/chat.css" >"$tmp/wrk-static.txt"
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=

hz=$(getconf CLK_TCK)
python3 - "$tmp" "$t0" "$t1" "$t2" "$cpu0" "$cpu1" "$cpu2" "$hz" "$inbound" "$sent" "$queued" "$dead" "$hwm" "$sent1" \
	"$duration" <<'PY'
import re, sys
tmp, t0, t1, t2, c0, c1, c2, hz = sys.argv[1], *map(float, sys.argv[2:9])
inbound, sent, queued, dead = (int(float(x or 0)) for x in sys.argv[9:13])
hwm = sys.argv[13]
sent1 = int(float(sys.argv[14] or 0))
duration = float(sys.argv[15])
wrk = open(tmp + "/wrk.txt").read()
st = open(tmp + "/wrk-static.txt").read()
def rps(t): return float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
def pct(t, p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, t, re.M)
    v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
errors = re.search(r"Socket errors: (.*)", wrk)
samples = [tuple(map(float, l.split())) for l in open(tmp + "/sent.log") if len(l.split()) == 3]
peak = 0.0
for (ta, a, _), (tb, b, _) in zip(samples, samples[1:]):
    peak = max(peak, (b - a) / (tb - ta))
# wrk loads each thread's bodies before starting it, one thread after the
# other, and counts the first thread's answers from before its clock starts:
# the steady rate is loket's own count over the seconds all threads ran
# (the last `duration` seconds before wrk returned, less a second each side).
win = [x for x in samples if t1 - duration + 1 <= x[0] <= t1 - 1]
steady = (win[-1][2] - win[0][2]) / (win[-1][0] - win[0][0]) if len(win) >= 2 and win[-1][0] > win[0][0] else 0.0
r, s = rps(wrk), rps(st)
if steady > 0:
    print("inbound webhooks acknowledged, steady: %.0f/s (loket's count over %.0f s with every wrk thread running)" %
          (steady, win[-1][0] - win[0][0]))
else:
    print("inbound webhooks acknowledged, steady: not measured (no two samples with every wrk thread running:"
          " the run was too short)")
print("inbound webhooks acknowledged: %.0f req/s (wrk), %d messages stored in %.1f s" % (r, inbound, t1 - t0))
print("webhook latency: p50 %.2f ms, p99 %.2f ms" % (pct(wrk, 50), pct(wrk, 99)))
print("non-2xx answers: %s; socket errors: %s" % (non2xx.group(1) if non2xx else 0, errors.group(1) if errors else "none"))
print("replies: %d queued, %d sent, %d dead; all delivered %.1f s after the load started" % (queued, sent, dead, t2 - t0))
print("replies delivered: %.0f/s on average, %.0f/s at the best second" % (sent / (t2 - t0), peak))
print("loket CPU: %.2f cores during the load, %.2f cores while draining" %
      ((c1 - c0) / hz / (t1 - t0), (c2 - c1) / hz / max(t2 - t1, 1e-9)))
if sent > sent1:
    print("loket CPU per reply delivered while draining (the sender alone): %.1f us (%d replies)" %
          ((c2 - c1) / hz * 1e6 / (sent - sent1), sent - sent1))
print("loket peak RSS (VmHWM): %s" % hwm)
print("static file ceiling (GET /chat/chat.css): %.0f req/s, p99 %.2f ms" % (s, pct(st, 99)))
if steady > 0:
    print("durable webhook (steady) / static ratio: %.2f" % (steady / s))
print("durable webhook (wrk) / static ratio: %.2f" % (r / s))
PY
grep -c "" "$tmp/serve.log" >/dev/null && grep -E "error|warn" "$tmp/serve.log" | head -5 || true
