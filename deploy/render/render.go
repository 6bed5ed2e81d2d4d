// Package render builds the manifests that install t1route for a
// configuration, and the RBAC they grant, which doctor checks against the
// cluster: what the controller may do is written once, here.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/introspect"
	"github.com/t1route/t1route/podroute/policy/cnp"
)

// Options are the deployment choices that are not NSX configuration.
type Options struct {
	Namespace string // default DefaultNamespace
	Image     string // t1route image: t1route and t1route-cni in /usr/local/bin
	// OVSImage is the node image (t1route, t1route-cni and Open vSwitch)
	// for the agent pod's containers; default NodeImage(Image).
	OVSImage string
	// ControllerPort is the controller's metrics and health port. The
	// controller uses host networking, so it is a port on the node; default
	// DefaultControllerPort.
	ControllerPort int32
	// DatapathType is the OVS datapath: "system" (kernel module, the
	// default) or "netdev" (userspace).
	DatapathType string
	// AdoptCloudProviderRoutes runs the controller with
	// --adopt-cloud-provider-routes (migrating from the vSphere cloud provider).
	AdoptCloudProviderRoutes bool
	Version                  string // t1route's version, named in the header
}

// Defaults and names of what Manifests creates.
const (
	DefaultNamespace = "t1route-system"
	ControllerName   = "t1route-controller"
	AgentName        = "t1route-agent"
	ConfigMapName    = "t1route-config"
	CredentialsName  = "t1route-nsx-credentials"

	DefaultControllerPort = 8080
)

// DatapathTypes are the OVS datapaths the agent supports.
var DatapathTypes = []string{"system", "netdev"}

// Manifests builds every object for cfg, as one YAML stream. The raw
// settings s give the values exactly as the operator set them, already
// validated by cfg; a local certificate file is rendered as its content.
func Manifests(cfg config.Config, s config.Settings, o Options) ([]byte, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.OVSImage == "" {
		img, err := NodeImage(o.Image)
		if err != nil {
			return nil, err
		}
		o.OVSImage = img
	}
	if o.ControllerPort == 0 {
		o.ControllerPort = DefaultControllerPort
	}
	if o.ControllerPort < 1 || o.ControllerPort > 65535 {
		return nil, fmt.Errorf("controller port %d: want 1-65535", o.ControllerPort)
	}
	if o.DatapathType == "" {
		o.DatapathType = DatapathTypes[0]
	}
	settings := map[string]string{}
	creds := map[string]string{}
	for _, v := range config.Variables() {
		val, _, ok := s.Lookup(v)
		switch {
		case !ok:
		case v.InlinedAs != "":
			// The file is on this machine, not on the nodes: render its content.
			b, err := os.ReadFile(strings.TrimSpace(val))
			if err != nil {
				return nil, err
			}
			creds[v.InlinedAs] = string(b)
		case v.Credential:
			creds[v.Env] = val
		default:
			settings[v.Env] = val
		}
	}
	if cfg.Auth.Mode == config.AuthSecret {
		creds = nil // the operator's Secret holds them
	}

	ns := o.Namespace
	labels := func(component string) map[string]string {
		return map[string]string{"app.kubernetes.io/name": "t1route", "app.kubernetes.io/component": component}
	}
	meta := func(name, component string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(component)}
	}
	cluster := func(name, component string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: labels(component)}
	}
	objs := []any{
		&corev1.Namespace{TypeMeta: tm("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
			// The agent needs host networking and NET_ADMIN.
			"pod-security.kubernetes.io/enforce": "privileged", "app.kubernetes.io/name": "t1route"}}},
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta(ControllerName, "controller")},
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta(AgentName, "agent")},
		&rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: cluster(ControllerName, "controller"),
			Rules: ControllerClusterRules()},
		binding(true, ControllerName, ControllerName, ns, "controller"),
		&rbacv1.Role{TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(ControllerName+"-leader-election", "controller"),
			Rules: LeaderElectionRules()},
		binding(false, ControllerName+"-leader-election", ControllerName, ns, "controller"),
		&rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: cluster(AgentName, "agent"),
			Rules: AgentRules()},
		binding(true, AgentName, AgentName, ns, "agent"),
	}
	// Introspection: the agents' summaries, readable by every viewer, each
	// agent kept to its own node's (podroute/introspect).
	var crd map[string]any
	if err := yaml.Unmarshal(introspect.CRD(), &crd); err != nil {
		return nil, err
	}
	view := cluster("t1route-view", "agent")
	for k, v := range introspect.ViewAggregationLabels {
		view.Labels[k] = v
	}
	vap, vapb := introspect.AdmissionPolicy(AgentName+"-own-node", "system:serviceaccount:"+ns+":"+AgentName)
	objs = append(objs, crd, &rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: view,
		Rules: introspect.ViewRules()}, vap, vapb)
	if cfg.Auth.Mode == config.AuthSecret {
		sns, sname := cfg.Auth.SecretNamespace, cfg.Auth.SecretName
		role := &rbacv1.Role{TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"),
			ObjectMeta: metav1.ObjectMeta{Name: ControllerName + "-nsx-credentials", Namespace: sns, Labels: labels("controller")},
			Rules:      CredentialsRules(sname)}
		rb := binding(false, ControllerName+"-nsx-credentials", ControllerName, ns, "controller").(*rbacv1.RoleBinding)
		rb.Namespace = sns
		objs = append(objs, role, rb)
	}
	objs = append(objs, &corev1.ConfigMap{TypeMeta: tm("v1", "ConfigMap"), ObjectMeta: meta(ConfigMapName, "controller"), Data: settings})
	if creds != nil {
		objs = append(objs, &corev1.Secret{TypeMeta: tm("v1", "Secret"), ObjectMeta: meta(CredentialsName, "controller"),
			Type: corev1.SecretTypeOpaque, StringData: creds})
	}
	objs = append(objs, controllerDeployment(o, meta(ControllerName, "controller"), labels("controller"), creds != nil, settingsHash(settings)),
		agentDaemonSet(o, meta(AgentName, "agent"), labels("agent")))

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# t1route %s for Tier-1 %s (authentication: %s). Apply: kubectl apply -f -\n", o.Version, cfg.RouterPath, cfg.Auth.Mode)
	// The ClusterNetworkPolicy CRD, as published upstream; the agents
	// enforce ClusterNetworkPolicies once it is served.
	buf.WriteString("---\n")
	buf.Write(cnp.CRD())
	for _, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if b, err = cleanYAML(b); err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// ConfigHashAnnotation on the controller's pod template carries a hash of
