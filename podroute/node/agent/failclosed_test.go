package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/t1route/t1route/podroute/node/cni"
	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/pipeline"
	"github.com/t1route/t1route/podroute/node/policy"
)

// fakePolicy is an enforcer that is ready when told.
type fakePolicy struct {
	ready       atomic.Bool
	republished atomic.Int32
	changes     chan struct{}
}

func (f *fakePolicy) Changes() <-chan struct{}                                        { return f.changes }
func (f *fakePolicy) ObserveFlowStats(map[uint64]pipeline.Counter, map[uint64]uint64) {}
func (f *fakePolicy) Ready() bool                                                     { return f.ready.Load() }
func (f *fakePolicy) Republish()                                                      { f.republished.Add(1) }
func (f *fakePolicy) Guard() *policy.GuardSpec                                        { return nil }

// Until the enforcer is ready: the CNI plugin's ADD is refused with the
// reason (it never gets flows installed), the conflist is not written, and
// the agent is not ready. Then all three change.
func TestNodeStartWaitsForPolicy(t *testing.T) {
	dir := t.TempDir()
	pol := &fakePolicy{changes: make(chan struct{})}
	a := New(Config{RunDir: dir, CNIConfDir: filepath.Join(dir, "net.d")}, nil, zap.NewNop(), nil).WithPolicy(pol)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := filepath.Join(dir, CNISocketName)
	if err := a.serveCNI(ctx, sock, a.cniSync(ovs.OFCtl{RunDir: dir, Bridge: "br-int"})); err != nil {
		t.Fatal(err)
	}
	// The plugin's call waits (up to syncTimeout) and then carries the reason.
	sync := a.cniSync(ovs.OFCtl{RunDir: dir, Bridge: "br-int"})
	wctx, wcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer wcancel()
	if err := sync(wctx); !errors.Is(err, errPolicyNotReady) {
		t.Fatalf("a CNI sync before the enforcer is ready: %v", err)
	}
	if !strings.Contains(errPolicyNotReady.Error(), "has not computed its rules yet") {
		t.Fatal(errPolicyNotReady)
	}
	installs := 0
	install := func() error { installs++; return os.WriteFile(filepath.Join(dir, ConfListFile), nil, 0o644) }
	a.maybeInstallCNI(install)
	if installs != 0 {
		t.Fatal("the conflist was written before the enforcer was ready")
	}
	a.ready.Store(true)
	a.rulesOK.Store(true)
	if a.Ready() {
		t.Fatal("ready before the enforcer")
	}

	pol.ready.Store(true)
	a.maybeInstallCNI(install)
	a.maybeInstallCNI(install)
	if installs != 1 {
		t.Fatalf("conflist written %d times once the enforcer is ready, want once", installs)
	}
	// Ready now: the sync goes on to OVSDB (none here) instead of waiting.
	if err := cni.SyncFlows(ctx, sock); err == nil || !strings.Contains(err.Error(), "OVSDB is not connected yet") {
		t.Fatalf("a CNI sync once the enforcer is ready: %v", err)
	}
}

// A rules file that cannot be read keeps the agent not ready and asks the
// enforcer to write it again; so does a missing one once the enforcer is
// ready. A missing one before that is the normal start.
func TestUnreadableRulesKeepTheAgentNotReady(t *testing.T) {
	pol := &fakePolicy{}
	a := New(Config{}, nil, zap.NewNop(), nil).WithPolicy(pol)
	a.afterSync(pipeline.SyncResult{PolicyMissing: true}, nil)
	if a.rulesOK.Load() || pol.republished.Load() != 0 {
		t.Fatalf("missing rules before the enforcer is ready: rulesOK %v, republished %d", a.rulesOK.Load(), pol.republished.Load())
	}
	pol.ready.Store(true)
	a.afterSync(pipeline.SyncResult{PolicyError: errors.New("bad json")}, pipeline.ErrPolicyUnreadable)
	if a.rulesOK.Load() || pol.republished.Load() != 1 {
		t.Fatalf("unreadable rules: rulesOK %v, republished %d", a.rulesOK.Load(), pol.republished.Load())
	}
	a.afterSync(pipeline.SyncResult{PolicyMissing: true}, nil)
	if a.rulesOK.Load() || pol.republished.Load() != 2 {
		t.Fatalf("rules gone: rulesOK %v, republished %d", a.rulesOK.Load(), pol.republished.Load())
	}
	a.afterSync(pipeline.SyncResult{}, nil)
	if !a.rulesOK.Load() {
		t.Fatal("rules read: not OK")
	}
	// Without policy enforcement a missing file is what is expected.
	b := New(Config{}, nil, zap.NewNop(), nil)
	b.afterSync(pipeline.SyncResult{PolicyMissing: true}, nil)
	if !b.rulesOK.Load() || !b.policyReady() {
		t.Fatal("without policy enforcement, the agent waits for rules")
	}
}
