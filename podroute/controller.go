package podroute

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/t1route/t1route/nsx"
)

// RouteClient is what the controller needs of NSX; *nsx.Client is one.
type RouteClient interface {
	// ListRoutes returns every static route of the Tier-1 (all pages).
	ListRoutes(ctx context.Context, router nsx.RouterPath) ([]nsx.Route, error)
	// Apply upserts and deletes routes in batches; idempotent; *nsx.BatchError on failure.
	Apply(ctx context.Context, router nsx.RouterPath, upserts []nsx.Route, deletes []string) error
}

// Config configures the controller.
type Config struct {
	Identity     Identity
	Router       nsx.RouterPath // the Tier-1 or VPC holding the routes
	ClusterCIDRs []netip.Prefix
	// ResyncPeriod re-lists NSX to repair drift even without node changes; default 5 min.
	ResyncPeriod time.Duration
	// Window coalesces a burst of node changes into one pass; default 100 ms.
	Window time.Duration
	// ConditionWorkers patch node conditions in parallel; default
	// DefaultConditionWorkers (see there for why).
	ConditionWorkers int
	// MaxRoutes is the most static routes this cluster may have on the Tier-1
	// (set it from NSX's configuration maximums for the version in use, minus
	// routes others keep there); 0 means no limit is checked.
	MaxRoutes int
	// AdoptCloudProviderRoutes replaces the vSphere cloud provider's routes
	// of this cluster (tag vsphere.k8s.io/cluster-name = the cluster's name)
	// with t1route's for the same networks, one atomic call per chunk.
	AdoptCloudProviderRoutes bool
}

// Controller keeps the Tier-1's routes equal to the nodes' pod CIDRs.
type Controller struct {
	cfg  Config
	nsx  RouteClient
	kube kubernetes.Interface
	// status patches node conditions: by default kube; Run gives it a
	// client with its own rate limit (RunOptions.NodeStatus).
	status   kubernetes.Interface
	nodes    corelisters.NodeLister
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	metrics  *Metrics
	log      *zap.Logger

	mu       sync.Mutex
	reported map[string]string // node/cidr -> last problem reason, to emit each event once
	failed   map[string]string // route ID -> NSX's refusal, kept until the route is applied
	synced1  bool              // a pass has completed since start
	patched  map[string]patchedCondition
	// wantCond is each node's condition as the newest pass wants it; the
	// condition workers patch the nodes queued in condQueue from it.
	wantCond map[string]wantCondition
	// problemNodes are the nodes that had a problem in the previous pass.
	problemNodes map[string]bool
	condQueue    workqueue.TypedRateLimitingInterface[string]

	// actual is the Tier-1's routes as last listed plus what this
	// controller applied since, with the background resync list.
	actual actualRoutes
	// cache is each node's desired routes, recomputed when the node
	// changes, and entirely on a full pass (whenever NSX is listed).
	cache *nodeCache
	// capped is whether the previous pass left routes out for MaxRoutes.
	capped bool
}

// patchedCondition remembers a condition this controller set, so a pass
// running before the informer shows it does not patch again.
type patchedCondition struct {
	want wantCondition
	at   time.Time
}

const workKey = "tier1"

// New builds a controller on a node informer; call it before the informer factory starts.
func New(cfg Config, kube kubernetes.Interface, nodes coreinformers.NodeInformer, client RouteClient, recorder record.EventRecorder, metrics *Metrics, log *zap.Logger) (*Controller, error) {
	if cfg.ResyncPeriod <= 0 {
		cfg.ResyncPeriod = 5 * time.Minute
	}
	if cfg.Window <= 0 {
		cfg.Window = 100 * time.Millisecond
	}
	if cfg.ConditionWorkers <= 0 {
		cfg.ConditionWorkers = DefaultConditionWorkers
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	c := &Controller{
		cfg: cfg, nsx: client, kube: kube, status: kube, recorder: recorder, metrics: metrics, log: log,
		nodes:  nodes.Lister(),
		synced: nodes.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			// At most 15 s between passes while NSX fails: the transport already
			// backs off within a pass, and recovery should be noticed quickly.
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 15*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "t1route"}),
		reported:  map[string]string{},
		failed:    map[string]string{},
		patched:   map[string]patchedCondition{},
		wantCond:  map[string]wantCondition{},
		condQueue: newConditionQueue(),
		cache:     newNodeCache(newRouteRules(cfg.Identity, cfg.ClusterCIDRs)),
	}
	c.actual.owns = cfg.Identity.Owns
	c.actual.Invalidate()
	inf := nodes.Informer()
	// Keep only what routing needs: 10,000 full Node objects are large.
	if err := inf.SetTransform(TrimNode); err != nil {
		return nil, fmt.Errorf("node informer: %w", err)
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { c.enqueue() },
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Node)
			n, ok2 := cur.(*corev1.Node)
			if !ok1 || !ok2 || routingChanged(o, n) {
				c.enqueue()
			}
		},
		DeleteFunc: func(any) { c.enqueue() },
	})
	return c, err
}

