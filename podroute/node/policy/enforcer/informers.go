package enforcer

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/t1route/t1route/podroute/node/policy"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// podEntry is all the Pod informer keeps of a Pod: its identity for the
// cache and the policy view of it (nil for pods policy never sees), about
// 1 KB instead of a whole Pod. The same *policy.Pod is shared with the
// cluster view.
type podEntry struct {
	meta metav1.ObjectMeta
	pod  *policy.Pod
}

func (p *podEntry) GetObjectMeta() metav1.Object { return &p.meta }

// transformPod is the Pod informer's transform (idempotent).
func transformPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // already an entry, or a tombstone
	}
	return &podEntry{meta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion},
		pod: policy.PodFromAPI(p)}, nil
}

// transformNamespace keeps a Namespace's identity and labels.
func transformNamespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, UID: ns.UID, ResourceVersion: ns.ResourceVersion, Labels: ns.Labels}}, nil
}

// transformNetworkPolicy drops what policy does not read (managed fields,
// annotations such as kubectl's last-applied configuration).
func transformNetworkPolicy(obj any) (any, error) {
	if np, ok := obj.(*networkingv1.NetworkPolicy); ok {
		np.ManagedFields, np.Annotations = nil, nil
	}
	return obj, nil
}

func tombstone(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

func (e *Enforcer) update(fn func(c *policy.Cluster) bool) {
	e.mu.Lock()
	changed := fn(e.cluster)
	e.mu.Unlock()
	if changed {
		e.markDirty()
	}
}

func (e *Enforcer) startInformers(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(e.kube, 0)
	pods := factory.Core().V1().Pods().Informer()
	nss := factory.Core().V1().Namespaces().Informer()
	nps := factory.Networking().V1().NetworkPolicies().Informer()
	for _, set := range []error{pods.SetTransform(transformPod), nss.SetTransform(transformNamespace), nps.SetTransform(transformNetworkPolicy)} {
		if set != nil {
			return set
		}
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandlerFuncs
	}{
		{pods, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { e.setPod(nil, obj) },
			UpdateFunc: e.setPod,
			DeleteFunc: func(obj any) {
				if p, ok := tombstone(obj).(*podEntry); ok {
					e.update(func(c *policy.Cluster) bool { c.DeletePod(p.meta.Namespace, p.meta.Name); return true })
				}
			},
		}},
		{nss, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { e.setNamespace(nil, obj) },
			UpdateFunc: e.setNamespace,
			DeleteFunc: func(obj any) {
				if ns, ok := tombstone(obj).(*corev1.Namespace); ok {
					e.update(func(c *policy.Cluster) bool { c.DeleteNamespace(ns.Name); return true })
				}
			},
		}},
		{nps, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { e.setNetworkPolicy(nil, obj) },
			UpdateFunc: e.setNetworkPolicy,
			DeleteFunc: func(obj any) {
				if np, ok := tombstone(obj).(*networkingv1.NetworkPolicy); ok {
					e.update(func(c *policy.Cluster) bool { c.DeleteNetworkPolicy(np.Namespace, np.Name); return true })
				}
			},
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("the %v informer did not sync: %w", typ, ctx.Err())
		}
	}
	if e.dyn != nil {
		return e.startClusterNetworkPolicies(ctx)
	}
	return nil
}

func (e *Enforcer) setPod(oldObj, obj any) {
	p, ok := obj.(*podEntry)
	if !ok {
		return
	}
	if old, ok := oldObj.(*podEntry); ok && reflect.DeepEqual(old.pod, p.pod) {
		return // a status change policy does not see
	}
	e.update(func(c *policy.Cluster) bool {
		if p.pod == nil {
			c.DeletePod(p.meta.Namespace, p.meta.Name)
		} else {
			c.SetPod(p.pod)
		}
		return true
	})
}

func (e *Enforcer) setNamespace(oldObj, obj any) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return
	}
	if old, ok := oldObj.(*corev1.Namespace); ok && reflect.DeepEqual(old.Labels, ns.Labels) {
		return
	}
	e.update(func(c *policy.Cluster) bool {
		c.SetNamespace(&policy.Namespace{Name: ns.Name, Labels: ns.Labels})
		return true
	})
}

func (e *Enforcer) setNetworkPolicy(oldObj, obj any) {
	np, ok := obj.(*networkingv1.NetworkPolicy)
	if !ok {
		return
	}
	if old, ok := oldObj.(*networkingv1.NetworkPolicy); ok && reflect.DeepEqual(old.Spec, np.Spec) {
		return
	}
	e.update(func(c *policy.Cluster) bool { c.SetNetworkPolicy(np); return true })
}

// crdServed asks discovery whether ClusterNetworkPolicies are served.
func (e *Enforcer) crdServed() bool {
	if e.served != nil {
		return e.served()
	}
	_, err := e.kube.Discovery().ServerResourcesForGroupVersion(cnp.GroupVersion.String())
	return err == nil
}

// startClusterNetworkPolicies watches ClusterNetworkPolicies once their CRD
// is served, looking again meanwhile, at most CRDPoll apart (NetworkPolicy
// is enforced in the meantime).
func (e *Enforcer) startClusterNetworkPolicies(ctx context.Context) error {
	served := e.crdServed
	if !served() {
		e.log.Warn("the ClusterNetworkPolicy CRD is not installed (t1route render installs it); enforcing NetworkPolicy only until it is",
			zap.String("apiVersion", cnp.GroupVersion.String()))
		go func() {
			// From 1 s, doubling up to CRDPoll: right after an install the
			// CRD applied with the agent is established within seconds (the
			// management guard waits for it), while a cluster without it
			// settles at one discovery call per CRDPoll per node.
			wait := min(time.Second, e.cfg.CRDPoll)
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, e.cfg.CRDPoll)
				if served() {
					if err := e.watchClusterNetworkPolicies(ctx); err != nil {
						e.log.Error("watching ClusterNetworkPolicies", zap.Error(err))
					}
					return
				}
			}
		}()
		return nil
	}
	return e.watchClusterNetworkPolicies(ctx)
}

func (e *Enforcer) watchClusterNetworkPolicies(ctx context.Context) error {
	factory := dynamicinformer.NewDynamicSharedInformerFactory(e.dyn, 0)
	inf := factory.ForResource(cnp.Resource).Informer()
	decode := func(obj any) *cnp.ClusterNetworkPolicy {
		u, ok := tombstone(obj).(*unstructured.Unstructured)
		if !ok {
			return nil
		}
		p, err := cnp.FromUnstructured(u)
		if err != nil {
			e.log.Error("ClusterNetworkPolicy not enforced: it does not match the v1beta1 schema", zap.String("name", u.GetName()), zap.Error(err))
			return nil
		}
		return p
	}
	set := func(obj any) {
		if p := decode(obj); p != nil {
			e.update(func(c *policy.Cluster) bool { c.SetClusterNetworkPolicy(p); return true })
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if u, ok := tombstone(obj).(*unstructured.Unstructured); ok {
				e.update(func(c *policy.Cluster) bool { c.DeleteClusterNetworkPolicy(u.GetName()); return true })
			}
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	for _, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("the ClusterNetworkPolicy informer did not sync: %w", ctx.Err())
		}
	}
	e.log.Info("watching ClusterNetworkPolicies", zap.String("apiVersion", cnp.GroupVersion.String()))
	return nil
}
