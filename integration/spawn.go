//go:build integration

package integration

import (
	"os/exec"
	"runtime"
	"sync"
)

// A daemon the tests start (etcd, kube-apiserver) carries Pdeathsig so that
// it dies with the test process even when cleanups never run (a test
// timeout). Linux ties that signal to the thread that forked the child, not
// to the process, and Go ends a thread whenever a goroutine that locked it
// (to enter a network namespace, say) returns: a daemon forked from such a
// thread is killed mid-test. That killed the e2e tests' kube-apiserver in CI
// (the agents' connections were refused for minutes). Every daemon is
// therefore forked from one thread that is locked for the life of the
// process and never ends.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startPinned starts cmd from the process's long-lived spawner thread.
func startPinned(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked, so the thread never ends
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnReqs <- spawnReq{cmd, done}
	return <-done
}
