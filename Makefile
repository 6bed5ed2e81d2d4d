# t1route — routable pod networking for Kubernetes on vSphere with NSX.
SHELL := /bin/bash
GO ?= go
BIN := bin
CACHE := .cache
PKGS := ./...
export GOFLAGS ?= -buildvcs=false
# Every target uses the Go release go.mod's `go` line names (a `toolchain` line, if one is added, wins): the
# patched release, since the standard library's security fixes need it. The go command fetches it once from
# the module proxy (~10 s) into the module cache and works offline after. Set here because `go env` may say
# GOTOOLCHAIN=local (CI's machines do); an older local Go would then refuse to build ("go.mod requires go >=
# ..."), never build with the vulnerable standard library. `make GOTOOLCHAIN=local ...` overrides it.
export GOTOOLCHAIN := $(or $(shell sed -n 's/^toolchain //p' go.mod),go$(shell sed -n 's/^go //p' go.mod))
# The release version is written once, in podroute/version (CHANGELOG.md's newest release names it too);
# builds add the commit (-dirty with local changes): `t1route version` prints both, images are tagged v$(VERSION).
VERSION := $(shell sed -n 's/^var Version = "\(.*\)"$$/\1/p' podroute/version/version.go)
COMMIT ?= $(shell git describe --always --dirty --abbrev=12 --exclude '*' 2>/dev/null)
LDFLAGS := -X github.com/t1route/t1route/podroute/version.Commit=$(COMMIT)

MANIFEST_ENV := NSXT_POD_ROUTING_ENABLED=true CLUSTER_CIDR=100.96.0.0/11 CLUSTER_NAME=change-me \
  NSXT_MANAGER_HOST=nsx.example.com NSXT_ROUTER_PATH=/infra/tier-1s/change-me NSXT_USERNAME=CHANGE-ME NSXT_PASSWORD=CHANGE-ME

.PHONY: manifests help build test test-unit test-integration test-security e2e e2e-prereqs kube-bins kube-bins-cluster bench bench-controller bench-conditions bench-datapath bench-services bench-policy update-crd check docs docs-check demo soak fuzz-short clean

help: ## Show this help
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-18s %s\n", $$1, $$2}'

build: ## Build bin/t1route, bin/t1route-cni, bin/nsxsim: the version of podroute/version, stamped with the commit
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test: check test-unit fuzz-short test-integration test-security e2e e2e-cluster e2e-packages e2e-upgrade conformance-ci ## Everything CI runs: checks, unit/component tests, short fuzzing, integration tests, security tests, e2e, e2e-cluster, e2e-packages, e2e-upgrade and Kubernetes' Netpol and Services e2e specs (root)

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

kube-bins: ## Build kube-apiserver, etcd and kubectl into .cache/bin (once; ~6 min cold on 2 cores)
	integration/tools/build.sh $(CURDIR)/$(CACHE)/bin

kube-bins-cluster: ## kube-bins, and the kubelet, kube-proxy, kube-controller-manager and kube-scheduler make cluster runs
	integration/tools/build.sh --cluster $(CURDIR)/$(CACHE)/bin

test-integration: kube-bins ## Integration tests: the controller on a real kube-apiserver + etcd, against nsxsim (TestSecurity* run in test-security)
	$(GO) test -count=1 -tags integration -timeout 20m -skip '^TestSecurity' ./integration/...

# The end-to-end security tests: every top-level test named TestSecurity... of package integration (build tag
# integration: a real kube-apiserver + nsxsim) and, as root, of integration/cluster (tags integration e2e: make
# cluster's real nodes; the image and the cluster's Debian packages are prepared first, and only when that package
# has such tests). The summary counts leaf tests: a subtest counts, its parent only through its subtests.
SECURITY_RUN := ^TestSecurity
# awk: the status of every test named on a "--- PASS/FAIL/SKIP:" line, then the leaves (no other test below them).
SECURITY_COUNT := awk '/^ *--- (PASS|FAIL|SKIP): TestSecurity/ { st[$$3] = $$2 } \
  END { for (n in st) for (m in st) if (index(m, n "/") == 1) { parent[n] = 1; break } \
        for (n in st) if (!(n in parent)) { if (st[n] == "PASS:") p++; else if (st[n] == "FAIL:") f++; else s++ } \
        printf "%d %d %d\n", p, f, s }'
