# derivatives_exporter
GO        ?= go
BINARY    ?= derivatives_exporter
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
PKG_VER   := github.com/prometheus/common/version
LDFLAGS   := -s -w -X $(PKG_VER).Version=$(VERSION) -X $(PKG_VER).Revision=$(REVISION) \
             -X $(PKG_VER).Branch=$(BRANCH) -X $(PKG_VER).BuildUser=make -X $(PKG_VER).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
FUZZTIME  ?= 30s

.PHONY: all build test vet unit e2e fuzz bench fmt-check tools clean run lint staticcheck rules-test loadtest loadtest-all soak soak-all

all: build test

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) .

run:
	$(GO) run .

# The one command that checks everything: formatting, vet, every test and
# fuzz seed under the race detector, including the end-to-end test that
# builds the binary and runs it against the fake venues.
test: tools fmt-check vet unit

# Installs what the tests need when it is missing: Go modules, and
# Prometheus, promtool, Alertmanager and amtool from Debian's packages.
tools:
	@command -v $(GO) >/dev/null || { echo "Go is required: https://go.dev/dl/"; exit 1; }
	$(GO) mod download
	@if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null || ! command -v amtool >/dev/null || \
	    ! { command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null; }; then \
	  echo "installing prometheus and prometheus-alertmanager (Debian packages)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null; \
	fi
	@promtool --version | head -1

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 10m ./...

# Only the end-to-end test (also part of `make test`).
e2e:
	$(GO) test -race -count=1 -timeout 10m -run 'TestEndToEnd' -v .

# Runs every fuzz target for FUZZTIME each (the seeds also run in `make unit`).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "fuzzing $$pkg $$t for $(FUZZTIME)"; \
	    $(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Checks and unit-tests the Prometheus rules of grafana/rules and checks the
# example Prometheus and Alertmanager configurations (`go test ./examples/`,
# part of `make test`, runs the same and more).
rules-test: tools
	promtool check rules grafana/rules/*.yml
	promtool test rules grafana/rules/tests/*.yml
	promtool check config examples/prometheus/prometheus.yml examples/scaling/prometheus-a.yml examples/scaling/prometheus-b.yml
	amtool check-config examples/alertmanager/alertmanager.yml

bench:
	$(GO) test -run XXX -bench . -benchmem -count 6 ./... | tee bench.txt

# Drives the built exporter with a fake Binance market at RATE liquidation
# messages per second for DURATION and prints CPU, RSS, scrape latency and
# the exact-totals check.
RATE     ?= 20000
DURATION ?= 60s
loadtest: build
	$(GO) run ./examples/loadtest --exporter ./$(BINARY) --rate $(RATE) --duration $(DURATION)

# Every venue against fakes listing about 3,400 instruments: 5,000
# liquidation messages per second over five venues' streams, one scraper for
# 20 s, then 20 concurrent scrapers (10 of them gzip) for DURATION; prints
# scrape latency, errors, series and bytes per scrape, CPU, RSS and the
# exact totals per venue.
ALL_RATE ?= 5000
loadtest-all: build
	$(GO) run ./examples/loadtest --all-venues --exporter ./$(BINARY) --rate $(ALL_RATE) --duration $(DURATION)

# The soak run (not part of CI): 5,000 liquidation messages per second for
# 30 minutes with every connection dropped once a minute; prints RSS and
# goroutines at start and end, CPU, scrape latency and the exact totals.
soak: build
	$(GO) run ./examples/loadtest --exporter ./$(BINARY) --rate 5000 --duration 30m --fault-every 1m

# The all-venues soak (not part of CI): every venue against its fake,
# 5,000 liquidation messages per second and one scraper a second for 30
# minutes; RSS and goroutines each minute, growth after a warm-up, exact
# totals per venue.
soak-all: build
	$(GO) run ./examples/loadtest --all-venues --exporter ./$(BINARY) --rate $(ALL_RATE) --solo 30m --solo-every 1s --duration 10s --scrapers 2 --gzip-scrapers 1

clean:
	rm -f $(BINARY) bench.txt

# Static analysis: go vet, staticcheck and golangci-lint (config in
# .golangci.yml), installed from the Go module proxy when missing.
STATICCHECK_VERSION   ?= v0.8.2
GOLANGCI_LINT_VERSION ?= v2.15.0
GOBIN ?= $(shell $(GO) env GOPATH)/bin

staticcheck:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

lint: vet staticcheck
	@test -x $(GOBIN)/golangci-lint || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	$(GOBIN)/golangci-lint run ./...
