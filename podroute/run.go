package podroute

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
)

// LeaderElection configures the coordination.k8s.io Lease that makes one
// replica of several the active one.
type LeaderElection struct {
	Namespace, Name string
	Identity        string // this replica's name (pod name)
	LeaseDuration   time.Duration
	RenewDeadline   time.Duration
	RetryPeriod     time.Duration
}

// RunOptions configure Run.
type RunOptions struct {
	Config
	// LeaderElection, if set, runs the controller only while this replica holds the lease.
	LeaderElection *LeaderElection
	Metrics        *Metrics
	Log            *zap.Logger
	// OnReady, if set, is called once the first pass has completed.
	OnReady func()
}

// ClusterUID returns the cluster's identity: the kube-system namespace's UID,
// stable for the life of the cluster.
func ClusterUID(ctx context.Context, kube kubernetes.Interface) (string, error) {
	ns, err := kube.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading the kube-system namespace for the cluster's UID: %w", err)
	}
	return string(ns.UID), nil
}

// Run runs the route controller until ctx ends: a node informer, events, and
// (optionally) leader election. On return the lease, if held, is released.
func Run(ctx context.Context, kube kubernetes.Interface, client RouteClient, o RunOptions) error {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "t1route"})

	factory := informers.NewSharedInformerFactory(kube, 0)
	ctrl, err := New(o.Config, kube, factory.Core().V1().Nodes(), client, recorder, o.Metrics, o.Log)
	if err != nil {
		return err
	}
	runCtrl := func(ctx context.Context) {
		factory.Start(ctx.Done())
		if o.OnReady != nil {
			go func() {
				for !ctrl.Ready() {
					select {
					case <-ctx.Done():
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
				o.OnReady()
			}()
		}
		if err := ctrl.Run(ctx); err != nil && ctx.Err() == nil {
			o.Log.Error("route controller stopped", zap.Error(err))
		}
		factory.Shutdown()
	}
	return RunElected(ctx, kube, o.LeaderElection, o.Log, func(leading bool) {
		if leading {
			o.Metrics.Leader.Set(1)
		} else {
			o.Metrics.Leader.Set(0)
		}
	}, runCtrl)
}

// RunElected runs run while this replica holds the Lease le (or at once and
// until ctx ends if le is nil). It returns when ctx ends or the lease is lost;
// the lease is released on return. onLeader, if set, hears of gaining and
// losing leadership.
func RunElected(ctx context.Context, kube kubernetes.Interface, le *LeaderElection, log *zap.Logger, onLeader func(bool), run func(context.Context)) error {
	if le == nil {
		run(ctx)
		return nil
	}
	if onLeader == nil {
		onLeader = func(bool) {}
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   orDefault(le.LeaseDuration, 15*time.Second),
		RenewDeadline:   orDefault(le.RenewDeadline, 10*time.Second),
		RetryPeriod:     orDefault(le.RetryPeriod, 2*time.Second),
		ReleaseOnCancel: true,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				onLeader(true)
				log.Info("became the leader", zap.String("lease", le.Name), zap.String("identity", le.Identity))
				run(ctx)
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
	elector.Run(ctx) // returns when ctx ends or the lease is lost
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