test-security: kube-bins ## End-to-end security tests (TestSecurity*: real kube-apiserver + nsxsim; make cluster's nodes as root); prints security: N passed, M failed
	@mkdir -p $(CACHE); rc=0; log=$(CACHE)/security.log; \
	  $(GO) test -count=1 -tags integration -timeout 30m -run '$(SECURITY_RUN)' -v ./integration/ > $$log 2>&1 || rc=$$?; \
	  if [ "$$(id -u)" != 0 ]; then echo "security: integration/cluster not run (it needs root)"; \
	  elif ! $(GO) test -tags 'integration e2e' -list '$(SECURITY_RUN)' ./integration/cluster/ 2>>$$log | grep -q '^TestSecurity'; then \
	    echo "security: integration/cluster has no TestSecurity tests"; \
	  elif ! $(MAKE) --no-print-directory cluster-prereqs kube-bins-cluster image >> $$log 2>&1; then echo "security: preparing integration/cluster failed (make cluster-prereqs kube-bins-cluster image)"; rc=1; \
	  else CLUSTER_IMAGES=$(CURDIR)/$(CACHE)/image/oci $(GO) test -count=1 -tags 'integration e2e' -timeout 30m -run '$(SECURITY_RUN)' -v ./integration/cluster/ >> $$log 2>&1 || rc=$$?; fi; \
	  grep -E '^ *--- (PASS|FAIL|SKIP): TestSecurity' $$log || true; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $$log | tail -60; fi; \
	  read -r passed failed skipped <<< "$$($(SECURITY_COUNT) $$log)"; \
	  if [ $$rc != 0 ] && [ "$$failed" = 0 ]; then failed=1; fi; \
	  if [ "$$skipped" != 0 ]; then echo "security: $$skipped skipped"; fi; \
	  echo "security: $$passed passed, $$failed failed"; exit $$rc

# What the packet-level tests need from Debian; installed when missing (as root).
E2E_PKGS := openvswitch-switch iproute2 iputils-ping curl ethtool iptables
e2e-prereqs:
	@if [ "$$(id -u)" != 0 ]; then echo "make e2e needs root (network namespaces, Open vSwitch): run it as root, as CI does"; exit 1; fi
	@if ! command -v ovs-vswitchd >/dev/null || ! command -v ping >/dev/null || ! command -v ethtool >/dev/null || ! command -v iptables >/dev/null || ! command -v curl >/dev/null; then \
	  echo "installing $(E2E_PKGS) (apt-get)"; export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y $(E2E_PKGS) >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y $(E2E_PKGS) >/dev/null; }; fi

e2e: kube-bins e2e-prereqs ## Routability (on a Tier-1, a project's Tier-1 and a VPC), network policy, Services and switch restarts with real packets (root; installs Open vSwitch etc. when missing): netns, OVS userspace datapath, agents, t1route-cni
	@mkdir -p $(CACHE); rc=0; \
	  $(GO) test -count=1 -tags 'integration e2e' -timeout 25m -run 'TestRoutability|TestNetworkPolicy|TestServices|TestSwitchRestart' -v ./integration/e2e/ > $(CACHE)/e2e.log 2>&1 || rc=$$?; \
	  grep -E '^ *--- (PASS|FAIL): (TestRoutability|TestNetworkPolicy|TestServices)/|^--- (PASS|FAIL): TestSwitchRestart' $(CACHE)/e2e.log || true; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CACHE)/e2e.log | tail -60; fi; \
	  grep -E '^routability:' $(CACHE)/e2e.log || echo "routability: 0 passed, 1 failed"; \
	  grep -E '^networkpolicy:' $(CACHE)/e2e.log || echo "networkpolicy: 0 passed, 1 failed"; \
	  grep -E '^introspection:' $(CACHE)/e2e.log || echo "introspection: 0 passed, 1 failed"; \
	  grep -E '^tenancy:' $(CACHE)/e2e.log || echo "tenancy: 0 passed, 1 failed"; \
	  grep -E '^services:' $(CACHE)/e2e.log || echo "services: 0 passed, 1 failed"; \
	  grep -E '^switch:' $(CACHE)/e2e.log || echo "switch: no figures (TestSwitchRestart failed)"; exit $$rc

bench-datapath: kube-bins e2e-prereqs ## Pod attach latency (CNI ADD -> first packet) p50/p99 over 50 pods, flows per pod (root)
	$(GO) test -count=1 -tags 'integration e2e' -run '^$$' -bench PodAttach -benchtime 1x -timeout 10m ./integration/e2e/ | grep -E '^(pod attach|Benchmark)'

