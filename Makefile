# t1route — routable pod networking for Kubernetes on vSphere with NSX.
SHELL := /bin/bash
GO ?= go
BIN := bin
CACHE := .cache
PKGS := ./...
export GOFLAGS ?= -buildvcs=false
# Every target uses the Go toolchain named by go.mod's `toolchain` line (the standard library's security
# fixes need it): the go command fetches it once from the module proxy (~10 s) into the module cache and
# works offline after. Set here because `go env` may say GOTOOLCHAIN=local (CI's machines do), which would
# silently keep an older installed Go. `make GOTOOLCHAIN=local ...` overrides it.
export GOTOOLCHAIN := $(shell sed -n 's/^toolchain //p' go.mod)
# What `t1route version` prints: the git tag or commit (-dirty with local changes); dev without git.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

MANIFEST_ENV := NSXT_POD_ROUTING_ENABLED=true CLUSTER_CIDR=100.96.0.0/11 CLUSTER_NAME=change-me \
  NSXT_MANAGER_HOST=nsx.example.com NSXT_ROUTER_PATH=/infra/tier-1s/change-me NSXT_USERNAME=CHANGE-ME NSXT_PASSWORD=CHANGE-ME

.PHONY: manifests help build test test-unit test-integration e2e e2e-prereqs kube-bins bench bench-controller bench-conditions bench-datapath bench-policy update-crd check demo soak fuzz-short clean

help: ## Show this help
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-18s %s\n", $$1, $$2}'

build: ## Build bin/t1route, bin/t1route-cni, bin/nsxsim, stamped with VERSION (git describe)
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test: check test-unit fuzz-short test-integration e2e e2e-cluster ## Everything CI runs: checks, unit/component tests, short fuzzing, integration tests, e2e and e2e-cluster (root)

test-unit: ## Unit and component tests (client and auth against nsxsim over real TLS)
	$(GO) test -count=1 -race $(PKGS)

FUZZ_TARGETS := FuzzDecodeAPIError:./nsx FuzzListRoutesAnswer:./nsx FuzzHierarchicalPatch:./nsx/nsxsim FuzzDesired:./podroute FuzzLoadConfig:./podroute/config
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

# What the packet-level tests need from Debian; installed when missing (as root).
E2E_PKGS := openvswitch-switch iproute2 iputils-ping curl ethtool iptables
e2e-prereqs:
	@if [ "$$(id -u)" != 0 ]; then echo "make e2e needs root (network namespaces, Open vSwitch): run it as root, as CI does"; exit 1; fi
	@if ! command -v ovs-vswitchd >/dev/null || ! command -v ping >/dev/null || ! command -v ethtool >/dev/null || ! command -v iptables >/dev/null || ! command -v curl >/dev/null; then \
	  echo "installing $(E2E_PKGS) (apt-get)"; export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y $(E2E_PKGS) >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y $(E2E_PKGS) >/dev/null; }; fi

e2e: kube-bins e2e-prereqs ## Routability and network policy with real packets (root; installs Open vSwitch etc. when missing): netns, OVS userspace datapath, agents, t1route-cni
	@mkdir -p $(CACHE); rc=0; \
	  $(GO) test -count=1 -tags 'integration e2e' -timeout 15m -run 'TestRoutability|TestNetworkPolicy' -v ./integration/e2e/ > $(CACHE)/e2e.log 2>&1 || rc=$$?; \
	  grep -E '^ *--- (PASS|FAIL): (TestRoutability|TestNetworkPolicy)/' $(CACHE)/e2e.log || true; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CACHE)/e2e.log | tail -60; fi; \
	  grep -E '^routability:' $(CACHE)/e2e.log || echo "routability: 0 passed, 1 failed"; \
	  grep -E '^networkpolicy:' $(CACHE)/e2e.log || echo "networkpolicy: 0 passed, 1 failed"; \
	  grep -E '^introspection:' $(CACHE)/e2e.log || echo "introspection: 0 passed, 1 failed"; exit $$rc

bench-datapath: kube-bins e2e-prereqs ## Pod attach latency (CNI ADD -> first packet) p50/p99 over 50 pods, flows per pod (root)
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

