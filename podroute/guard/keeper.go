// Package guard keeps the management-network guard in the cluster: the
// Admin-tier ClusterNetworkPolicies ManagementGuard builds from the
// controller's configuration (NSXT_MANAGEMENT_CIDR). The controller's leader
// applies them once the ClusterNetworkPolicy CRD is served, puts them back
// when they are deleted or edited, and deletes the guard policies the
// configuration no longer asks for.
//
// Why the controller and not the manifests: a CustomResourceDefinition and
// objects of its kind in one `kubectl apply` fail on the first try ("ensure
// CRDs are installed first"), so a guard rendered into the manifests would be
// missing after the documented one-command install, silently if the error
// scrolled by. Kept here, it also comes back if someone deletes it.
//
// It owns only what carries the guard's labels: no other
// ClusterNetworkPolicy is read for a decision, changed or deleted. Its
// policies have names fixed in advance (Owner.Names), which the
// controller's RBAC grants by resourceNames, and nothing else: the keeper
// reads them one by one (get) instead of listing, which would need every
// ClusterNetworkPolicy.
package guard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// FieldManager is the server-side apply field manager of the guard's policies.
const FieldManager = "t1route-controller"

// Selector selects the guard's policies (Labels).
var Selector = labels.SelectorFromSet(Labels)

// ErrNotServed is Sync's error while the ClusterNetworkPolicy CRD is not
// installed (or not yet established).
var ErrNotServed = errors.New("the ClusterNetworkPolicy CRD (clusternetworkpolicies.policy.networking.k8s.io) is not served")

// retryInterval is how soon Run tries again after a failed Sync.
const retryInterval = 5 * time.Second

// Keeper keeps the guard's policies as configured.
type Keeper struct {
	dyn   dynamic.ResourceInterface
	owner Owner
	want  []*cnp.ClusterNetworkPolicy
	log   *zap.Logger
	// Interval is how often Run looks again (default 30 s): how soon a
	// deleted or edited guard policy is put back.
	Interval time.Duration
	// Synced, if set, is set to 1 after each Sync that succeeds and to 0
	// after each that fails.
	Synced prometheus.Gauge
}

// New returns a Keeper of the guard for cidrs and allowed (no cidrs: no
// guard, and Sync deletes the guard policies left from before), named as
// DefaultOwner.
func New(dyn dynamic.Interface, cidrs []netip.Prefix, allowed []config.GuardSelector, log *zap.Logger) (*Keeper, error) {
	return NewFor(dyn, DefaultOwner(), cidrs, allowed, log)
}

// NewFor is New for the guard of owner (an install's names and labels).
func NewFor(dyn dynamic.Interface, owner Owner, cidrs []netip.Prefix, allowed []config.GuardSelector, log *zap.Logger) (*Keeper, error) {
	want, err := ManagementGuardOf(owner, cidrs, allowed)
	if err != nil {
		return nil, err
	}
	return &Keeper{dyn: dyn.Resource(cnp.Resource), owner: owner, want: want, log: log, Interval: 30 * time.Second}, nil
}

// Result is what one Sync did.
type Result struct {
	Applied []string // created or changed back to the configuration
	Deleted []string // guard policies the configuration no longer has
}

