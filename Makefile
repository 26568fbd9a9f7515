# tmon — make targets. `make demo` and `make test` are the two a newcomer runs.
GO        ?= go
BIN       := bin
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
BENCH_PKGS := ./sieve ./ring ./analyse ./pdu ./transport ./collector ./spool ./reconcile ./loader ./reports/web ./probe ./offline
BENCHTIME ?= 1s

.PHONY: all build test lint vet staticcheck bench bench-year demo clean fuzz install

# Installation directories (docs/operations.md, "Directory layout"). DESTDIR
# is prepended to every path (staged installs, packages); the installed files
# refer to the paths without it.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
STATEDIR   ?= /var/lib/tmon
DOCDIR     ?= $(PREFIX)/share/doc/tmon
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DAEMONS    := tmon tmon-probe tmon-collector tmon-loader tmon-report

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

# The report pages on a database holding a year of 1-minute rows of 100
# flows (53.6 M rows in each 1-minute table): built once into
# $(TMON_BENCH_CACHE) (default ~/.cache/tmon-bench), hours and 91 GB (7.6 GB
# on a zstd-compressed btrfs; README "Reports"); `make bench` uses 7 days of
# 1-minute rows.
bench-year:
	TMON_BENCH_MINUTE_DAYS=365 $(GO) test -run '^$$' -bench BenchmarkPages -benchtime $(BENCHTIME) -timeout 0 ./reports/web

# Short fuzzing of every decoder (seed corpora live in */testdata/fuzz).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./conf
	$(GO) test -run '^$$' -fuzz FuzzDissect -fuzztime $(FUZZTIME) ./sieve
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./pdu
	$(GO) test -run '^$$' -fuzz FuzzService -fuzztime $(FUZZTIME) ./sieve
	$(GO) test -run '^$$' -fuzz FuzzReassemble -fuzztime $(FUZZTIME) ./reassembly
	$(GO) test -run '^$$' -fuzz FuzzFTPDataPort -fuzztime $(FUZZTIME) ./sieve
	$(GO) test -run '^$$' -fuzz FuzzControl -fuzztime $(FUZZTIME) ./analyse/ftp
	$(GO) test -run '^$$' -fuzz FuzzNgReader -fuzztime $(FUZZTIME) ./capture
	$(GO) test -run '^$$' -fuzz FuzzReadFile -fuzztime $(FUZZTIME) ./capture

# Generated traffic → two probes → collector over UDP on loopback → summary.
demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN) demo-out

# The commands, systemd units (paths substituted), the tmon user, a
# logrotate sample, an example configuration and the docs.
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(SYSCONFDIR)/tmon $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	install -m 0755 $(addprefix $(BIN)/,$(DAEMONS)) $(DESTDIR)$(BINDIR)/
	for f in packaging/systemd/*; do \
		$(SUBST) $$f > $(DESTDIR)$(UNITDIR)/$$(basename $$f) && chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$f) || exit 1; \
	done
	$(SUBST) packaging/sysusers/tmon.conf > $(DESTDIR)$(SYSUSERSDIR)/tmon.conf
	install -m 0644 packaging/logrotate/tmon $(DESTDIR)$(SYSCONFDIR)/logrotate.d/tmon
	install -m 0644 examples/demo.xml $(DESTDIR)$(SYSCONFDIR)/tmon/tmon.xml.example
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

# Live capture on the netns lab (root): the highest rate two probes hold with
# zero kernel ring drops and every delay exact; prints a table.
.PHONY: bench-live
bench-live:
	./scripts/bench-live.sh
