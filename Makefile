# wijgate — `make run` serves the demo on http://localhost:8080,
# `make test` runs every check CI runs.
GO        ?= go
BIN       := bin/wijgate
PKGS      := ./...
TOOLS     := $(CURDIR)/bin/tools
export GOFLAGS := -trimpath -buildvcs=false
# The toolchain named in go.mod (a patch release with the standard
# library's security fixes) is fetched through the module proxy.
export GOTOOLCHAIN := auto
export XDG_DATA_HOME ?= $(CURDIR)/.data/xdg
export XDG_CONFIG_HOME ?= $(CURDIR)/.data/xdg-config

.PHONY: build run run-cluster test vet lint vulndb vulncheck fuzz bench bench-quick clean tools alerts-check

build: $(BIN)

$(BIN): $(shell find . -name '*.go' -not -path './.data/*') go.mod go.sum
	$(GO) build -o $(BIN) ./cmd/wijgate

run: build
	WIJGATE_DATA=$(CURDIR)/.data ./$(BIN) run --config Caddyfile --adapter caddyfile

# The same demo on two replicas behind a load balancer, on a local
# PostgreSQL (Debian's postgresql package); see cluster/run.sh.
run-cluster: build
	./cluster/run.sh

tools:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	GOBIN=$(TOOLS) $(GO) install golang.org/x/vuln/cmd/govulncheck@v1.9.0

# The alert rules in deploy/prometheus, checked and unit-tested by
# Prometheus's own promtool, built from the module proxy. Not part of
# make test: the build takes minutes (an hour on a loaded 2-core machine).
PROMTOOL_VERSION := v0.316.0

alerts-check:
	test -x $(TOOLS)/promtool-$(PROMTOOL_VERSION) || (GOBIN=$$(mktemp -d) && \
	  GOFLAGS= $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION) && \
	  mkdir -p $(TOOLS) && mv $$GOBIN/promtool $(TOOLS)/promtool-$(PROMTOOL_VERSION))
	cd deploy/prometheus && $(TOOLS)/promtool-$(PROMTOOL_VERSION) check rules wijgate-alerts.yml && \
	  $(TOOLS)/promtool-$(PROMTOOL_VERSION) test rules wijgate-alerts.test.yml

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt: the files above need formatting'; exit 1)
	$(GO) vet $(PKGS)

lint: tools vet
	$(TOOLS)/staticcheck $(PKGS)

# govulncheck reads a vulnerability database built here from the newest
# golang.org/x/vulndb module on the Go module proxy, so the check needs no
# other network than the proxy.
VULNDB := $(CURDIR)/.data/vulndb

vulndb:
	@rm -rf $(VULNDB) && mkdir -p $(VULNDB) && cd $$(mktemp -d) && \
	  info=$$(GOFLAGS= $(GO) mod download -json golang.org/x/vulndb@latest) && \
	  dir=$$(echo "$$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p') && \
	  ver=$$(echo "$$info" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",$$/\1/p') && \
	  echo "vulnerability database: golang.org/x/vulndb@$$ver" && \
	  GOFLAGS= $(GO) run golang.org/x/vulndb/cmd/indexdb@$$ver -vulns $$dir/data/osv -out $(VULNDB)

vulncheck: tools vulndb
	$(TOOLS)/govulncheck -db file://$(VULNDB) $(PKGS)

# Fuzz targets run briefly on every test run, each for a number of inputs
# that takes a few seconds on a 2-core machine. A count, not a
# duration: Go 1.26's fuzzing coordinator can fail a target with a bare
# "context deadline exceeded" when a -fuzztime duration ends while a worker
# is busy (go.dev/issue/75804), which CI hit. Longer runs by time:
# make fuzz FUZZTIME=10m
FUZZTIME ?=
FUZZ := ./caddymodule/eherkenning:FuzzHandleResponse:3000 ./caddymodule/eherkenning:FuzzArtifactResponse:600 \
	./caddymodule/eherkenning:FuzzBrokerMetadata:10000 ./caddymodule/eherkenning:FuzzDecrypt:200 \
	./devmodules/ehsim:FuzzSSO:20000

fuzz:
	@for t in $(FUZZ); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$${rest##*:}x; \
	  if [ -n "$(FUZZTIME)" ]; then budget=$(FUZZTIME); fi; \
	  echo "fuzz $$name ($$budget)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget $$pkg || exit 1; \
	done

# The Chromium tests run on their own. About one run in twenty-five, a
# page load in headless Chromium stalls past the step timeout under -race;
# they are run a second time before that counts as a failure (see issue
# notes), and any other test failure fails at once.
BROWSER_TESTS := ^TestBrowser

test: lint vulncheck
	$(GO) test -race -timeout 20m -skip '$(BROWSER_TESTS)' $(PKGS)
	$(GO) test -race -timeout 10m -run '$(BROWSER_TESTS)' ./caddymodule/ || \
	  (echo "browser tests failed once; running them again"; $(GO) test -race -count=1 -timeout 10m -run '$(BROWSER_TESTS)' ./caddymodule/)
	$(MAKE) fuzz
	$(MAKE) bench-quick

# make bench: the full instrument (about 11 minutes on 2 cores, building
# caddy-security and oauth2-proxy into ~/.cache/wijgate-bench/peers the
# first time on a machine); prints a
# table and writes bench/results.json. bench-quick is CI's smoke check of
# the instrument: it prints figures and never fails on them.
bench:
	$(GO) run ./bench -mode full

bench-quick:
	$(GO) run ./bench -mode quick -results bench/out/results-quick.json

clean:
	rm -rf bin .data testoutput bench/out