// enqueue marks the Tier-1 dirty; changes within the window share one pass.
func (c *Controller) enqueue() { c.queue.AddAfter(workKey, c.cfg.Window) }

// Run reconciles until ctx ends. It returns after the pass in progress, if
// any, has finished or been abandoned (its NSX call cancelled).
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	defer c.condQueue.ShutDown()
	c.log.Info("starting route controller", zap.Stringer("router", c.cfg.Router), zap.String("cluster", c.cfg.Identity.Name),
		zap.String("cluster_uid", c.cfg.Identity.UID), zap.Duration("resync", c.cfg.ResyncPeriod))
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return ctx.Err()
	}
	c.queue.Add(workKey)
	var workers sync.WaitGroup
	for range c.cfg.ConditionWorkers {
		workers.Go(func() { c.runConditionWorker(ctx) })
	}
	go wait.Until(func() { c.backgroundList(ctx) }, c.cfg.ResyncPeriod, ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c.processNext(ctx) {
		}
	}()
	<-ctx.Done()
	c.queue.ShutDown()
	c.condQueue.ShutDown()
	<-done
	workers.Wait()
	c.log.Info("route controller stopped")
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	start := time.Now()
	err := c.reconcile(ctx)
	c.metrics.ReconcileDuration.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		c.queue.Forget(key)
		c.metrics.LastSuccess.SetToCurrentTime()
	case ctx.Err() != nil:
		c.actual.Invalidate()
		c.log.Info("reconcile abandoned: shutting down", zap.Error(err))
	default:
		c.actual.Invalidate() // the state of NSX is uncertain after a failure
		c.metrics.Errors.Inc()
		c.log.Error("reconcile failed; will retry", zap.Error(err), zap.Int("retries", c.queue.NumRequeues(key)))
		c.queue.AddRateLimited(key)
	}
	return true
}

// backgroundList lists NSX for a resync without holding up passes.
func (c *Controller) backgroundList(ctx context.Context) {
	if !c.Ready() || !c.actual.BeginList() {
		c.actual.Invalidate() // no pass yet, or a list is running: list in the pass
		c.queue.Add(workKey)
		return
	}
	go func() {
		c.actual.EndList(c.nsx.ListRoutes(ctx, c.cfg.Router))
		c.queue.Add(workKey)
	}()
}

// Ready reports whether the controller has completed a pass since it started.
func (c *Controller) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.synced1
}