// Sync makes the guard's policies in the cluster the configured ones:
// idempotent, and it writes nothing when they already are. ErrNotServed
// while the CRD is not served. It reads each name the guard can have
// (get), applies the configured policies and deletes the others that
// carry the guard's labels.
func (k *Keeper) Sync(ctx context.Context) (Result, error) {
	var res Result
	wanted := map[string]*cnp.ClusterNetworkPolicy{}
	for _, p := range k.want {
		wanted[p.Name] = p
	}
	labels := k.owner.PolicyLabels()
	for _, name := range k.owner.Names() {
		have, err := k.dyn.Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
		case apierrors.IsNotFound(err) && !objectNotFound(err, name):
			if len(k.want) == 0 {
				return res, nil // nothing to keep, and nothing can be left over
			}
			return res, ErrNotServed
		case apierrors.IsNotFound(err):
			have = nil
		default:
			return res, fmt.Errorf("reading the management guard's ClusterNetworkPolicy %s: %w%s", name, err, rbacHint(err))
		}
		p, ok := wanted[name]
		if !ok {
			if have == nil || !hasLabels(have.GetLabels(), labels) {
				continue // absent, or not the guard's
			}
			uid := have.GetUID()
			err := k.dyn.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
			if err != nil && !apierrors.IsNotFound(err) {
				return res, fmt.Errorf("deleting the management guard's ClusterNetworkPolicy %s (no longer configured): %w%s", name, err, rbacHint(err))
			}
			res.Deleted = append(res.Deleted, name)
			continue
		}
		u, err := cnp.ToUnstructured(p)
		if err != nil {
			return res, err
		}
		// Server-side apply, forced: the configuration wins over an edit.
		// Applying what is already there changes nothing (same
		// resourceVersion), so a quiet cluster sees no writes.
		got, err := k.dyn.Apply(ctx, p.Name, u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		if err != nil {
			return res, fmt.Errorf("applying the management guard's ClusterNetworkPolicy %s: %w%s", p.Name, err, rbacHint(err))
		}
		if have == nil || have.GetResourceVersion() != got.GetResourceVersion() {
			res.Applied = append(res.Applied, p.Name)
		}
	}
	return res, nil
}

// objectNotFound reports whether a NotFound error is about the object name
// (the resource is served), not about the resource itself.
func objectNotFound(err error, name string) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Name == name
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// rbacHint names the fix when the controller's ClusterRole predates the guard.
func rbacHint(err error) string {
	if apierrors.IsForbidden(err) {
		return " (the controller's ClusterRole lacks it: apply t1route render's output again, with NSXT_MANAGEMENT_CIDR set; it grants get, create, patch and delete on the guard's ClusterNetworkPolicies by name, and none on others)"
	}
	return ""
}

// Run syncs every Interval until ctx ends, logging what changed and,
// once per outage, why it cannot.
func (k *Keeper) Run(ctx context.Context) {
	lastErr := "not synced yet"
	for {
		res, err := k.Sync(ctx)
		if k.Synced != nil && ctx.Err() == nil {
			k.Synced.Set(map[bool]float64{true: 1, false: 0}[err == nil])
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if err.Error() != lastErr {
				if errors.Is(err, ErrNotServed) {
					k.log.Warn("the management-network guard is not in force: install the ClusterNetworkPolicy CRD (t1route render has it)", zap.Error(err))
				} else {
					k.log.Error("the management-network guard cannot be kept; retrying", zap.Error(err))
				}
				lastErr = err.Error()
			}
		default:
			if lastErr != "" || len(res.Applied) > 0 || len(res.Deleted) > 0 {
				k.log.Info("management-network guard in force", zap.Int("policies", len(k.want)), zap.Strings("applied", res.Applied), zap.Strings("deleted", res.Deleted))
			}
			lastErr = ""
		}
		wait := k.Interval
		if err != nil {
			// The CRD applied with the controller is usually established
			// seconds later: look again soon.
			wait = min(wait, retryInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// ForController returns the controller's guard keeper for owner, to run
// while it leads (podroute.RunOptions.WhileLeading). Without a guard
// configured the controller may not touch ClusterNetworkPolicies at all
// (t1route render grants nothing then): it only says how to remove guard
// policies an earlier configuration left, which stay in force.
func ForController(rc *rest.Config, owner Owner, settings config.GuardSettings, synced prometheus.Gauge, log *zap.Logger) (func(context.Context), error) {
	if len(settings.CIDRs) == 0 {
		sel := "app.kubernetes.io/component=management-guard"
		if owner.Instance != "" {
			sel += "," + InstanceLabel + "=" + owner.Instance
		}
		return func(context.Context) {
			log.Info("no management-network guard configured (NSXT_MANAGEMENT_CIDR): if an earlier configuration's guard policies remain, they stay in force "+
				"until deleted", zap.String("delete", "kubectl delete clusternetworkpolicies -l "+sel))
		}, nil
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	k, err := NewFor(dyn, owner, settings.CIDRs, settings.Allowed, log)
	if err != nil {
		return nil, err
	}
	k.Synced = synced
	return k.Run, nil
}
