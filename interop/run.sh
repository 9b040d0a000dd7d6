#!/usr/bin/env bash
# Interop: ws13 against Chromium, node ws, python websockets, gorilla and
# coder, each as server and as client. Installs what is missing (Debian
# packages, npm packages; quietly, and only once), runs every pairing on
# 127.0.0.1, prints the matrix, writes it to MATRIX.md, and exits non-zero
# if any cell failed or a peer could not be installed.
#
#   interop/run.sh                        everything (about two minutes)
#   interop/run.sh -run 'TestInterop/node' one peer (go test flags pass through)
set -euo pipefail
cd "$(dirname "$0")"
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian packages: Chromium, python's websockets (for /usr/bin/python3,
# whatever python3 comes first on PATH), node and npm.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
/usr/bin/python3 -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "interop: installing ${missing[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# node's ws, as pinned by package-lock.json, into interop/node_modules.
want=$(sed -n '/"node_modules\/ws"/,/}/s/.*"version": "\(.*\)".*/\1/p' package-lock.json)
have=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' node_modules/ws/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "interop: npm ci (ws $want)" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# The matrix is printed; a whole run also keeps it in MATRIX.md.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# GODEBUG: net/http speaks RFC 8441's Extended CONNECT only with it, read at start-up.
GODEBUG=http2xconnect=1 INTEROP_STRICT=1 INTEROP_MATRIX=$out go test -count=1 -timeout 10m -run '^TestInterop$' "$@" . || status=$?
if [ -s "$out" ]; then
  echo
  cat "$out"
  [ $# -gt 0 ] || cp "$out" MATRIX.md
fi
exit $status