manifests: ## Regenerate deploy/base/t1route.yaml from t1route render (placeholder settings)
	env -i PATH="$$PATH" HOME="$$HOME" GOTOOLCHAIN=$(GOTOOLCHAIN) $(MANIFEST_ENV) $(GO) run ./cmd/t1route render --image ghcr.io/t1route/t1route:change-me > deploy/base/t1route.yaml 2>/dev/null

update-crd: ## Copy the ClusterNetworkPolicy CRD (standard channel) from sigs.k8s.io/network-policy-api v0.3.0 into podroute/node/policy/cnp
	@dir=$$($(GO) mod download -json sigs.k8s.io/network-policy-api@v0.3.0 | sed -n 's/.*"Dir": "\(.*\)",/\1/p'); \
	  test -n "$$dir" || { echo "could not download sigs.k8s.io/network-policy-api@v0.3.0"; exit 1; }; \
	  { head -3 podroute/node/policy/cnp/crd.yaml; cat $$dir/config/crd/standard/policy.networking.k8s.io_clusternetworkpolicies.yaml; } > podroute/node/policy/cnp/crd.yaml.new && \
	  mv podroute/node/policy/cnp/crd.yaml.new podroute/node/policy/cnp/crd.yaml && $(GO) test -count=1 -run CRD ./podroute/node/policy/cnp/

bench-services: kube-bins e2e-prereqs ## Services at scale (1,000 x 10 endpoints, 5,000 x 2): informer memory, table and flow computation, then the flows installed on a real OVS (root)
	$(GO) test -count=1 -run '^$$' -bench 'ServiceScale' -benchtime 1x -timeout 10m ./podroute/node/proxy/ | grep -E '^services'
	$(GO) test -count=1 -tags 'integration e2e' -run '^$$' -bench 'ServiceFlows' -benchtime 1x -timeout 10m ./integration/e2e/ | grep -E '^service flows'

bench-policy: ## Policy at scale: 10,000 pods, 1,000 policies -> memory, recompute, policy change, flows per rule
	$(GO) test -count=1 -run '^$$' -bench 'PolicyScale|EnforcerScale' -benchtime 1x -timeout 20m ./podroute/node/policy/... | grep -E '^policy'

bench: ## NSX client benchmarks, printing figures: 10,000 routes batched vs one call each; per-route cost of apply, list and forwarding table (SDK bindings vs own encoding)
	$(GO) test -run '^$$' -bench . -benchtime 1x ./nsx/...

bench-controller: build ## The controller against nsxsim with NSX's limits: ARGS='--nodes 10000 [--external-nsxsim]'
	$(GO) run ./integration/bench $(ARGS)

check: staticcheck docs-check ## gofmt, go vet, staticcheck, a macOS cross-build of t1route, and docs-check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	GOOS=darwin $(GO) build -o /dev/null ./cmd/t1route