bench: ## NSX client benchmarks, printing figures: 10,000 routes batched vs one call each; per-route cost of apply, list and forwarding table (SDK bindings vs own encoding)
	$(GO) test -run '^$$' -bench . -benchtime 1x ./nsx/...

bench-controller: build ## The controller against nsxsim with NSX's limits: ARGS='--nodes 10000 [--external-nsxsim]'
	$(GO) run ./integration/bench $(ARGS)

check: staticcheck ## gofmt, go vet, staticcheck, and a macOS cross-build of t1route
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	GOOS=darwin $(GO) build -o /dev/null ./cmd/t1route

bench-conditions: kube-bins ## Node conditions at scale on a real kube-apiserver + etcd: NODES (10000) nodes created NetworkUnavailable=True, then t1route controller; prints conditions_all_set= etc.
	@mkdir -p $(CACHE); rc=0; \
	  T1ROUTE_BENCH_NODES=$${NODES:-10000} $(GO) test -count=1 -tags integration -run '^$$' -bench '^BenchmarkNodeConditions$$' -benchtime 1x -timeout 40m ./integration/ > $(CACHE)/bench-conditions.log 2>&1 || rc=$$?; \
	  grep -E '^[a-z_0-9]+=' $(CACHE)/bench-conditions.log; \
	  if [ $$rc != 0 ]; then tail -40 $(CACHE)/bench-conditions.log; fi; exit $$rc

soak: kube-bins ## The fault soak for 5 minutes (make test runs it for 30 s); SOAK=10m to change
	T1ROUTE_SOAK_DURATION=$${SOAK:-5m} $(GO) test -count=1 -tags integration -timeout 60m -run TestFaultSoak -v ./integration/ | grep -E '^(soak:|---|ok|FAIL)'

demo: kube-bins ## The main job on an embedded default: nsxsim + a real kube-apiserver + the controller (+ packets, as root)
	$(GO) run -tags integration ./integration/demo
	@if [ "$$(id -u)" = 0 ]; then \
	  echo; echo "==> packet-level routability: a Tier-1 router (nsxsim --realize-netns), two nodes with OVS and t1route agent, pods via t1route-cni, an external host"; \
	  $(MAKE) --no-print-directory e2e; \
	else echo "(the packet-level demo needs root: run make demo as root; it installs Open vSwitch and the tools it needs from Debian when missing)"; fi

clean: ## Remove build outputs (keeps .cache)
	rm -rf $(BIN)

# --- Images and a local cluster of real nodes (deploy/image, integration/cluster) ---
IMAGE ?=
PUSH ?=
CLUSTER_DIR ?= /tmp/t1route-cluster
CLUSTER_BIN := $(CACHE)/cluster/t1route-cluster
.PHONY: image cluster cluster-down test-cluster cluster-prereqs e2e-prereqs e2e-cluster bench-cluster

image: ## Build the t1route and t1route-node images without Docker (OCI layout in .cache/image, digests printed); IMAGE=registry/repo:tag PUSH=1 pushes
	$(GO) run ./deploy/image $(if $(IMAGE),--image $(IMAGE)) $(if $(filter 1 true yes,$(PUSH)),--push)

cluster-prereqs:
	@if [ "$$(id -u)" != 0 ]; then echo "a cluster of real nodes needs root (namespaces, cgroups, containerd): run make as root"; exit 1; fi
	@if ! command -v containerd >/dev/null || ! command -v runc >/dev/null || ! command -v iptables >/dev/null || ! command -v curl >/dev/null; then \
	  echo "installing containerd, runc, iptables, curl (apt-get)"; export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y containerd runc iptables curl >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y containerd runc iptables curl >/dev/null; }; fi

cluster: cluster-prereqs kube-bins image ## Start a local cluster of 2 real nodes (root), the image in its registry; prints KUBECONFIG and nsx.env (SMOKE_CNI=1: nodes Ready without t1route)
	@mkdir -p $(dir $(CLUSTER_BIN)) && $(GO) build -o $(CLUSTER_BIN) ./integration/cluster/cmd/cluster
	@$(CLUSTER_BIN) up --dir $(CLUSTER_DIR) --images $(CACHE)/image/oci $(if $(filter 1 true yes,$(SMOKE_CNI)),--smoke-cni)

