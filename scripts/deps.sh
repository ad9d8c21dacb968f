#!/bin/sh
# Installs the Debian 12 packages loket needs to build, test and benchmark,
# but only those that are missing, so a second run costs nothing.
# Usage: scripts/deps.sh [build|test|bench]   (each includes the ones before)
set -eu
level=${1:-build}
build="build-essential pkg-config libwebsockets-dev libcurl4-openssl-dev libpcre2-dev
libsqlite3-dev libyaml-dev libinih-dev libjansson-dev libcjson-dev libssl-dev libsodium-dev"
test="libcmocka-dev python3 sqlite3 chromium"
bench="libhyperscan-dev valgrind wrk nginx-light python3-yaml"
want=$build
[ "$level" = test ] && want="$build $test"
[ "$level" = bench ] && want="$build $test $bench"
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# Node.js and npm (browser tests) are checked as commands: a machine may have a
# Node.js build from elsewhere that bundles npm, and Debian's npm conflicts with it.
if [ "$level" != build ] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
	missing="$missing nodejs npm"
fi
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
