package podroute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/t1route/t1route/podroute/daemon"
)

// RunOptions configure Run.
type RunOptions struct {
	Config
	// LeaderElection, if set, runs the controller only while this replica holds the lease.
	LeaderElection *daemon.LeaderElection
	Metrics        *Metrics
	Log            *zap.Logger
	// NodeStatus, if set, patches node conditions instead of Run's kube
	// client: give it its own rate limit (connect.ControllerClients), so
	// thousands of patches neither wait behind nor delay the other calls.
	NodeStatus kubernetes.Interface
	// OnReady, if set, is called once the first pass has completed.
	OnReady func()
	// WhileLeading, if set, runs beside the route controller, on the
	// leader only; its ctx ends when leadership (or Run) does.
	WhileLeading func(ctx context.Context)
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

// WaitClusterUID is ClusterUID, asked again (every second, then up to every
// 30 s) while the API server cannot answer, so that a controller started
// during a control-plane outage waits for it rather than exiting into the
// kubelet's growing restart back-off; it returns ctx's error if ctx ends
// first. Errors the API server answers (Forbidden) are returned at once.
func WaitClusterUID(ctx context.Context, kube kubernetes.Interface, log *zap.Logger) (string, error) {
	wait := time.Second
	for {
		uid, err := ClusterUID(ctx, kube)
		if err == nil || !retriableAPIError(err) {
			return uid, err
		}
		log.Warn("the API server does not answer; asking again", zap.Duration("in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (waiting for the API server: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// retriableAPIError reports whether err is the API server being away or
// overloaded rather than an answer (not found, forbidden) that asking again
// would not change.
func retriableAPIError(err error) bool {
	return !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err) && !apierrors.IsBadRequest(err)
}

// RunUntilDone is Run, joining the leader election again each time this
// replica loses the lease (the API server away longer than the lease lasts,
// for instance), instead of returning daemon.ErrLeaseLost: the process stays
// up, and takes the lease again as soon as the API server answers, rather
// than restarting under the kubelet's back-off (up to 5 minutes after an
// outage). Each term starts from a fresh informer cache.
func RunUntilDone(ctx context.Context, kube kubernetes.Interface, client RouteClient, o RunOptions) error {
	for {
		err := Run(ctx, kube, client, o)
		if !errors.Is(err, daemon.ErrLeaseLost) || ctx.Err() != nil {
			return err
		}
		if o.Log != nil {
			o.Log.Info("lost the leader lease; joining the election again")
		}
	}
}

// Run runs the route controller until ctx ends: a node informer, events, and
// (optionally) leader election. On return the lease, if held, is released;
// a lease lost while ctx is alive is daemon.ErrLeaseLost.
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
	if o.NodeStatus != nil {
		ctrl.status = o.NodeStatus
	}
	runCtrl := func(ctx context.Context) error {
		factory.Start(ctx.Done())
		if o.WhileLeading != nil {
			lctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); o.WhileLeading(lctx) }()
			defer func() { stop(); <-done }() // ended with the controller
		}
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
		return nil
	}
	return daemon.RunElected(ctx, kube, o.LeaderElection, o.Log, func(leading bool) {
		if leading {
			o.Metrics.Leader.Set(1)
		} else {
			o.Metrics.Leader.Set(0)
		}
	}, runCtrl)
}
