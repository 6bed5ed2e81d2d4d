package proxy

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// Watcher keeps a node's service table current: informers on Services and
// EndpointSlices (the ones kube-proxy watches, trimmed as they arrive to
// what Table reads), a recompute when they change (bursts coalesced), and
// a signal when the table changed.
type Watcher struct {
	node   string
	kube   kubernetes.Interface
	log    *zap.Logger
	window time.Duration

	mu       sync.Mutex
	services map[string]*Service // by namespace/name
	slices   map[string]*Slice   // by namespace/name

	table   atomic.Pointer[pipeline.ServiceTable] // nil until the informers synced
	dirty   chan struct{}
	changes chan struct{}
}

// NewWatcher returns a Watcher for node; Run starts it. window coalesces
// bursts of changes (0: 100 ms).
func NewWatcher(kube kubernetes.Interface, node string, window time.Duration, log *zap.Logger) *Watcher {
	if window == 0 {
		window = 100 * time.Millisecond
	}
	return &Watcher{node: node, kube: kube, log: log, window: window, services: map[string]*Service{}, slices: map[string]*Slice{},
		dirty: make(chan struct{}, 1), changes: make(chan struct{}, 1)}
}

// Table returns the current service table: nil until the informers have
// synced (pods' connections to Services then go to kube-proxy untranslated).
func (w *Watcher) Table() *pipeline.ServiceTable { return w.table.Load() }

// Changes signals (coalesced) that Table changed.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

// entry is what the informers keep of an object: its identity for the
// cache and the trimmed view (nil for objects kube-proxy ignores).
type entry struct {
	meta metav1.ObjectMeta
	svc  *Service
	sl   *Slice
}

func (e *entry) GetObjectMeta() metav1.Object { return &e.meta }

func ident(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}
}

// transform trims Services and EndpointSlices as they arrive (idempotent).
func transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		return &entry{meta: ident(o.ObjectMeta), svc: ServiceFromAPI(o)}, nil
	case *discoveryv1.EndpointSlice:
		return &entry{meta: ident(o.ObjectMeta), sl: SliceFromAPI(o)}, nil
	}
	return obj, nil // already an entry, or a tombstone
}

func (w *Watcher) markDirty() {
	select {
	case w.dirty <- struct{}{}:
	default:
	}
}

// Run watches the API and keeps the table current until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	// kube-proxy's selectors: objects another proxy implements, and
	// headless Services' slices, are not even listed.
	svcFactory := informers.NewSharedInformerFactoryWithOptions(w.kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = "!" + LabelServiceProxyName
	}))
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(w.kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = "!" + LabelServiceProxyName + ",!" + LabelHeadless
	}))
	svcs := svcFactory.Core().V1().Services().Informer()
	sls := sliceFactory.Discovery().V1().EndpointSlices().Informer()
	for _, inf := range []struct {
		inf     cache.SharedIndexInformer
		isSlice bool
	}{{svcs, false}, {sls, true}} {
		if err := inf.inf.SetTransform(transform); err != nil {
			return err
		}
		if _, err := inf.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.set(obj, inf.isSlice, false) },
			UpdateFunc: func(_, obj any) { w.set(obj, inf.isSlice, false) },
			DeleteFunc: func(obj any) { w.set(obj, inf.isSlice, true) },
		}); err != nil {
			return err
		}
	}
	svcFactory.Start(ctx.Done())
	sliceFactory.Start(ctx.Done())
	for _, f := range []informers.SharedInformerFactory{svcFactory, sliceFactory} {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return fmt.Errorf("the %v informer did not sync: %w", typ, ctx.Err())
			}
		}
	}
	w.recompute()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.dirty:
		}
		select { // let a burst (a rollout's endpoints) settle
		case <-ctx.Done():
			return nil
		case <-time.After(w.window):
		}
		w.recompute()
	}
}

// set records an object of one informer (a Service, or an EndpointSlice)
// as it now is; deleted, or one kube-proxy ignores, it is forgotten.
func (w *Watcher) set(obj any, isSlice, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = t.Obj, true
	}
	e, ok := obj.(*entry)
	if !ok {
		return
	}
	key := e.meta.Namespace + "/" + e.meta.Name
	w.mu.Lock()
	switch {
	case isSlice && (deleted || e.sl == nil):
		delete(w.slices, key)
	case isSlice:
		w.slices[key] = e.sl
	case deleted || e.svc == nil:
		delete(w.services, key)
	default:
		w.services[key] = e.svc
	}
	w.mu.Unlock()
	w.markDirty()
}

// recompute builds the table and, if it changed, publishes it.
func (w *Watcher) recompute() {
	start := time.Now()
	w.mu.Lock()
	svcs := make([]*Service, 0, len(w.services))
	for _, s := range w.services {
		svcs = append(svcs, s)
	}
	sls := make([]*Slice, 0, len(w.slices))
	for _, s := range w.slices {
		sls = append(sls, s)
	}
	w.mu.Unlock()
	t := Table(svcs, sls, w.node)
	old := w.table.Load()
	if old != nil && reflect.DeepEqual(old, t) {
		return
	}
	w.table.Store(t)
	if old == nil {
		w.log.Info("service table ready", zap.Int("servicePorts", len(t.Ports)), zap.Int("services", len(svcs)),
			zap.Int("endpointSlices", len(sls)), zap.Duration("took", time.Since(start)))
	} else {
		w.log.Debug("service table changed", zap.Int("servicePorts", len(t.Ports)), zap.Duration("took", time.Since(start)))
	}
	select {
	case w.changes <- struct{}{}:
	default:
	}
}