cluster-down: ## Stop the local cluster and remove every process, namespace, mount, cgroup and file of it
	@mkdir -p $(dir $(CLUSTER_BIN)) && $(GO) build -o $(CLUSTER_BIN) ./integration/cluster/cmd/cluster
	@$(CLUSTER_BIN) down --dir $(CLUSTER_DIR)

test-cluster: cluster-prereqs kube-bins ## The image and cluster harness tests (root): reproducible digests, two Ready nodes, pods, Services, clean teardown
	$(GO) test -count=1 -tags 'integration e2e' -timeout 20m -v ./integration/cluster/ 2>&1 | grep -vE '^ +I[0-9]{4}'; exit $${PIPESTATUS[0]}

e2e-cluster: kube-bins image cluster-prereqs ## t1route installed by render | kubectl apply on a cluster of 2 real nodes, checked with real pods (root); log in .cache/e2e-cluster.log
	@mkdir -p $(CACHE); rc=0; \
	  CLUSTER_IMAGES=$(CURDIR)/$(CACHE)/image/oci $(GO) test -count=1 -tags 'integration e2e' -timeout 20m -run '^TestClusterRoutability$$' -v ./integration/cluster/ > $(CACHE)/e2e-cluster.log 2>&1 || rc=$$?; \
	  grep -E '^ *--- (PASS|FAIL): TestClusterRoutability/|^pod echo-' $(CACHE)/e2e-cluster.log || true; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CACHE)/e2e-cluster.log | tail -60; fi; \
	  grep -E '^cluster routability:' $(CACHE)/e2e-cluster.log || echo "cluster routability: 0 passed, 1 failed"; exit $$rc

bench-cluster: kube-bins image cluster-prereqs e2e-prereqs ## Pod start through the real kubelet (created -> Ready, CNI ADD as containerd runs it) p50/p99 over BENCH_PODS (25) pods, then bench-datapath's libcni figure (root)
	@mkdir -p $(CACHE); rc=0; \
	  CLUSTER_IMAGES=$(CURDIR)/$(CACHE)/image/oci $(GO) test -count=1 -tags 'integration e2e' -run '^$$' -bench '^BenchmarkClusterPodStart$$' -benchtime 1x -timeout 20m ./integration/cluster/ > $(CACHE)/bench-cluster.log 2>&1 || rc=$$?; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CACHE)/bench-cluster.log | tail -40; exit $$rc; fi; \
	  grep -E '^pod start' $(CACHE)/bench-cluster.log
	@echo "libcni, the same ADD without the kubelet and containerd (make bench-datapath):"
	@$(MAKE) --no-print-directory bench-datapath

# Tools and the vulnerability database are built into .cache (git-ignored), one folder per version and
# toolchain: built once, and again only when a pin below (or go.mod's toolchain) changes.
.PHONY: vulncheck staticcheck
TOOLS := $(CURDIR)/$(CACHE)/tools/$(GOTOOLCHAIN)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
GOVULNCHECK_VERSION := v1.9.0
GOVULNCHECK := $(TOOLS)/govulncheck-$(GOVULNCHECK_VERSION)/govulncheck
# The database is golang.org/x/vulndb's data/osv at this version, indexed by its own cmd/indexdb: no
# network at check time. Bump it (a pseudo-version; `go list -m golang.org/x/vulndb@latest`) to learn of
# newer advisories.
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
INDEXDB := $(TOOLS)/indexdb-$(VULNDB_VERSION)/indexdb
VULNDB := $(CURDIR)/$(CACHE)/vulndb/$(VULNDB_VERSION)
# Reachable vulnerabilities accepted for now, one "GO-YYYY-NNNN reason" per line: any other one fails.
VULNCHECK_ALLOW := .vulncheck-allow
# 1: staticcheck findings fail `make check`. 0: they are printed and counted only.
STATICCHECK_STRICT ?= 1

$(STATICCHECK):
	GOBIN=$(@D) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(GOVULNCHECK):
	GOBIN=$(@D) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)
$(INDEXDB):
	GOBIN=$(@D) $(GO) install golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION)
