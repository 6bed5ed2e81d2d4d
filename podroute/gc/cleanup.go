package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
)

// ClusterAPIClusters is Cluster API's Cluster resource.
var ClusterAPIClusters = schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta1", Resource: "clusters"}

// Cleanup finalizer and the label that asks for it explicitly.
const (
	CleanupFinalizer = "t1route.io/route-cleanup"
	PodRoutingLabel  = "t1route.io/pod-routing"
)

// CleanupConfig configures the cleanup controller.
type CleanupConfig struct {
	Router nsx.RouterPath
	// Resync re-lists NSX and revisits every Cluster this often (default 1 min).
	Resync time.Duration
	// AllowOverwrite deletes a deleted cluster's routes even when another
	// identity created them (a protected principal identity, e.g. the
	// cluster's controller in certificate mode), by sending X-Allow-Overwrite
	// (NSX honours it only from an enterprise admin). Only routes carrying
	// that cluster's t1route tags are ever deleted.
	AllowOverwrite bool
}

// workKey is the one work item: every pass looks at every Cluster.
const workKey = "clusters"

// CleanupController runs in a Cluster API management cluster. It puts a
// finalizer on every Cluster with routable pods (one that has t1route routes
// on the Tier-1 under its name, or carries the t1route.io/pod-routing=true
// label), and when such a Cluster is deleted it removes that cluster's routes
// and then releases the finalizer. It releases it only once its finalizer is
// the last one (Cluster API has torn the cluster down, so the cluster's own
// t1route controller can no longer re-create a route) and no route is left.
// All state is in the finalizer: a restart mid-cleanup resumes it.
type CleanupController struct {
	cfg      CleanupConfig
	dyn      dynamic.Interface
	nsx      podroute.RouteClient
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[string]
	log      *zap.Logger
}

// NewCleanupController builds the controller; Run starts it.
func NewCleanupController(cfg CleanupConfig, dyn dynamic.Interface, client podroute.RouteClient, log *zap.Logger) *CleanupController {
	if cfg.Resync == 0 {
		cfg.Resync = time.Minute
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, cfg.Resync)
	c := &CleanupController{cfg: cfg, dyn: dyn, nsx: client, log: log,
		informer: factory.ForResource(ClusterAPIClusters).Informer(),
		queue:    workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())}
	enqueue := func(any) { c.queue.Add(workKey) }
	c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{ //nolint:errcheck
		AddFunc: enqueue, UpdateFunc: func(_, n any) { enqueue(n) }, DeleteFunc: enqueue,
	})
	return c
}

// Run works until ctx ends.
func (c *CleanupController) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	go c.informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		return errors.New("the Cluster API Clusters never synced (is the cluster.x-k8s.io CRD installed?)")
	}
	// A pass now, then one every Resync.
	go wait.Until(func() { c.queue.Add(workKey) }, c.cfg.Resync, ctx.Done())
	go func() { <-ctx.Done(); c.queue.ShutDown() }()
	for {
		key, quit := c.queue.Get()
		if quit {
			return nil
		}
		err := c.reconcile(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("cluster cleanup pass failed; retrying", zap.Error(err))
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
			if c.pendingDeletion() {
				// Waiting for Cluster API's own finalizers: look again soon.
				c.queue.AddAfter(key, 2*time.Second)
			}
		}
		c.queue.Done(key)
	}
}

func (c *CleanupController) pendingDeletion() bool {
	for _, obj := range c.informer.GetStore().List() {
		u := obj.(*unstructured.Unstructured)
		if u.GetDeletionTimestamp() != nil && slices.Contains(u.GetFinalizers(), CleanupFinalizer) {
			return true
		}
	}
	return false
}

