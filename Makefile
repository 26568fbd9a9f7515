# tmon — make targets. `make demo` and `make test` are the two a newcomer runs.
GO        ?= go
BIN       := bin
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
BENCH_PKGS := ./sieve ./ring ./analyse ./pdu ./transport ./reconcile ./loader ./probe
BENCHTIME ?= 1s

.PHONY: all build test lint vet staticcheck bench demo clean fuzz

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

vet:
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

lint: vet staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The test command of the README: lint, the no-allocation tests without the
# race detector (its own allocations make some of them skip under -race),
# then every test under the race detector.
test: lint
	$(GO) test -count=1 -run 'Alloc|NoAlloc|DoesNotAllocate' ./...
	$(GO) test -race -timeout 30m ./...

# Benchmarks of the hot path: ns/op, packets/s, bytes/sighting, allocs/op.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(BENCH_PKGS)

# Short fuzzing of every decoder (seed corpora live in */testdata/fuzz).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./conf
	$(GO) test -run '^$$' -fuzz FuzzDissect -fuzztime $(FUZZTIME) ./sieve
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./pdu

# Generated traffic → two probes → collector over UDP on loopback → summary.
demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN) demo-out

# Live capture on the netns lab (root): the highest rate two probes hold with
# zero kernel ring drops and every delay exact; prints a table.
.PHONY: bench-live
bench-live:
	./scripts/bench-live.sh