# The documentation's own checks (docs/development.md): README.md at most 200 lines; every relative link
# in README.md, CHANGELOG.md and docs/ names a file that exists (anchors are not checked); the variable
# table in docs/configuration.md is podroute/config's (make docs rewrites it); and the version
# `t1route version` prints, built as `make build` builds it, is CHANGELOG.md's latest release, once it
# prints a release version (x.y.z) at all: an untagged `git describe` (a commit) or dev names none.
DOCS := README.md CHANGELOG.md $(wildcard docs/*.md)
docs: ## Regenerate the variable table in docs/configuration.md from podroute/config
	T1ROUTE_UPDATE_DOCS=1 $(GO) test -count=1 -run '^TestConfigurationReferenceIsCurrent$$' ./podroute/config/

docs-check: ## README at most 200 lines, relative links resolve, configuration reference current, version = CHANGELOG's latest
	@n=$$(wc -l < README.md); if [ $$n -gt 200 ]; then echo "docs: README.md has $$n lines, at most 200: move detail into docs/"; exit 1; fi
	@bad=0; for f in $(DOCS); do \
	  for l in $$(awk '/^[[:space:]]*```/ { fence = !fence; next } fence { next } \
	      { line = $$0; while (match(line, /\]\([^)[:space:]]+\)/)) { print substr(line, RSTART + 2, RLENGTH - 3); line = substr(line, RSTART + RLENGTH) } } \
	      /^\[[^]]+\]:[[:space:]]/ { print $$2 }' $$f); do \
	    case "$$l" in http://*|https://*|mailto:*|\#*) continue;; esac; \
	    if [ ! -e "$$(dirname $$f)/$${l%%#*}" ]; then echo "docs: $$f links to $$l, which does not exist"; bad=1; fi; \
	  done; done; exit $$bad
	@mkdir -p $(CACHE); $(GO) test -count=1 -run '^TestConfigurationReferenceIsCurrent$$' ./podroute/config/ > $(CACHE)/docs-check.log 2>&1 || { cat $(CACHE)/docs-check.log; exit 1; }
	@out=$$($(GO) run -ldflags '$(LDFLAGS)' ./cmd/t1route version) || { echo "docs: t1route version failed: $$out"; exit 1; }; \
	  have=$$(printf '%s\n' "$$out" | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1); \
	  want=$$(sed -nE 's/^## \[([0-9]+\.[0-9]+\.[0-9]+)\].*/\1/p' CHANGELOG.md | head -1); \
	  if [ -z "$$want" ]; then echo "docs: CHANGELOG.md has no released version (a '## [x.y.z] - date' heading)"; exit 1; fi; \
	  if [ -z "$$have" ]; then echo "docs: t1route version prints '$$out', no release version (podroute/version): CHANGELOG.md's latest release is $$want"; exit 1; \
	  elif [ "$$have" != "$$want" ]; then echo "docs: t1route version prints $$have ('$$out'), but CHANGELOG.md's latest release is $$want: release both together"; exit 1; \
	  else echo "docs: README $$(wc -l < README.md) lines, links resolve, configuration reference current, version $$have = CHANGELOG's"; fi

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
.PHONY: image cluster cluster-down test-cluster cluster-prereqs e2e-prereqs e2e-cluster bench-cluster upgrade-from e2e-upgrade e2e-outage

image: ## Build the t1route and t1route-node images without Docker (OCI layout in .cache/image, digests printed), tagged v$(VERSION); IMAGE=registry/repo:tag PUSH=1 pushes
	$(GO) run ./deploy/image $(if $(IMAGE),--image $(IMAGE)) $(if $(filter 1 true yes,$(PUSH)),--push)

cluster-prereqs:
	@if [ "$$(id -u)" != 0 ]; then echo "a cluster of real nodes needs root (namespaces, cgroups, containerd): run make as root"; exit 1; fi
	@if ! command -v containerd >/dev/null || ! command -v runc >/dev/null || ! command -v iptables >/dev/null || ! command -v curl >/dev/null; then \
	  echo "installing containerd, runc, iptables, curl (apt-get)"; export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y containerd runc iptables curl >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y containerd runc iptables curl >/dev/null; }; fi

cluster: cluster-prereqs kube-bins-cluster image ## Start a local cluster of 2 real nodes (root), the image in its registry; prints KUBECONFIG and nsx.env (SMOKE_CNI=1: nodes Ready without t1route)
	@mkdir -p $(dir $(CLUSTER_BIN)) && $(GO) build -o $(CLUSTER_BIN) ./integration/cluster/cmd/cluster
	@$(CLUSTER_BIN) up --dir $(CLUSTER_DIR) --images $(CACHE)/image/oci $(if $(filter 1 true yes,$(SMOKE_CNI)),--smoke-cni)

cluster-down: ## Stop the local cluster and remove every process, namespace, mount, cgroup and file of it
	@mkdir -p $(dir $(CLUSTER_BIN)) && $(GO) build -o $(CLUSTER_BIN) ./integration/cluster/cmd/cluster
	@$(CLUSTER_BIN) down --dir $(CLUSTER_DIR)

test-cluster: cluster-prereqs kube-bins-cluster ## The image and cluster harness tests (root): reproducible digests, two Ready nodes, pods, Services, clean teardown
	$(GO) test -count=1 -tags 'integration e2e' -timeout 20m -v ./integration/cluster/ 2>&1 | grep -vE '^ +I[0-9]{4}'; exit $${PIPESTATUS[0]}

e2e-cluster: kube-bins-cluster image cluster-prereqs ## t1route installed by render | kubectl apply on a cluster of 2 real nodes, checked with real pods: routability, then Services, NodePorts, policy through Services and DNS (root); log in .cache/e2e-cluster.log
	@mkdir -p $(CACHE); rc=0; \
	  CLUSTER_IMAGES=$(CURDIR)/$(CACHE)/image/oci $(GO) test -count=1 -tags 'integration e2e' -timeout 30m -run '^(TestClusterRoutability|TestClusterServices)$$' -v ./integration/cluster/ > $(CACHE)/e2e-cluster.log 2>&1 || rc=$$?; \
	  grep -E '^ *--- (PASS|FAIL): (TestClusterRoutability|TestClusterServices)/|^pod echo-' $(CACHE)/e2e-cluster.log || true; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CACHE)/e2e-cluster.log | tail -60; fi; \
	  grep -E '^cluster routability:' $(CACHE)/e2e-cluster.log || echo "cluster routability: 0 passed, 1 failed"; \
	  grep -E '^cluster services:' $(CACHE)/e2e-cluster.log || echo "cluster services: 0 passed, 1 failed"; exit $$rc

