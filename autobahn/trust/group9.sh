#!/bin/sh
# Durations of the Autobahn limits and performance cases (group 9) for
# ws13's server and the servers of the trust check (gorilla, node ws, python
# websockets), measured alike: one runner process, one server at a time,
# nothing else running, in four rounds that rotate the order of the servers
# (whichever server a runner tests first comes out slower, ~2x on 9.1.4;
# the cause is not known), each case's median kept. Prints the README's group 9 table (autobahn/cmd/summary).
#
#	autobahn/trust/group9.sh [ROUNDS]    # make autobahn-group9; about 10 minutes
set -eu
cd "$(dirname "$0")"
./install.sh >/dev/null
rounds=${1:-4}
work=$(mktemp -d)
out=../../reports/group9
rm -rf "$out"
mkdir -p "$out"
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null; rm -rf "$work"' EXIT

(cd ../.. && go build -o "$work/ws13" ./autobahn/testee/server && go build -o "$work/wstest" ./autobahn/cmd/wstest &&
	go build -o "$work/summary" ./autobahn/cmd/summary)
go build -o "$work/gorilla" ./gorilla/server

# start NAME CMD...: runs an echo server on a free port, and prints its URL
# once it says "echo server on URL".
start() {
	name=$1
	shift
	"$@" >/dev/null 2>"$work/$name.log" &
	echo $! >"$work/$name.pid"
	i=0
	until url=$(sed -n 's/.*echo server on \(ws:[^ ]*\).*/\1/p' "$work/$name.log" | head -1) && [ -n "$url" ]; do
		i=$((i + 1))
		[ "$i" -lt 300 ] || { echo "group9.sh: the $name server did not start" >&2; cat "$work/$name.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "$url"
}
ws13=$(start ws13 "$work/ws13" -addr 127.0.0.1:0)
gorilla=$(start gorilla "$work/gorilla" -addr 127.0.0.1:0)
ws=$(start ws node node/server.js 0)
websockets=$(start websockets /usr/bin/python3 python/server.py 0)

servers="ws13=$ws13 gorilla=$gorilla ws=$ws websockets=$websockets"
round=1
while [ "$round" -le "$rounds" ]; do
	list=""
	for s in $servers; do
		list="$list${list:+, }{\"agent\": \"${s%%=*}\", \"url\": \"${s#*=}\"}"
	done
	printf '{"outdir": "%s", "servers": [%s], "cases": ["9.*"]}\n' "$out/round$round" "$list" >"$work/spec.json"
	echo "round $round of $rounds: ${servers}" >&2
	"$work/wstest" -m fuzzingclient -s "$work/spec.json" >"$out/round$round.log"
	# The next round starts with the server that came second.
	first=${servers%% *}
	servers="${servers#* } $first"
	round=$((round + 1))
done

columns=""
for name in ws13 gorilla ws websockets; do
	runs=""
	round=1
	while [ "$round" -le "$rounds" ]; do
		runs="$runs${runs:++}$out/round$round/index.json"
		round=$((round + 1))
	done
	columns="$columns $name=$runs"
done
# shellcheck disable=SC2086
"$work/summary" $columns