// reconcile is one pass: list actual, compute desired, diff, apply, report.
// A pass that lists NSX (at start, on every resync, after a failure) is a
// full pass: it also recomputes every node's routes and checks every node's
// condition. Other passes, those of node changes, recompute only the nodes
// that changed (nodeCache) and diff against the routes as last known.
func (c *Controller) reconcile(ctx context.Context) error {
	nodeObjs, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	before, listed, err := c.actual.Refresh(ctx, func(ctx context.Context) ([]nsx.Route, error) {
		return c.nsx.ListRoutes(ctx, c.cfg.Router)
	})
	if err != nil {
		return fmt.Errorf("listing routes of %s: %w", c.cfg.Router, err)
	}
	if listed {
		c.logOutOfBand(before, c.actual.Routes())
	}
	var holders map[string]string
	if listed { // a full pass: who holds which route is what the Tier-1 says
		holders = Holders(c.cfg.Identity, c.actual.Routes())
	}
	res := c.cache.update(nodeObjs, listed, holders)
	desired, problems := res.desired, res.problems
	c.mu.Lock()
	for id := range c.failed { // refusals of routes no longer wanted
		if _, ok := desired[id]; !ok {
			delete(c.failed, id)
		}
	}
	c.mu.Unlock()

	needed := len(desired)
	desired, overLimit := capRoutes(desired, c.actual.Routes(), c.cfg.MaxRoutes)
	c.metrics.RoutesOverLimit.Set(float64(len(overLimit)))
	if len(overLimit) > 0 {
		c.log.Error("the cluster needs more routes than the Tier-1 allows; routes are not created for some nodes",
			zap.Int("needed", needed), zap.Int("max_routes", c.cfg.MaxRoutes), zap.Int("nodes_without_route", len(overLimit)))
	}
	problems = append(problems, overLimit...)
	c.reportProblems(problems)
	if c.cfg.AdoptCloudProviderRoutes {
		if _, err := c.adopt(ctx, desired, c.actual.List()); err != nil {
			return err
		}
	}
	// A node change's pass diffs only the routes it can have changed: the
	// others are as the previous pass left them on both sides, equal (the
	// Tier-1's routes change between lists only by this controller's
	// applies, and a failed pass makes the next one full). Refused routes
	// are retried by every pass, as by a full diff.
	full := listed || res.all || len(overLimit) > 0 || c.capped || c.cfg.AdoptCloudProviderRoutes
	c.capped = len(overLimit) > 0
	var changes Changes
	if full {
		changes = Diff(c.cfg.Identity, desired, c.actual.Routes())
	} else {
		changes = Diff(c.cfg.Identity, c.scope(desired, res.touched), c.scope(c.actual.Routes(), res.touched))
	}
	owned := c.actual.Owned()
	c.metrics.DesiredRoutes.Set(float64(len(desired)))
	for _, d := range changes.Drift {
		// A node's new address, or an edit made in NSX out of band.
		c.log.Info("route differs from the desired state; updating it", zap.String("difference", d))
	}
	for _, r := range changes.Conflicts {
		c.log.Warn("a route this cluster needs has its ID taken by a route it does not own; leaving it alone",
			zap.String("route_id", r.ID), zap.String("network", r.Network))
	}
	if !changes.Empty() {
		c.log.Info("applying route changes", zap.Int("upserts", len(changes.Upserts)), zap.Int("deletes", len(changes.Deletes)),
			zap.Int("desired", len(desired)), zap.Int("owned_before", owned))
		start := time.Now()
		err := c.apply(ctx, changes)
		if err != nil {
			return err
		}
		refused := 0
		c.actual.Applied(changes, func(id string) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			_, failed := c.failed[id]
			if failed {
				refused++
			}
			return failed
		})
		// The counterpart of "applying": that NSX took the changes, and how long it took.
		c.log.Info("applied route changes", zap.Int("upserts", len(changes.Upserts)), zap.Int("deletes", len(changes.Deletes)),
			zap.Int("refused", refused), zap.Int("owned_after", c.actual.Owned()), zap.Duration("duration", time.Since(start)))
	}
	c.metrics.ActualRoutes.Set(float64(c.actual.Owned()))
	c.updateConditions(res, desired, problems, full)
	c.mu.Lock()
	c.synced1 = true
	c.mu.Unlock()
	return nil
}

// scope is routes restricted to the IDs given and those NSX refused.
func (c *Controller) scope(routes map[string]nsx.Route, ids []string) map[string]nsx.Route {
	out := make(map[string]nsx.Route, len(ids))
	add := func(id string) {
		if r, ok := routes[id]; ok {
			out[id] = r
		}
	}
	for _, id := range ids {
		add(id)
	}
	c.mu.Lock()
	for id := range c.failed {
		add(id)
	}
	c.mu.Unlock()
	return out
}