# The release e2e-upgrade upgrades from (N) and rolls back to: a commit of this repository, built from a git
# worktree of its own into .cache/upgrade/<commit> once (~1-2 min with a warm Go build cache), reused after.
# a09621a is main before versioned releases and the fail-closed node start: what clusters run today.
UPGRADE_FROM ?= a09621a526b71b7e1fc6d16f22d89ee688bb47bf
UPGRADE_FROM_DIR := $(CURDIR)/$(CACHE)/upgrade/$(UPGRADE_FROM)

upgrade-from: image ## Build release N for e2e-upgrade (UPGRADE_FROM, a commit) into .cache/upgrade/<commit>, once
	@integration/cluster/upgrade-from.sh $(UPGRADE_FROM) $(UPGRADE_FROM_DIR)

# One cluster for every event; probes run throughout. make test stops the API server and NSX for 30 s each;
# make e2e-outage for the full 5 and 10 minutes.
E2E_UPGRADE = @mkdir -p $(CACHE); rc=0; \
	  CLUSTER_IMAGES=$(CURDIR)/$(CACHE)/image/oci T1ROUTE_UPGRADE_FROM=$(UPGRADE_FROM_DIR) $(1) $(GO) test -count=1 -tags 'integration e2e' \
	    -timeout $(2) -run '^TestClusterUpgrade$$' -v ./integration/cluster/ > $(CACHE)/$(3).log 2>&1 || rc=$$?; \
	  grep -E '^ *--- (PASS|FAIL): TestClusterUpgrade/' $(CACHE)/$(3).log || true; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CACHE)/$(3).log | tail -60; fi; \
	  grep -E '^upgrade: ' $(CACHE)/$(3).log || echo "upgrade: 0 passed, 1 failed"; exit $$rc

e2e-upgrade: kube-bins-cluster image cluster-prereqs upgrade-from ## Upgrade N->this tree, restarts, reboot, 30 s API server and NSX outages, rollback, on one cluster under probes (root); log in .cache/e2e-upgrade.log
	$(call E2E_UPGRADE,,40m,e2e-upgrade)

e2e-outage: kube-bins-cluster image cluster-prereqs upgrade-from ## e2e-upgrade with the full outages: the API server 5 min, NSX Manager 10 min (root); log in .cache/e2e-outage.log
	$(call E2E_UPGRADE,T1ROUTE_API_OUTAGE=5m T1ROUTE_NSX_OUTAGE=10m,60m,e2e-outage)

bench-cluster: kube-bins-cluster image cluster-prereqs e2e-prereqs ## Pod start through the real kubelet (created -> Ready, CNI ADD as containerd runs it) p50/p99 over BENCH_PODS (25) pods, then bench-datapath's libcni figure (root)
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

# --- Packages: the Helm chart (deploy/helm/t1route) and the Carvel package (deploy/carvel), generated from
# deploy/render by deploy/packaging. The tools that install them are built from the Go module proxy into
# $(TOOLS) (once per version; only e2e-packages and package-tools need them).
.PHONY: packages packages-check package-tools e2e-packages
HELM_VERSION := v4.3.2
HELM := $(TOOLS)/helm-$(HELM_VERSION)/helm
# The Carvel tools: `go install tool@version` fails (the module proxy refuses their version lists, which
# go install reads for deprecations), so each is pinned by a small module in deploy/packaging/tools.
CARVEL_TOOL = $(TOOLS)/$(1)-$(shell sed -n 's/^require carvel.dev\/$(1) //p' deploy/packaging/tools/$(1)/go.mod)/$(1)
YTT := $(call CARVEL_TOOL,ytt)
KBLD := $(call CARVEL_TOOL,kbld)
KAPP := $(call CARVEL_TOOL,kapp)
IMGPKG := $(call CARVEL_TOOL,imgpkg)
PACKAGE_TOOLS := $(HELM) $(YTT) $(KBLD) $(KAPP) $(IMGPKG)

$(HELM):
	GOBIN=$(@D) $(GO) install -trimpath -ldflags '-s -w' helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