$(VULNDB)/index/db.json: | $(INDEXDB)
	@dir=$$($(GO) mod download -json golang.org/x/vulndb@$(VULNDB_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	  if [ ! -d "$$dir/data/osv" ]; then echo "vulncheck: golang.org/x/vulndb@$(VULNDB_VERSION) has no data/osv (in '$$dir')"; exit 1; fi; \
	  echo "indexing $$(ls $$dir/data/osv | wc -l) advisories of golang.org/x/vulndb@$(VULNDB_VERSION) into $(VULNDB)"; \
	  rm -rf $(VULNDB).tmp && $(INDEXDB) -vulns $$dir/data/osv -out $(VULNDB).tmp && rm -rf $(VULNDB) && mv $(VULNDB).tmp $(VULNDB)

staticcheck: $(STATICCHECK) ## staticcheck, integration/e2e code included (fails on any finding; STATICCHECK_STRICT=0 only lists them)
	@mkdir -p $(CACHE); rc=0; $(STATICCHECK) -tags 'integration e2e' $(PKGS) > $(CACHE)/staticcheck.log 2>&1 || rc=$$?; \
	  cat $(CACHE)/staticcheck.log; n=$$(grep -cE '^[^ ]+\.go:[0-9]+:[0-9]+: .*\([A-Z]+[0-9]+\)$$' $(CACHE)/staticcheck.log); \
	  if [ $$rc = 0 ]; then echo "staticcheck: clean"; \
	  elif [ "$$n" = 0 ]; then echo "staticcheck: failed (exit $$rc) without findings: see above"; exit 1; \
	  elif [ "$(STATICCHECK_STRICT)" = 1 ]; then echo "staticcheck: $$n findings"; exit 1; \
	  else echo "staticcheck: $$n findings (not failing: STATICCHECK_STRICT=0)"; fi

vulncheck: $(GOVULNCHECK) $(VULNDB)/index/db.json ## govulncheck offline (database from golang.org/x/vulndb); ends "vulncheck: N reachable"
	@mkdir -p $(CACHE); rc=0; $(GOVULNCHECK) -db file://$(VULNDB) $(PKGS) > $(CACHE)/vulncheck.log 2>&1 || rc=$$?; \
	  ids=$$(grep -oE '^Vulnerability #[0-9]+: GO-[0-9]+-[0-9]+' $(CACHE)/vulncheck.log | sed 's/.*: //'); \
	  if [ $$rc != 0 ] && { [ $$rc != 3 ] || [ -z "$$ids" ]; }; then cat $(CACHE)/vulncheck.log; echo "vulncheck: govulncheck failed (exit $$rc)"; exit 1; fi; \
	  n=0; new=0; report=; for id in $$ids; do n=$$((n+1)); \
	    why=$$(sed -n "s/^$$id[[:space:]][[:space:]]*\([^[:space:]].*\)/\1/p" $(VULNCHECK_ALLOW) 2>/dev/null | head -1); \
	    if [ -n "$$why" ]; then report+="  $$id allowed ($(VULNCHECK_ALLOW)): $$why"$$'\n'; \
	    else report+="  $$id NOT ALLOWED: fix it, or add it to $(VULNCHECK_ALLOW) with a reason"$$'\n'; new=$$((new+1)); fi; done; \
	  for id in $$(grep -oE '^GO-[0-9]+-[0-9]+' $(VULNCHECK_ALLOW) 2>/dev/null); do \
	    case " $$(echo $$ids) " in *" $$id "*) ;; *) report+="  $$id is in $(VULNCHECK_ALLOW) but not reachable any more: remove it"$$'\n';; esac; done; \
	  if [ $$new != 0 ]; then cat $(CACHE)/vulncheck.log; echo; fi; printf '%s' "$$report"; \
	  if [ $$new != 0 ]; then echo "vulncheck: $$n reachable ($$new not in $(VULNCHECK_ALLOW))"; exit 1; fi; \
	  if [ $$n = 0 ]; then echo "vulncheck: 0 reachable"; else echo "vulncheck: $$n reachable (each explained in $(VULNCHECK_ALLOW))"; fi