// logOutOfBand names the owned routes someone else deleted or changed in
// NSX since this controller last saw them (they are repaired by this pass).
func (c *Controller) logOutOfBand(known, fresh map[string]nsx.Route) {
	for rid, was := range known {
		if !c.cfg.Identity.Owns(was) {
			continue
		}
		now, ok := fresh[rid]
		switch {
		case !ok:
			c.log.Warn("route deleted in NSX out of band; restoring it", zap.String("route_id", rid), zap.String("network", was.Network), zap.String("node", NodeOf(was)))
		case !sameRoute(was, now):
			c.log.Warn("route changed in NSX out of band; restoring it", zap.String("drift", describeDrift(was, now)), zap.String("node", NodeOf(was)))
		}
	}
}

// apply applies changes. A permanent refusal (NSX's 400 for one route) is
// isolated by bisecting the refused batch, reported on the route's node, and
// the rest still applied; temporary failures are returned for a retry.
func (c *Controller) apply(ctx context.Context, ch Changes) error {
	ups, dels := ch.Upserts, ch.Deletes
	for attempt := 0; ; attempt++ {
		err := c.nsx.Apply(ctx, c.cfg.Router, ups, dels)
		if err == nil {
			c.clearFailures(ups)
			return nil
		}
		if nsx.IsProtected(err) {
			// Not bad input: bisecting would only repeat the refusal, one
			// call per route, when the credentials are what is wrong.
			return ExplainProtected(err, controllerProtectionFix)
		}
		var be *nsx.BatchError
		if !errors.As(err, &be) || nsx.IsTemporary(err) || ctx.Err() != nil || attempt >= 3 {
			return err
		}
		bad, err := c.isolate(ctx, be.Upserts, be.Deletes)
		if err != nil {
			return ExplainProtected(err, controllerProtectionFix)
		}
		if len(bad) == 0 {
			continue // the batch went through on its own: apply the rest
		}
		ups = slices.DeleteFunc(slices.Clone(ups), func(r nsx.Route) bool { _, isBad := bad[r.ID]; return isBad })
		dels = slices.DeleteFunc(slices.Clone(dels), func(id string) bool { _, isBad := bad[id]; return isBad })
	}
}

// controllerProtectionFix is what to do when NSX refuses the controller's
// change of routes another identity created.
const controllerProtectionFix = "run the controller with that identity's credentials (the client certificate it used before), " +
	"or have an enterprise admin delete these routes (t1route gc --cluster <this cluster's UID> --yes overrides protection) so the controller re-creates them as itself"

// adoptProtectionFix is what to do when NSX refuses to let the controller
// replace the cloud provider's routes.
const adoptProtectionFix = "adoption sends X-Allow-Overwrite, which NSX honours only from an enterprise admin: run the controller " +
	"as an enterprise admin (NSXT_USERNAME/NSXT_PASSWORD) until the cloud provider's routes are replaced, " +
	"or have an enterprise admin delete them (DELETE with the header X-Allow-Overwrite: true) so the controller creates its own"

// isolate finds the routes NSX refuses in a batch by bisection; it applies
// the rest of the batch on the way.
func (c *Controller) isolate(ctx context.Context, ups []nsx.Route, dels []string) (map[string]string, error) {
	bad := map[string]string{}
	var walk func(ups []nsx.Route, dels []string) error
	walk = func(ups []nsx.Route, dels []string) error {
		if len(ups)+len(dels) == 0 {
			return nil
		}
		err := c.nsx.Apply(ctx, c.cfg.Router, ups, dels)
		if err == nil {
			return nil
		}
		if nsx.IsTemporary(err) || ctx.Err() != nil || nsx.IsProtected(err) {
			return err
		}
		if len(ups)+len(dels) == 1 {
			var reason string
			var apiErr *nsx.APIError
			if errors.As(err, &apiErr) {
				reason = apiErr.Message
			} else {
				reason = err.Error()
			}
			if len(ups) == 1 {
				bad[ups[0].ID] = reason
				c.recordFailure(ups[0], reason)
			} else {
				bad[dels[0]] = reason
				c.log.Error("NSX refused to delete a route", zap.String("route_id", dels[0]), zap.String("reason", reason))
			}
			return nil
		}
		mu, md := len(ups)/2, len(dels)/2
		if err := walk(ups[:mu], dels[:md]); err != nil {
			return err
		}
		return walk(ups[mu:], dels[md:])
	}
	return bad, walk(ups, dels)
}