$(YTT) $(KBLD) $(KAPP) $(IMGPKG):
	cd deploy/packaging/tools/$(notdir $@) && $(GO) build -trimpath -ldflags '-s -w' -o $(@D)/ carvel.dev/$(notdir $@)/cmd/$(notdir $@)

packages: ## Regenerate the Helm chart (deploy/helm/t1route) and the Carvel package (deploy/carvel) from deploy/render
	$(GO) run ./deploy/packaging/gen

packages-check: ## Fail if the chart or the package differ from what deploy/render gives now (make packages fixes it)
	$(GO) run ./deploy/packaging/gen --check

package-tools: $(PACKAGE_TOOLS) ## Build helm, ytt, kbld, kapp and imgpkg from the Go module proxy into .cache/tools (once)

e2e-packages: kube-bins-cluster image cluster-prereqs package-tools ## helm template and ytt == render; lint, schema; helm install/upgrade/uninstall and kapp deploy/delete on a cluster of 2 real nodes, routable (root); log in .cache/e2e-packages.log
	@mkdir -p $(CACHE); rc=0; \
	  CLUSTER_IMAGES=$(CURDIR)/$(CACHE)/image/oci HELM=$(HELM) YTT=$(YTT) KBLD=$(KBLD) KAPP=$(KAPP) IMGPKG=$(IMGPKG) \
	  $(GO) test -count=1 -tags 'integration e2e' -timeout 30m -run '^TestPackages$$' -v ./integration/cluster/ > $(CACHE)/e2e-packages.log 2>&1 || rc=$$?; \
	  grep -E '^ *--- (PASS|FAIL): TestPackages/' $(CACHE)/e2e-packages.log || true; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CACHE)/e2e-packages.log | tail -60; fi; \
	  grep -E '^packages:' $(CACHE)/e2e-packages.log || echo "packages: 0 passed, 1 failed"; exit $$rc

# --- Kubernetes' own networking tests (integration/conformance) ---
CONFORMANCE := $(CACHE)/conformance
.PHONY: conformance conformance-ci conformance-suite

conformance-suite: ## Build the Kubernetes e2e suite at make cluster's version into .cache/conformance: e2e.test, ginkgo, agnhost (once; ~17 min cold on 2 cores)
	integration/conformance/suite/build.sh $(CURDIR)/$(CONFORMANCE)

# The suite's output, its JSON report and (after a failure) the cluster's logs: $(CONFORMANCE)/run[-ci].
# make test runs the CI subset: the whole selection would pass CI's 60 minutes with a cold suite
# build (~17 min) on top of the rest of make test (~12 min).
define run-conformance
	@mkdir -p $(CONFORMANCE); rc=0; out=$(CURDIR)/$(CONFORMANCE)/run$(2); rm -f $$out/summary.txt; \
	  CLUSTER_IMAGES=$(CURDIR)/$(CACHE)/image/oci CONFORMANCE_SUBSET=$(1) CONFORMANCE_OUT=$$out CONFORMANCE_PROCS=$${PROCS:-4} CONFORMANCE_TIMEOUT=$(3) \
	  $(GO) test -count=1 -tags 'integration e2e' -timeout 150m -run '^TestConformance$$' -v ./integration/conformance/ > $(CONFORMANCE)/test$(2).log 2>&1 || rc=$$?; \
	  if [ -s $$out/summary.txt ]; then cat $$out/summary.txt; fi; \
	  if [ $$rc != 0 ]; then grep -vE '^ +(I[0-9]{4}|\{")' $(CONFORMANCE)/test$(2).log | grep -vE '^(FAILED|SKIPPED): |^    ' | tail -30; \
	    echo "logs: $(CONFORMANCE)/test$(2).log, $$out/e2e.log"; fi; \
	  [ -s $$out/summary.txt ] || echo "conformance$(2): 0 passed, 1 failed, 0 skipped"; exit $$rc
endef

conformance: kube-bins-cluster image cluster-prereqs conformance-suite ## Kubernetes' e2e [sig-network] conformance specs and the Netpol suite on a cluster of 2 real nodes with t1route (root; ginkgo with PROCS=4); names every skip; ends `conformance: N passed, M failed, S skipped`
	$(call run-conformance,all,,100m)

conformance-ci: kube-bins-cluster image cluster-prereqs conformance-suite ## The subset make test runs: the Netpol suite and the Services conformance specs, the suite capped at 25 min (root)
	$(call run-conformance,ci,-ci,25m)
