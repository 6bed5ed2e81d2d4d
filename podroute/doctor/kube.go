package doctor

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/deploy/render"
)

// configuration: every problem is a Fail, and pod routing must be on.
func (c *checker) configuration() bool {
	for _, p := range c.o.Problems {
		c.add(Fail, "configuration", p.String(), "t1route validate-config explains each variable")
	}
	if len(c.o.Problems) > 0 {
		return false
	}
	cfg := c.o.Config
	if !cfg.PodRoutingEnabled {
		c.add(Fail, "configuration", "NSXT_POD_ROUTING_ENABLED is not true: the controller would idle", "set NSXT_POD_ROUTING_ENABLED=true")
		return false
	}
	c.add(Pass, "configuration", fmt.Sprintf("valid; authentication: %s (%s)", cfg.Auth.Mode, cfg.Auth.Why), "")
	return true
}

// kubernetes: reachable; returns the client if it is.
func (c *checker) kubernetes(ctx context.Context) kubernetes.Interface {
	if c.o.KubeErr != nil || c.o.Kube == nil {
		msg := "no Kubernetes client"
		if c.o.KubeErr != nil {
			msg = c.o.KubeErr.Error()
		}
		c.add(Fail, "kubernetes", msg, "give --kubeconfig or run in the cluster")
		return nil
	}
	v, err := c.o.Kube.Discovery().ServerVersion()
	if err != nil {
		c.add(Fail, "kubernetes", err.Error(), "check the kubeconfig and that the API server is reachable")
		return nil
	}
	c.add(Pass, "kubernetes", "reachable, "+v.String(), "")
	return c.o.Kube
}

// cidrs: the pod range must not overlap the service range.
func (c *checker) cidrs(ctx context.Context, kube kubernetes.Interface) {
	var services []netip.Prefix
	source := "--service-cidr"
	if c.o.ServiceCIDRs != "" {
		for _, s := range strings.Split(c.o.ServiceCIDRs, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				c.add(Fail, "service range", fmt.Sprintf("--service-cidr %q: %v", s, err), "give CIDRs like 10.96.0.0/12")
				return
			}
			services = append(services, p.Masked())
		}
	} else if kube != nil {
		source = "the cluster's ServiceCIDRs"
		list, err := kube.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, sc := range list.Items {
				for _, s := range sc.Spec.CIDRs {
					if p, err := netip.ParsePrefix(s); err == nil {
						services = append(services, p.Masked())
					}
				}
			}
		}
	}
	if len(services) == 0 {
		c.add(Warn, "service range", "unknown, so CLUSTER_CIDR's overlap with it is not checked", "give --service-cidr (kube-apiserver's --service-cluster-ip-range)")
		return
	}
	for _, pod := range c.o.Config.ClusterCIDRs {
		for _, svc := range services {
			if pod.Overlaps(svc) {
				c.add(Fail, "service range", fmt.Sprintf("CLUSTER_CIDR %s overlaps the service range %s (from %s)", pod, svc, source),
					"choose a CLUSTER_CIDR outside the service range, matching kube-controller-manager's --cluster-cidr")
				return
			}
		}
	}
	c.add(Pass, "service range", fmt.Sprintf("CLUSTER_CIDR %v does not overlap %v", c.o.Config.ClusterCIDRs, services), "")
}

// rbac: may this identity do all that the rendered RBAC lets the controller do?
func (c *checker) rbac(ctx context.Context, kube kubernetes.Interface) {
	needs := render.ControllerPermissions(c.o.Config, c.o.LeaseNamespace)
	var missing []string
	for _, ra := range needs {
		r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
		if err != nil {
			c.add(Fail, "rbac", err.Error(), "")
			return
		}
		if !r.Status.Allowed {
			what := ra.Verb + " " + ra.Resource
			if ra.Subresource != "" {
				what += "/" + ra.Subresource
			}
			if ra.Name != "" {
				what += " " + ra.Name
			}
			if ra.Namespace != "" {
				what += " in " + ra.Namespace
			}
			missing = append(missing, what)
		}
	}
	if len(missing) > 0 {
		c.add(Fail, "rbac", "not allowed: "+strings.Join(missing, "; "), "apply the RBAC from t1route render (or deploy/base)")
		return
	}
	c.add(Pass, "rbac", fmt.Sprintf("all %d permissions the controller uses", len(needs)), "")
}