// its settings (the ConfigMap; credentials are not hashed: a digest of a weak
// password can be brute-forced), so that applying changed settings rolls
// the controller instead of leaving it on the old environment.
const ConfigHashAnnotation = "t1route.io/config-sha256"

func settingsHash(settings map[string]string) string {
	keys := slices.Sorted(maps.Keys(settings))
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%q\n", k, settings[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cleanYAML drops what typed objects always carry but a manifest must not:
// status, and an empty creationTimestamp.
func cleanYAML(b []byte) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	dropEmpty(m)
	return yaml.Marshal(m)
}

// dropEmpty removes the empty creationTimestamp and resources of pod
// templates, recursively.
func dropEmpty(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if x == nil && k == "creationTimestamp" {
				delete(t, k)
				continue
			}
			if mm, ok := x.(map[string]any); ok && len(mm) == 0 && (k == "resources" || k == "metadata") {
				delete(t, k)
				continue
			}
			dropEmpty(x)
		}
	case []any:
		for _, x := range t {
			dropEmpty(x)
		}
	}
}

// NodeImage is the node image's reference for the t1route image reference,
// as make image names them: the repository with "-node" appended, the same
// tag (ghcr.io/t1route/t1route:v1 -> ghcr.io/t1route/t1route-node:v1).
func NodeImage(image string) (string, error) {
	r, err := name.ParseReference(image)
	if err != nil {
		return "", fmt.Errorf("image %q: %w (want registry/repository:tag)", image, err)
	}
	t, ok := r.(name.Tag)
	if !ok {
		return "", fmt.Errorf("image %q has a digest, not a tag: give the node image with --ovs-image", image)
	}
	return t.Context().Name() + "-node:" + t.TagStr(), nil
}

func tm(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func binding(clusterWide bool, name, sa, ns, component string) any {
	subjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
	l := map[string]string{"app.kubernetes.io/name": "t1route", "app.kubernetes.io/component": component}
	if clusterWide {
		return &rbacv1.ClusterRoleBinding{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name}}
	}
	return &rbacv1.RoleBinding{TypeMeta: tm("rbac.authorization.k8s.io/v1", "RoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l}, Subjects: subjects,
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}}
}
