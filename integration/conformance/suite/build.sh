#!/usr/bin/env bash
# Builds the Kubernetes e2e suite at the version make cluster runs into ${1:-../../../.cache/conformance}
# unless it is there already: e2e.test (go test -c k8s.io/kubernetes/test/e2e, ~10 min cold on 2 cores),
# ginkgo (the v2 runner of k8s.io/kubernetes' go.mod, ~2 min) and agnhost (static, ~5 min; its image is
# built by the conformance harness). Cached after; a pin change in go.mod means removing the folder.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mkdir -p "${1:-../../../.cache/conformance}" && cd "${1:-../../../.cache/conformance}" && pwd)
export GOFLAGS=-mod=mod
ver=v1.35.4
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$ver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=35"
if [ ! -x "$out/ginkgo" ]; then
  echo "building ginkgo into $out (first time only, ~2 min)..." >&2
  go build -trimpath -o "$out/ginkgo.tmp" github.com/onsi/ginkgo/v2/ginkgo && mv "$out/ginkgo.tmp" "$out/ginkgo"
fi
if [ ! -x "$out/agnhost" ]; then
  echo "building agnhost into $out (first time only, ~5 min)..." >&2
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/agnhost.tmp" k8s.io/kubernetes/test/images/agnhost && mv "$out/agnhost.tmp" "$out/agnhost"
fi
if [ ! -s "$out/porter/localhost.key" ]; then
  # agnhost porter serves TLS with these (upstream's image has them in /); the Proxy specs call it.
  dir=$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)
  mkdir -p "$out/porter" && cp "$dir/test/images/agnhost/porter/localhost.crt" "$dir/test/images/agnhost/porter/localhost.key" "$out/porter/"
fi
if [ ! -x "$out/e2e.test" ]; then
  echo "building e2e.test ($ver) into $out (first time only, ~10 min)..." >&2
  go test -c -trimpath -ldflags "$ldflags" -o "$out/e2e.test.tmp" k8s.io/kubernetes/test/e2e && mv "$out/e2e.test.tmp" "$out/e2e.test"
fi