// reconcile is one pass over every Cluster: list the Tier-1 once, then add
// or honour finalizers.
func (c *CleanupController) reconcile(ctx context.Context) error {
	routes, err := c.nsx.ListRoutes(ctx, c.cfg.Router)
	if err != nil {
		return fmt.Errorf("list routes of %s: %w", c.cfg.Router, err)
	}
	withRoutes := map[string]bool{}
	for ref := range Clusters(routes) {
		withRoutes[ref.Name] = true
	}
	var errs []error
	for _, obj := range c.informer.GetStore().List() {
		u := obj.(*unstructured.Unstructured)
		if err := c.reconcileCluster(ctx, u, routes, withRoutes[u.GetName()]); err != nil {
			errs = append(errs, fmt.Errorf("cluster %s/%s: %w", u.GetNamespace(), u.GetName(), err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

func (c *CleanupController) reconcileCluster(ctx context.Context, u *unstructured.Unstructured, routes []nsx.Route, hasRoutes bool) error {
	ours := slices.Contains(u.GetFinalizers(), CleanupFinalizer)
	if u.GetDeletionTimestamp() == nil {
		if ours || !(hasRoutes || u.GetLabels()[PodRoutingLabel] == "true") {
			return nil
		}
		c.log.Info("protecting a cluster with routable pods", zap.String("cluster", u.GetName()), zap.String("namespace", u.GetNamespace()))
		return c.setFinalizers(ctx, u, append(slices.Clone(u.GetFinalizers()), CleanupFinalizer))
	}
	if !ours {
		return nil
	}
	doomed, _ := RoutesOfCluster(routes, u.GetName())
	if len(doomed) > 0 {
		ids := make([]string, 0, len(doomed))
		for _, r := range doomed {
			ids = append(ids, r.ID)
		}
		actx := ctx
		if c.cfg.AllowOverwrite {
			actx = nsx.WithAllowOverwrite(ctx)
		}
		if err := c.nsx.Apply(actx, c.cfg.Router, nil, ids); err != nil {
			return fmt.Errorf("delete its routes: %w", podroute.ExplainProtected(err, ProtectionFix(c.cfg.AllowOverwrite, "--allow-overwrite")))
		}
		c.log.Info("deleted the routes of a deleted cluster", zap.String("cluster", u.GetName()), zap.Int("routes", len(ids)))
		return nil // release on a later pass, once a fresh list shows none
	}
	if others := len(u.GetFinalizers()) - 1; others > 0 {
		return nil // Cluster API is still tearing it down; its controller may still write routes
	}
	c.log.Info("routes of the deleted cluster are gone; releasing it", zap.String("cluster", u.GetName()))
	return c.setFinalizers(ctx, u, slices.DeleteFunc(slices.Clone(u.GetFinalizers()), func(f string) bool { return f == CleanupFinalizer }))
}

// setFinalizers writes the finalizer list with a JSON merge patch guarded by
// the resourceVersion, so a concurrent change to the list is never lost.
func (c *CleanupController) setFinalizers(ctx context.Context, u *unstructured.Unstructured, finalizers []string) error {
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,"finalizers":%s}}`, u.GetResourceVersion(), jsonList(finalizers))
	_, err := c.dyn.Resource(ClusterAPIClusters).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	return err
}

func jsonList(items []string) string {
	if len(items) == 0 {
		return "null"
	}
	b, _ := json.Marshal(items)
	return string(b)
}

// LiveClusters is the set of Cluster API Clusters (by name) of a management
// cluster: what gc --orphans keeps.
func LiveClusters(ctx context.Context, dyn dynamic.Interface) (map[string]bool, error) {
	list, err := dyn.Resource(ClusterAPIClusters).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list Cluster API Clusters (cluster.x-k8s.io/v1beta1): %w; is this the management cluster?", err)
	}
	live := map[string]bool{}
	for _, c := range list.Items {
		live[c.GetName()] = true
	}
	return live, nil
}

// ProtectionFix is what to do when NSX refuses to delete a deleted cluster's
// routes because another identity created them; overwrite says whether the
// call sent X-Allow-Overwrite, flag is the option that sends it.
func ProtectionFix(overwrite bool, flag string) string {
	if !overwrite {
		return "allow the override with " + flag + "=true (the default; it applies only to routes carrying the cluster's t1route tags), as an enterprise admin"
	}
	return "NSX honours X-Allow-Overwrite only from an enterprise admin: run this with an enterprise admin's NSXT_USERNAME/NSXT_PASSWORD, or with the creating identity's client certificate"
}