func (c *Controller) recordFailure(r nsx.Route, reason string) {
	node := NodeOf(r)
	c.log.Error("NSX refused a route", zap.String("node", node), zap.String("network", r.Network), zap.String("reason", reason))
	c.mu.Lock()
	_, known := c.failed[r.ID]
	c.failed[r.ID] = reason
	c.mu.Unlock()
	if !known && c.recorder != nil {
		c.recorder.Eventf(nodeRef(node), corev1.EventTypeWarning, "FailedToCreateRoute",
			"NSX refused the route for pod CIDR %s: %s", r.Network, reason)
	}
}

func (c *Controller) clearFailures(applied []nsx.Route) {
	c.mu.Lock()
	for _, r := range applied {
		delete(c.failed, r.ID)
	}
	c.mu.Unlock()
}

// maxEventsPerPass bounds the events of one pass: a wrong CLUSTER_CIDR on a
// large cluster would otherwise send one event per node at once.
const maxEventsPerPass = 100

// reportProblems emits one Warning event per new node problem (at most
// maxEventsPerPass a pass, the rest summarised in the log).
func (c *Controller) reportProblems(problems []NodeProblem) {
	current := map[string]string{}
	sent, suppressed := 0, map[string]int{}
	for _, p := range problems {
		key := p.Node + "/" + p.CIDR
		seen := p.Reason
		if namesHolder(p.Reason) { // a new holder is news: say who has the pod CIDR now
			seen += "\n" + p.Message
		}
		current[key] = seen
		c.mu.Lock()
		prev := c.reported[key]
		c.mu.Unlock()
		if prev == seen {
			continue
		}
		if sent == maxEventsPerPass {
			suppressed[p.Reason]++
			continue
		}
		sent++
		c.log.Warn("node gets no route", zap.String("node", p.Node), zap.String("pod_cidr", p.CIDR), zap.String("reason", p.Reason), zap.String("why", p.Message))
		if c.recorder != nil {
			c.recorder.Event(nodeRef(p.Node), corev1.EventTypeWarning, p.Reason, p.Message)
		}
	}
	for reason, n := range suppressed {
		c.log.Warn("more nodes get no route; events and logs for them are suppressed this pass (their conditions still say why)",
			zap.String("reason", reason), zap.Int("nodes", n))
	}
	c.mu.Lock()
	c.reported = current
	c.mu.Unlock()
}

func nodeRef(name string) *corev1.ObjectReference {
	// As the Kubernetes route controller does: events on a node use its name as UID.
	return &corev1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(name)}
}

// adopt swaps the cloud provider's routes for t1route's, each pair in the
// same hierarchical call, so no network is ever without its route or has two.
func (c *Controller) adopt(ctx context.Context, desired map[string]nsx.Route, actual []nsx.Route) (int, error) {
	pairs := Adoptions(c.cfg.Identity, desired, actual)
	for start := 0; start < len(pairs); start += adoptChunk {
		chunk := pairs[start:min(start+adoptChunk, len(pairs))]
		ups := make([]nsx.Route, 0, len(chunk))
		dels := make([]string, 0, len(chunk))
		for _, p := range chunk {
			ups = append(ups, p.Route)
			dels = append(dels, p.Replaces.ID)
		}
		// The cloud provider authenticates as a protected principal
		// identity: its routes can be replaced only with the override (which
		// NSX honours only from an enterprise admin).
		if err := c.nsx.Apply(nsx.WithAllowOverwrite(ctx), c.cfg.Router, ups, dels); err != nil {
			return start, fmt.Errorf("adopting cloud provider routes: %w", ExplainProtected(err, adoptProtectionFix))
		}
		c.actual.Applied(Changes{Upserts: ups, Deletes: dels}, nil)
		for _, p := range chunk {
			c.log.Info("adopted a cloud provider route", zap.String("replaced_id", p.Replaces.ID), zap.String("route_id", p.Route.ID),
				zap.String("network", p.Route.Network), zap.String("node", NodeOf(p.Route)))
		}
	}
	return len(pairs), nil
}
