#!/bin/sh
# Runs the whole suite against one build: every cmocka binary, `loket check` on
# the shipped intents, the integration tests (real server, real SQLite file, a
# provider on 127.0.0.1) and the browser tests. Usage: run-tests.sh BUILD LOKET
# Prints "N passed, N failed" last; exits non-zero when anything failed.
set -u
build=$1
loket=$2
pass=0
fail=0
failed=""
LOKET_BIN=$(cd "$(dirname "$loket")" && pwd)/$(basename "$loket")
export LOKET_BIN
LOKET_ROOT=$(pwd)
export LOKET_ROOT

step() { # name, command...
	name=$1
	shift
	if "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		failed="$failed $name"
		echo "FAILED: $name"
	fi
}

for t in $(find "$build/tests" -type f -name 'test_*' ! -name '*.d' ! -name '*.o' 2>/dev/null | sort); do
	[ -x "$t" ] || continue
	echo "== $t"
	step "$t" "$t"
done

echo "== loket check intents/"
step "loket-check" "$loket" check intents

if [ -d tests/integration ] && ls tests/integration/test_*.py >/dev/null 2>&1; then
	for t in tests/integration/test_*.py; do
		echo "== $t"
		step "$t" python3 "$t"
	done
fi

if [ -x tests/browser/run.sh ] && [ "${LOKET_SKIP_BROWSER:-0}" != 1 ]; then
	echo "== tests/browser"
	step "browser" tests/browser/run.sh
fi

echo
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
