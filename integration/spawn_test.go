//go:build integration

package integration

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// A daemon asked for by a goroutine whose thread then ends (as a goroutine
// that locked its thread to enter a network namespace does) keeps running;
// with a plain cmd.Start on that thread, Pdeathsig kills it.
var errMainThread = errors.New("on the main thread")

func TestStartPinnedSurvivesThreadExit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		start    func(*exec.Cmd) error
		survives bool
	}{
		{"started from the spawner thread", startPinned, true},
		{"started from the ending thread (the old way)", (*exec.Cmd).Start, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sleep", "60")
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			// The asking goroutine locks its thread and returns, so Go ends the
			// thread; except the main thread, which Go never ends: try again
			// from another thread if the goroutine lands there.
			for started := false; !started; {
				errc := make(chan error, 1)
				go func() {
					runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
					if syscall.Gettid() == syscall.Getpid() {
						runtime.UnlockOSThread()
						errc <- errMainThread
						return
					}
					errc <- tc.start(cmd)
				}()
				switch err := <-errc; err {
				case nil:
					started = true
				case errMainThread:
				default:
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() }) //nolint:errcheck
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }() //nolint:errcheck
			select {
			case <-exited:
				if tc.survives {
					t.Fatalf("the daemon died (%v) when the thread that asked for it ended", cmd.ProcessState)
				}
			case <-time.After(2 * time.Second):
				if !tc.survives {
					t.Fatal("the daemon outlived the thread that forked it: Pdeathsig did not fire, so this test proves nothing")
				}
			}
		})
	}
}
