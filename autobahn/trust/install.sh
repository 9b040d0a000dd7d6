#!/bin/sh
# Installs the peers of the trust check (see trust_test.go): Debian's
# python3-websockets, nodejs and npm when missing, then node ws at the
# version pinned in node/package-lock.json. Idempotent. Needs root (or
# sudo) only when a Debian package is missing. gorilla/websocket comes from
# the Go module cache (go.sum).
set -eu
cd "$(dirname "$0")"

missing=""
/usr/bin/python3 -c 'import websockets' 2>/dev/null || missing="$missing python3-websockets"
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	# apt may be locked by someone else installing at the same time: retry.
	i=0
	until $sudo apt-get update && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y $missing; do
		i=$((i + 1))
		if [ "$i" -ge 10 ]; then
			echo "install.sh: apt-get failed $i times, giving up" >&2
			exit 1
		fi
		echo "install.sh: apt-get failed (locked?), retrying in 15 s ($i/10)" >&2
		sleep 15
	done
fi

want=$(node -p 'require("./node/package-lock.json").packages["node_modules/ws"].version')
have=$(node -p 'try { require("./node/node_modules/ws/package.json").version } catch (e) { "" }')
if [ "$have" != "$want" ]; then
	(cd node && npm ci --no-audit --no-fund)
fi
echo "install.sh: python3 websockets $(/usr/bin/python3 -c 'import websockets; print(websockets.__version__)'), node $(node --version), ws $want"
