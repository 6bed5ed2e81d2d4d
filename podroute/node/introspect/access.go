package introspect

import (
	"fmt"

	admv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Who may do what, in one place for `t1route render`:
//
//   - the agent writes its own node's T1RouteAgentInfo (AgentRules), and an
//     admission policy keeps each agent to its own node (AdmissionPolicy);
//   - everyone who may view the cluster may read the summaries (ViewRules,
//     aggregated into the built-in view, edit and admin roles);
//   - live introspection from outside a node is pods/exec into the agent's
//     pod, which operators grant themselves (docs/introspection.md): nothing
//     listens on the node's network.

// AgentRules are the API permissions the agent needs to publish its summary
// (server-side apply creates with create and updates with patch).
func AgentRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{AgentInfoResource.Group}, Resources: []string{AgentInfoResource.Resource},
		Verbs: []string{"get", "create", "patch"}}}
}

// ViewRules read the published summaries.
func ViewRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{AgentInfoResource.Group}, Resources: []string{AgentInfoResource.Resource},
		Verbs: []string{"get", "list", "watch"}}}
}

// ViewAggregationLabels put a ClusterRole's rules into the built-in view
// role (and so edit and admin).
var ViewAggregationLabels = map[string]string{"rbac.authorization.k8s.io/aggregate-to-view": "true"}

// NodeNameExtra is the user-info extra the API server sets for a
// ServiceAccount token bound to a pod: the pod's node (Kubernetes 1.30+).
const NodeNameExtra = "authentication.kubernetes.io/node-name"

// AdmissionPolicy restricts the agent's ServiceAccount (user, e.g.
// system:serviceaccount:t1route-system:t1route-agent) to the
// T1RouteAgentInfo named after the node its pod runs on, as the
// NodeRestriction admission plugin does for kubelets: RBAC cannot say
// "only your own node's object", and without this a compromised agent could
// report every other node healthy. Needs Kubernetes 1.30 or later
// (ValidatingAdmissionPolicy, and node names in pod-bound tokens).
func AdmissionPolicy(name, user string) (*admv1.ValidatingAdmissionPolicy, *admv1.ValidatingAdmissionPolicyBinding) {
	fail := admv1.Fail
	labels := map[string]string{"app.kubernetes.io/name": "t1route", "app.kubernetes.io/component": "agent"}
	p := &admv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: admv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admv1.MatchResources{ResourceRules: []admv1.NamedRuleWithOperations{{
				RuleWithOperations: admv1.RuleWithOperations{
					Operations: []admv1.OperationType{admv1.Create, admv1.Update, admv1.Delete},
					Rule: admv1.Rule{APIGroups: []string{AgentInfoResource.Group}, APIVersions: []string{"*"},
						Resources: []string{AgentInfoResource.Resource}},
				}}}},
			MatchConditions: []admv1.MatchCondition{{Name: "the-agent", Expression: fmt.Sprintf("request.userInfo.username == %q", user)}},
			Validations: []admv1.Validation{{
				Expression: fmt.Sprintf("%q in request.userInfo.extra && request.userInfo.extra[%q].exists(n, n == request.name)",
					NodeNameExtra, NodeNameExtra),
				MessageExpression: fmt.Sprintf(`"the t1route agent may write only its own node's T1RouteAgentInfo, not " + request.name + `+
					`" (its token names node " + (%q in request.userInfo.extra ? request.userInfo.extra[%q].join(",") : "none") + ")"`,
					NodeNameExtra, NodeNameExtra),
				Reason: ptrTo(metav1.StatusReasonForbidden),
			}},
		},
	}
	b := &admv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       admv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name, ValidationActions: []admv1.ValidationAction{admv1.Deny}},
	}
	return p, b
}

func ptrTo[T any](v T) *T { return &v }
