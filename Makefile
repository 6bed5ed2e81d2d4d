# t1route — routable pod networking for Kubernetes on vSphere with NSX.
SHELL := /bin/bash
GO ?= go
BIN := bin
CACHE := .cache
PKGS := ./...
export GOFLAGS ?= -buildvcs=false

MANIFEST_ENV := NSXT_POD_ROUTING_ENABLED=true CLUSTER_CIDR=100.96.0.0/11 CLUSTER_NAME=change-me \
  NSXT_MANAGER_HOST=nsx.example.com NSXT_ROUTER_PATH=/infra/tier-1s/change-me NSXT_USERNAME=CHANGE-ME NSXT_PASSWORD=CHANGE-ME

.PHONY: manifests help build test test-unit test-integration e2e kube-bins bench bench-datapath bench-policy update-crd check demo soak fuzz-short clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-18s %s\n", $$1, $$2}'

build: ## Build bin/t1route, bin/nsxsim
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

test: check test-unit fuzz-short test-integration e2e ## Everything CI runs: checks, unit/component tests, short fuzzing, integration tests, e2e (root)

test-unit: ## Unit and component tests (client and auth against nsxsim over real TLS)
	$(GO) test -count=1 -race $(PKGS)

FUZZ_TARGETS := FuzzDecodeAPIError:./nsx FuzzListRoutesAnswer:./nsx FuzzHierarchicalPatch:./nsx/nsxsim FuzzDesired:./podroute FuzzLoadConfig:./cmd/t1route
FUZZTIME ?= 10s

# Short runs start from the committed seeds: the corpus Go keeps in its cache grows with every run, and
# once replaying it took most of the 10 s, runs failed with "context deadline exceeded". Failing inputs
# are written to testdata/fuzz regardless, and committed. Go's engine also sometimes ends a run with
# "context deadline exceeded" and no failing input (a worker busy when FUZZTIME ends); that, and only
# that, is run once more.
fuzz-short: ## Each fuzz target for FUZZTIME (10s) from the committed seeds; failures land in testdata/fuzz
	@$(GO) clean -fuzzcache
	@for t in $(FUZZ_TARGETS); do name=$${t%%:*}; pkg=$${t#*:}; \
	  echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
	  for try in 1 2; do \
	    if $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg > /tmp/t1route-fuzz.log 2>&1; then break; fi; \
	    if [ $$try = 1 ] && grep -q 'context deadline exceeded' /tmp/t1route-fuzz.log && ! grep -q 'Failing input written' /tmp/t1route-fuzz.log; then \
	      echo "  the fuzzing engine timed out without a failing input; running $$name once more"; continue; fi; \
	    cat /tmp/t1route-fuzz.log; exit 1; \
	  done; \
	  tail -1 /tmp/t1route-fuzz.log; done

kube-bins: ## Build kube-apiserver and etcd into .cache/bin (once; ~6 min cold)
	integration/tools/build.sh $(CURDIR)/$(CACHE)/bin

test-integration: kube-bins ## Integration tests: the controller on a real kube-apiserver + etcd, against nsxsim
	$(GO) test -count=1 -tags integration -timeout 20m ./integration/...

e2e: kube-bins ## Routability with real packets (root): netns, OVS userspace datapath, agents, t1route-cni, ping/HTTP
	@if [ "$$(id -u)" != 0 ]; then echo "make e2e needs root (network namespaces, Open vSwitch): run it as root, as CI does"; exit 1; fi
	@mkdir -p $(CACHE); rc=0; \
	  $(GO) test -count=1 -tags 'integration e2e' -timeout 10m -run TestRoutability -v ./integration/e2e/ > $(CACHE)/e2e.log 2>&1 || rc=$$?; \
	  grep -E '^ *--- (PASS|FAIL): TestRoutability/' $(CACHE)/e2e.log || true; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CACHE)/e2e.log | tail -60; fi; \
	  grep -E '^routability:' $(CACHE)/e2e.log || echo "routability: 0 passed, 1 failed"; exit $$rc

bench-datapath: kube-bins ## Pod attach latency (CNI ADD -> first packet) p50/p99 over 50 pods, flows per pod (root)
	$(GO) test -count=1 -tags 'integration e2e' -run '^$$' -bench PodAttach -benchtime 1x -timeout 10m ./integration/e2e/ | grep -E '^(pod attach|Benchmark)'

manifests: ## Regenerate deploy/base/t1route.yaml from t1route render (placeholder settings)
	env -i PATH="$$PATH" HOME="$$HOME" $(MANIFEST_ENV) $(GO) run ./cmd/t1route render --image ghcr.io/t1route/t1route:latest > deploy/base/t1route.yaml 2>/dev/null

update-crd: ## Copy the ClusterNetworkPolicy CRD (standard channel) from sigs.k8s.io/network-policy-api v0.3.0 into podroute/policy/cnp
	@dir=$$($(GO) mod download -json sigs.k8s.io/network-policy-api@v0.3.0 | sed -n 's/.*"Dir": "\(.*\)",/\1/p'); \
	  test -n "$$dir" || { echo "could not download sigs.k8s.io/network-policy-api@v0.3.0"; exit 1; }; \
	  { head -3 podroute/policy/cnp/crd.yaml; cat $$dir/config/crd/standard/policy.networking.k8s.io_clusternetworkpolicies.yaml; } > podroute/policy/cnp/crd.yaml.new && \
	  mv podroute/policy/cnp/crd.yaml.new podroute/policy/cnp/crd.yaml && $(GO) test -count=1 -run CRD ./podroute/policy/cnp/

bench-policy: ## Policy at scale: 10,000 pods, 1,000 policies -> memory, recompute, policy change, flows per rule
	$(GO) test -count=1 -run '^$$' -bench 'PolicyScale|EnforcerScale' -benchtime 1x -timeout 20m ./podroute/policy/... | grep -E '^policy'

bench: ## Benchmarks, printing figures (10,000 routes batched vs one call each)
	$(GO) test -run '^$$' -bench . -benchtime 1x ./nsx/...

check: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

soak: kube-bins ## The fault soak for 5 minutes (make test runs it for 30 s); SOAK=10m to change
	T1ROUTE_SOAK_DURATION=$${SOAK:-5m} $(GO) test -count=1 -tags integration -timeout 60m -run TestFaultSoak -v ./integration/ | grep -E '^(soak:|---|ok|FAIL)'

demo: kube-bins ## The main job on an embedded default: nsxsim + a real kube-apiserver + the controller (+ packets, as root)
	$(GO) run -tags integration ./integration/demo
	@if [ "$$(id -u)" = 0 ] && command -v ovs-vswitchd >/dev/null; then \
	  echo; echo "==> packet-level routability: a Tier-1 router (nsxsim --realize-netns), two nodes with OVS and t1route agent, pods via t1route-cni, an external host"; \
	  $(MAKE) --no-print-directory e2e; \
	else echo "(the packet-level demo needs root and Open vSwitch: apt-get install -y openvswitch-switch iproute2 iputils-ping)"; fi

clean: ## Remove build outputs (keeps .cache)
	rm -rf $(BIN)
