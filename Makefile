# The commands a newcomer types. `make test` is what CI runs first.

GO ?= go

.PHONY: test vet vet-ports lint fmt-check race memory fuzz soak bench bench-core autobahn autobahn-docker autobahn-trust autobahn-group9 interop

test: vet fmt-check race memory

vet:
	$(GO) vet ./...

# Every module builds and vets on the other systems people run it on (the
# root package, its tests, and the interop, bench and trust modules), and
# on a 32-bit one, where int is 32 bits and mask_generic.go is the loop.
PORTS ?= darwin windows freebsd
vet-ports:
	@for os in $(PORTS); do \
		for dir in . interop bench autobahn/trust; do \
			echo "GOOS=$$os go vet ./... in $$dir"; \
			(cd $$dir && GOOS=$$os $(GO) vet ./...) || exit 1; \
		done; \
	done
	@for dir in . interop bench autobahn/trust; do \
		echo "GOARCH=386 go vet ./... in $$dir"; \
		(cd $$dir && GOARCH=386 $(GO) vet ./...) || exit 1; \
	done

# staticcheck over all four modules, at a pinned version (fetched through the
# Go module proxy; it is a tool run, not a dependency of any module).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	@for dir in . interop bench autobahn/trust; do \
		echo "staticcheck ./... in $$dir"; \
		(cd $$dir && $(GO) run $(STATICCHECK) ./...) || exit 1; \
	done

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# GODEBUG=http2xconnect=1 lets net/http speak RFC 8441 (WebSockets over
# HTTP/2), so the h2 tests run instead of skipping. -timeout 20m: on a busy
# machine the root package has taken over 9 of go test's default 10
# minutes (2.5 on a quiet one); a hang still ends.
race:
	GODEBUG=http2xconnect=1 $(GO) test -race -count=1 -timeout 20m ./...

# The allocation and memory tests skip themselves under -race, which
# allocates and grows frames of its own: they run here without it.
memory:
	$(GO) test -count=1 -run 'Allocations|Memory|GrowLinearly|StackStays|HeapBytes' ./...

# Each fuzz target for a bounded number of inputs (FUZZTIME=100000x by
# default, some seconds each). A count rather than a duration: with a
# duration, Go 1.26's fuzzing coordinator can fail a target with a bare
# "context deadline exceeded" at the deadline, with no failing input
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 100000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzUTF8Validator$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzReadMessage$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzServerHandshake$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzClientHandshake$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzReadMessageDeflate$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzDeflateInflate$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzDeflateEncoder$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzExtensionParse$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzMask$$' -fuzztime $(FUZZTIME) .

# The long soak: 2,000 connections for 60 s, random sizes, fragmentation,
# compression and closes from both sides; nothing lost, nothing leaked.
# (A short form runs in every `go test`.)
soak:
	WS13_SOAK=1 $(GO) test -run '^TestSoak$$' -count=1 -v -timeout 15m .

# The Autobahn conformance suite, run by our Go-native runner on our server
# testee (fuzzingclient mode) and our client testee (fuzzingserver mode).
# Fails unless every case of groups 1-7, 9, 10, 12, 13 is OK (7.1.6 and 7.13.x
# may be INFORMATIONAL). Reports land in reports/autobahn.
autobahn:
	WS13_AUTOBAHN=1 WS13_AUTOBAHN_OUTDIR=$(CURDIR)/reports/autobahn $(GO) test ./autobahn -run TestAutobahn -count=1 -v -timeout 80m

# The runner judged: its verdicts on node ws, python websockets and gorilla
# (server and client) against their official results (autobahn/trust).
autobahn-trust:
	cd autobahn/trust && ./install.sh && WS13_TRUST=1 WS13_TRUST_OUTDIR=$(CURDIR)/reports/trust $(GO) test -count=1 -run TestTrust -v -timeout 90m .

# The durations of group 9 (limits and performance) for ws13's server beside
# gorilla, node ws and python websockets, measured alike: the README's table.
autobahn-group9:
	autobahn/trust/group9.sh

# The official suite, where Docker exists (see autobahn/README.md).
autobahn-docker:
	@command -v docker >/dev/null || { echo "autobahn-docker: needs Docker"; exit 1; }
	$(GO) build -o /tmp/ws13-testee-server ./autobahn/testee/server
	/tmp/ws13-testee-server -addr 127.0.0.1:9001 & pid=$$!; \
	docker run --rm --network host -v "$(CURDIR)/autobahn/config:/config" -v "$(CURDIR)/reports:/reports" \
		crossbario/autobahn-testsuite wstest -m fuzzingclient -s /config/fuzzingclient.json; \
	status=$$?; kill $$pid; exit $$status

# ws13 against real peers (Chromium, node ws, python websockets, gorilla,
# coder), both roles; installs what is missing, writes interop/MATRIX.md.
interop:
	bash interop/run.sh

# ws13 beside gorilla, coder, gobwas and gws, with TCP floors (about 10
# minutes): writes bench/RESULTS.md, bench/chart.svg and bench/results.json.
bench:
	cd bench && $(GO) run ./cmd/wsbench

# Micro-benchmarks of the root package (masking, header parse, 1 KiB messages).
bench-core:
	$(GO) test -run '^$$' -bench . -benchmem .
