package render

import (
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/node/introspect"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// ControllerClusterRules is everything the controller of the install in
// namespace does cluster-wide for cfg.
func ControllerClusterRules(cfg config.Config, namespace string) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		// The cluster's identity is the kube-system namespace's UID.
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{"kube-system"}, Verbs: []string{"get"}},
		// /metrics answers only tokens the API server authenticates
		// (TokenReview) and authorizes for it (SubjectAccessReview), as
		// Kubernetes' own components and controller-runtime do.
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}
	if len(cfg.Guard.CIDRs) > 0 {
		// The management-network guard's ClusterNetworkPolicies
		// (podroute/guard), by name: every name the guard can have
		// (guard.Owner.Names), read one by one, applied server-side
		// (create and patch) and deleted when no longer configured. No
		// other ClusterNetworkPolicy can be read, created, changed or
		// deleted; without a guard, none at all.
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{cnp.GroupVersion.Group}, Resources: []string{cnp.Resource.Resource},
			ResourceNames: GuardOwner(namespace).Names(), Verbs: []string{"get", "create", "patch", "delete"}})
	}
	return rules
}

// MetricsReaderRules let a subject read the controller's /metrics (bind a
// Prometheus ServiceAccount to the rendered t1route-metrics-reader).
func MetricsReaderRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}
}

// LeaderElectionRules is what the controller does in its Lease's namespace.
func LeaderElectionRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}
}

// CredentialsRules is the controller's access to the one Secret holding the
// NSX credentials (Secret authentication only). list and watch are
// authorized for it only with a metadata.name field selector, which is how
// t1route watches.
func CredentialsRules(secretName string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{secretName}, Verbs: []string{"get", "list", "watch"}}}
}

// AgentRules is what the node agent does: read its node's podCIDR, watch
// what network policy and Service translation depend on, and publish its
// node's T1RouteAgentInfo.
func AgentRules() []rbacv1.PolicyRule {
	return append([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{"policy.networking.k8s.io"}, Resources: []string{"clusternetworkpolicies"}, Verbs: []string{"list", "watch"}}},
		introspect.AgentRules()...)
}

// ControllerPermissions is every permission the rendered RBAC grants the
// controller for cfg, one access review each: the cluster-wide rules, the
// leader election rules in leaseNamespace (the install's namespace) and,
// with Secret authentication, the credentials Secret. doctor asks the API
// server about each.
func ControllerPermissions(cfg config.Config, leaseNamespace string) []authzv1.ResourceAttributes {
	out := attributes(ControllerClusterRules(cfg, leaseNamespace), "")
	out = append(out, attributes(LeaderElectionRules(), leaseNamespace)...)
	if cfg.Auth.Mode == config.AuthSecret {
		out = append(out, attributes(CredentialsRules(cfg.Auth.SecretName), cfg.Auth.SecretNamespace)...)
	}
	return out
}

// attributes expands rules into one access review per verb, resource and
// resource name, in the rules' order.
func attributes(rules []rbacv1.PolicyRule, namespace string) []authzv1.ResourceAttributes {
	var out []authzv1.ResourceAttributes
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, group := range r.APIGroups {
			for _, res := range r.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				for _, name := range names {
					for _, verb := range r.Verbs {
						out = append(out, authzv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: sub,
							Name: name, Namespace: namespace})
					}
				}
			}
		}
	}
	return out
}
