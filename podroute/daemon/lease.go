package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElection configures the coordination.k8s.io Lease that makes one
// replica of several the active one.
type LeaderElection struct {
	Namespace, Name string
	Identity        string // this replica's name
	LeaseDuration   time.Duration
	RenewDeadline   time.Duration
	RetryPeriod     time.Duration
}

// ErrLeaseLost is RunElected's answer when the lease was lost while the
// process was not stopping: exit, so that a fresh start rejoins the election.
var ErrLeaseLost = errors.New("lost the leader lease; exiting so that a fresh start rejoins the election")

// LeaseNamespace is namespace, or by default the pod's own ($POD_NAMESPACE,
// set by the rendered manifests), else kube-system.
func LeaseNamespace(getenv func(string) (string, bool), namespace string) string {
	if namespace != "" {
		return namespace
	}
	if v, ok := getenv("POD_NAMESPACE"); ok && v != "" {
		return v
	}
	return "kube-system"
}

// Lease configures the Lease name in LeaseNamespace(getenv, namespace) with
// this replica's identity: the host name and a random suffix, so a
// restarted pod never impersonates its predecessor.
func Lease(getenv func(string) (string, bool), namespace, name string, duration time.Duration) *LeaderElection {
	host, _ := os.Hostname()
	return &LeaderElection{Namespace: LeaseNamespace(getenv, namespace), Name: name, Identity: host + "_" + uuid.NewString()[:8],
		LeaseDuration: duration, RenewDeadline: duration * 2 / 3, RetryPeriod: duration / 7}
}

// RunElected runs run while this replica holds the Lease le, or at once if
// le is nil. It returns run's error; nil when ctx ended; ErrLeaseLost when
// the lease was lost first. run's context ends when the lease is lost; the
// lease is released on return, and run has returned by then. onLeader, if
// set, hears of gaining and losing leadership.
func RunElected(ctx context.Context, kube kubernetes.Interface, le *LeaderElection, log *zap.Logger, onLeader func(bool), run func(context.Context) error) error {
	if le == nil {
		return run(ctx)
	}
	if onLeader == nil {
		onLeader = func(bool) {}
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	// The elector runs OnStartedLeading in a goroutine of its own and does not
	// wait for it: hand its context to this goroutine, which runs run, so that
	// RunElected returns only after run has.
	leading := make(chan context.Context)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   orDefault(le.LeaseDuration, 15*time.Second),
		RenewDeadline:   orDefault(le.RenewDeadline, 10*time.Second),
		RetryPeriod:     orDefault(le.RetryPeriod, 2*time.Second),
		ReleaseOnCancel: true,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				onLeader(true)
				log.Info("became the leader", zap.String("lease", le.Name), zap.String("identity", le.Identity))
				select {
				case leading <- lctx:
				case <-lctx.Done():
				}
			},
			OnStoppedLeading: func() {
				onLeader(false)
				log.Info("no longer the leader", zap.String("lease", le.Name), zap.String("identity", le.Identity))
			},
			OnNewLeader: func(id string) {
				if id != le.Identity {
					log.Info("another replica leads", zap.String("lease", le.Name), zap.String("leader", id))
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	ectx, stop := context.WithCancel(ctx)
	defer stop()
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		elector.Run(ectx) // returns when ectx ends or the lease is lost
	}()
	select {
	case lctx := <-leading:
		runErr := run(lctx)
		stop() // run may end on its own: release the lease then too
		<-electorDone
		switch {
		case runErr != nil:
			return runErr
		case ctx.Err() != nil:
			return nil
		}
		return ErrLeaseLost
	case <-electorDone:
		return nil // ctx ended before this replica led
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
