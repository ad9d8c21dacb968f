#!/bin/sh
# Real-browser test of the web chat page (console/chat/): starts `loket serve`
# on a free 127.0.0.1 port with a temporary SQLite file and the shipped
# intents, waits for /healthz, drives Debian's chromium through playwright-core
# (tests/browser/chat.test.js), and stops the server by its PID on exit.
# Env: LOKET_BIN (the loket binary; default bin/loket), LOKET_ROOT (the repo
# root; default two levels up), CHROMIUM (default /usr/bin/chromium),
# LOKET_SCREENSHOT (default /tmp/loket-chat.png).
# Prints "N passed, M failed" last; exits non-zero when anything failed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=${LOKET_ROOT:-$(cd "$here/../.." && pwd)}
bin=${LOKET_BIN:-$root/bin/loket}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM

if [ ! -x "$bin" ]; then
	echo "browser: no loket binary at $bin (run make)"
	exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
	echo "browser: no chromium at $CHROMIUM (apt-get install chromium)"
	exit 1
fi
if ! command -v node >/dev/null 2>&1; then
	echo "browser: node is missing (apt-get install nodejs npm)"
	exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
	(cd "$here" && npm ci --no-audit --no-fund) || {
		echo "browser: npm ci failed"
		exit 1
	}
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/loket-browser.XXXXXX")
pid=""
stop_server() {
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	n=0
	while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "browser: server $pid ignored SIGTERM for 5 s, killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	pid=""
}
cleanup() {
	stop_server
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free port: the kernel picks one, node reports it and lets it go.
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')
base="http://127.0.0.1:$port"

# Fallback escalation and the rate limit are turned up so that the scripted
# conversation (a dozen quick messages, several of them off-topic) stays with
# the bot until the test asks for a person itself.
cat >"$tmp/loket.conf" <<EOF
[server]
listen = 127.0.0.1:$port
public_url = $base

[store]
path = $tmp/loket.db

[bot]
intents = $root/intents
fallbacks_before_escalate = 100
rate_limit_per_minute = 1000
EOF

cd "$root"
"$bin" serve -c "$tmp/loket.conf" >"$tmp/server.log" 2>&1 &
pid=$!

healthy() {
	node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));' "$base/healthz"
}
n=0
until healthy; do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "browser: loket serve exited before answering /healthz; its log:"
		cat "$tmp/server.log"
		pid=""
		echo "0 passed, 1 failed"
		exit 1
	fi
	n=$((n + 1))
	if [ "$n" -ge 100 ]; then
		echo "browser: $base/healthz did not answer 200 within 20 s; server log:"
		tail -n 50 "$tmp/server.log"
		echo "0 passed, 1 failed"
		exit 1
	fi
	sleep 0.2
done

rc=0
LOKET_URL=$base LOKET_SUMMARY=$tmp/summary node "$here/chat.test.js" || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "browser: last lines of the server log:"
	tail -n 40 "$tmp/server.log"
	# the count stays the last line
	if [ -s "$tmp/summary" ]; then cat "$tmp/summary"; else echo "0 passed, 1 failed"; fi
fi
exit "$rc"
