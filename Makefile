# The commands a newcomer types. `make test` is what CI runs first.

GO ?= go

.PHONY: test vet fmt-check race fuzz bench-core autobahn

test: vet fmt-check race

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

race:
	$(GO) test -race -count=1 ./...

# Each fuzz target for a bounded time (FUZZTIME=10s by default).
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzUTF8Validator$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzReadMessage$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzServerHandshake$$' -fuzztime $(FUZZTIME) .

# Micro-benchmarks of the root package (masking, header parse, 1 KiB messages).
bench-core:
	$(GO) test -run '^$$' -bench . -benchmem .
