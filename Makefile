# t1route — routable pod networking for Kubernetes on vSphere with NSX.
SHELL := /bin/bash
GO ?= go
BIN := bin
CACHE := .cache
PKGS := ./...
export GOFLAGS ?= -buildvcs=false

.PHONY: help build test test-unit test-integration fuzz-short bench check demo clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-18s %s\n", $$1, $$2}'

build: ## Build bin/t1route, bin/nsxsim
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

test: check test-unit test-integration ## Everything CI runs: checks, unit/component tests, integration tests

test-unit: ## Unit and component tests (client and auth against nsxsim over real TLS)
	$(GO) test -count=1 -race $(PKGS)

test-integration: ## Integration tests (build tag integration)
	$(GO) test -count=1 -tags integration ./integration/... ./nsx/...

bench: ## Benchmarks, printing figures (10,000 routes batched vs one call each)
	$(GO) test -run '^$$' -bench . -benchtime 1x ./nsx/...

check: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean: ## Remove build outputs (keeps .cache)
	rm -rf $(BIN)
