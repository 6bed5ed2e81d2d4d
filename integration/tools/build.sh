#!/usr/bin/env bash
# Builds the Kubernetes binaries a make target needs into OUT (default: the
# repository's .cache/bin), skipping those already there:
#
#   build.sh [OUT]            kube-apiserver, etcd, kubectl: what make demo,
#                             test-integration and e2e run
#   build.sh --cluster [OUT]  those, and the kubelet, kube-proxy,
#                             kube-controller-manager and kube-scheduler that
#                             make cluster's nodes and control plane run
#
# The first set takes about 6 minutes cold on 2 cores (peak ~2.4 GB); the
# cluster set roughly as long again. Cached after.
set -euo pipefail
cluster=
if [ "${1:-}" = --cluster ]; then
  cluster=1
  shift
fi
# OUT is relative to the caller's directory; the default is the repository's .cache/bin.
out=${1:-$(dirname "$0")/../../.cache/bin}
out=$(mkdir -p "$out" && cd "$out" && pwd)
cd "$(dirname "$0")"
want=()
[ -x "$out/kube-apiserver" ] || want+=(k8s.io/kubernetes/cmd/kube-apiserver)
[ -x "$out/kubectl" ] || want+=(k8s.io/kubernetes/cmd/kubectl)
[ -x "$out/etcd" ] || want+=(./cmd/etcd)
if [ -n "$cluster" ]; then
  for b in kubelet kube-proxy kube-controller-manager kube-scheduler; do
    [ -x "$out/$b" ] || want+=(k8s.io/kubernetes/cmd/$b)
  done
fi
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
echo "building ${want[*]} into $out (first time only: ~6 min for the first three on 2 cores, as long again for the cluster's four)..." >&2
export GOFLAGS=-mod=mod
go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v1.35.4 \
  -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=35" \
  -o "$out/" "${want[@]}"
"$out/kube-apiserver" --version >&2
