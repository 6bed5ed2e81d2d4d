//go:build tools

// Package tools pins the kube-apiserver, kubectl and etcd sources that the
// integration tests build into .cache/bin.
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
