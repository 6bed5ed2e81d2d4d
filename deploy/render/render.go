// Package render builds the manifests that install t1route for a
// configuration, and the RBAC they grant, which doctor checks against the
// cluster: what the controller may do is written once, here.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/guard"
	"github.com/t1route/t1route/podroute/node/introspect"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
	"github.com/t1route/t1route/podroute/version"
)

// Options are the deployment choices that are not NSX configuration.
type Options struct {
	// Namespace is the install's namespace (default DefaultNamespace), and
	// its identity: the names of its cluster-scoped objects carry it
	// (ClusterScopedName), so two installs in one cluster keep apart.
	Namespace string
	// CreateNamespace says whether the manifests hold the Namespace (true:
	// t1route's own, labeled pod-security privileged and OwnedNamespaceLabel,
	// deleted by the uninstall) or install into an existing one (false:
	// nothing of it is changed; it must admit the agent's privileged pods).
	// nil: true for DefaultNamespace; another namespace must say (Validate),
	// since render cannot see whether it exists and is someone else's.
	CreateNamespace *bool
	// Image is the t1route image (t1route and t1route-cni in
	// /usr/local/bin): a tag or a digest (repo@sha256:..., repo:tag@sha256:...),
	// never :latest; DefaultImage for a release.
	Image string
	// OVSImage is the node image (t1route, t1route-cni and Open vSwitch)
	// for the agent pod's containers; default NodeImage(Image).
	OVSImage string
	// ControllerPort is the controller's metrics and health port (HTTPS).
	// The controller uses host networking, so it is a port on the node;
	// default DefaultControllerPort.
	ControllerPort int32
	// DatapathType is the OVS datapath: "system" (kernel module, the
	// default) or "netdev" (userspace).
	DatapathType string
	// AdoptCloudProviderRoutes runs the controller with
	// --adopt-cloud-provider-routes (migrating from the vSphere cloud provider).
	AdoptCloudProviderRoutes bool
	// Version is t1route's version, named in the header and in every
	// object's app.kubernetes.io/version label; default version.Version.
	Version string
}

// VersionLabel names the t1route version that rendered an object.
const VersionLabel = "app.kubernetes.io/version"

// Defaults and names of what Manifests creates. The names of cluster-scoped
// objects are these for DefaultNamespace, and carry the namespace otherwise
// (ClusterScopedName).
const (
	DefaultNamespace      = "t1route-system"
	ControllerName        = "t1route-controller"
	AgentName             = "t1route-agent"
	ViewName              = "t1route-view"
	MetricsReaderName     = "t1route-metrics-reader"
	AgentOwnNodePolicy    = "t1route-agent-own-node"
	ConfigMapName         = "t1route-config"
	CredentialsName       = "t1route-nsx-credentials"
	DefaultImageRepo      = "ghcr.io/t1route/t1route"
	DefaultControllerPort = 8080
)

// Labels of the rendered objects. InstanceLabel (the install's namespace)
// is on every object of one install, and on nothing shared: the CRDs and
// the Namespace do not carry it, so `kubectl delete -f - -l
// app.kubernetes.io/instance=<namespace>` removes one install and keeps
// the others'. OwnedNamespaceLabel is on a Namespace render created.
const (
	InstanceLabel       = guard.InstanceLabel
	OwnedNamespaceLabel = "t1route.io/created-by"
	OwnedNamespaceValue = "t1route-render"
)

// DatapathTypes are the OVS datapaths the agent supports.
var DatapathTypes = []string{"system", "netdev"}

// ClusterScopedName is the name of an install's cluster-scoped object:
// base for DefaultNamespace (the names of earlier releases, so an upgrade
// updates them in place), base-<namespace> otherwise.
func ClusterScopedName(namespace, base string) string {
	if namespace == "" || namespace == DefaultNamespace {
		return base
	}
	return base + "-" + namespace
}

// GuardOwner names the management guard's ClusterNetworkPolicies of the
// install in namespace, which its controller keeps and its RBAC grants.
func GuardOwner(namespace string) guard.Owner {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return guard.Owner{Prefix: ClusterScopedName(namespace, guard.GuardPolicyPrefix), Instance: namespace}
}

// reservedNamespaces exist in every cluster: never t1route's to create.
var reservedNamespaces = []string{"default", "kube-system", "kube-public", "kube-node-lease"}

// Validate checks the options as render's flags, naming the flag and the
// fix; defaults are applied first.
func (o Options) Validate() error {
	o = o.withDefaults()
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		bad("--namespace %q: %s (a namespace name is a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)",
			o.Namespace, strings.Join(errs, "; "))
	} else if o.CreateNamespace == nil {
		bad("--namespace %s: say whether render creates it (--create-namespace: it must not exist yet; t1route labels it pod-security privileged, "+
			"and the uninstall deletes it) or installs into an existing one (--create-namespace=false: nothing of it changes; it must admit privileged pods, "+
			"and the uninstall keeps it)", o.Namespace)
	} else if *o.CreateNamespace && slices.Contains(reservedNamespaces, o.Namespace) {
		bad("--namespace %s exists in every cluster and is not t1route's to create or delete: add --create-namespace=false (it must admit privileged pods)", o.Namespace)
	}
	if err := checkImage("--image", o.Image); err != nil {
		problems = append(problems, err.Error())
	} else if o.OVSImage == "" {
		if _, err := NodeImage(o.Image); err != nil {
			bad("--image %s has a digest: the node image's differs, so give it too (--ovs-image registry/t1route-node@sha256:...)", o.Image)
		}
	}
	if o.OVSImage != "" {
		if err := checkImage("--ovs-image", o.OVSImage); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if o.ControllerPort < 1 || o.ControllerPort > 65535 {
		bad("--controller-port %d: want 1-65535", o.ControllerPort)
	}
	if !slices.Contains(DatapathTypes, o.DatapathType) {
		bad("--datapath-type %q: use system (kernel module) or netdev (userspace)", o.DatapathType)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Version == "" {
		o.Version = version.Version
	}
	if o.CreateNamespace == nil && o.Namespace == DefaultNamespace {
		o.CreateNamespace = ptr(true)
	}
	if o.ControllerPort == 0 {
		o.ControllerPort = DefaultControllerPort
	}
	if o.DatapathType == "" {
		o.DatapathType = DatapathTypes[0]
	}
	return o
}

// checkImage refuses what is not an image reference, and :latest (given
// or implied): the registry may hold another build at each pull, so nodes
// run different ones and nothing can be rolled back.
func checkImage(flag, ref string) error {
	if ref == "" {
		return fmt.Errorf("%s: required", flag)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("%s %q: %v (want registry/repository:tag or registry/repository@sha256:<digest>)", flag, ref, err)
	}
	repo, _, hasDigest := strings.Cut(ref, "@")
	last := repo[strings.LastIndex(repo, "/")+1:]
	tag, hasTag := "", strings.Contains(last, ":")
	if t, ok := r.(name.Tag); ok {
		tag = t.TagStr()
	}
	switch {
	case hasDigest:
		return nil
	case !hasTag || tag == "latest":
		return fmt.Errorf("%s %s: no :latest (given or implied): the registry may serve another build at each pull; give a version tag or a digest (repository@sha256:...)", flag, ref)
	}
	return nil
}

// DefaultImage is render's image for t1route version: the release's
// image, tagged with it. A development build (dev, a commit, a git
// describe past a tag, -dirty) has no published image: the error says to
// give --image.
func DefaultImage(version string) (string, error) {
	if !releaseVersion.MatchString(version) || describeSuffix.MatchString(version) {
		return "", fmt.Errorf("t1route %s is a development build, not a release, so no published image carries its version: "+
			"give --image (the image you built and pushed, e.g. registry.example/t1route:<tag> or registry.example/t1route@sha256:<digest>)", version)
	}
	return DefaultImageRepo + ":" + version, nil
}

var (
	releaseVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$`)
	describeSuffix = regexp.MustCompile(`-[0-9]+-g[0-9a-f]+$|-dirty$`)
)

// Manifests builds every object for cfg, as one YAML stream. The raw
// settings s give the values exactly as the operator set them, already
// validated by cfg; a local certificate file is rendered as its content.
// Options are checked by Validate.
func Manifests(cfg config.Config, s config.Settings, o Options) ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if o.OVSImage == "" {
		img, err := NodeImage(o.Image)
		if err != nil {
			return nil, err
		}
		o.OVSImage = img
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
	named := func(base string) string { return ClusterScopedName(ns, base) }
	// selector are the workloads' selector labels (immutable: as in earlier
	// releases); every object also carries the install's instance label.
	selector := func(component string) map[string]string {
		return map[string]string{"app.kubernetes.io/name": "t1route", "app.kubernetes.io/component": component}
	}
	labels := func(component string) map[string]string {
		l := selector(component)
		l[InstanceLabel] = ns
		return l
	}
	meta := func(name, component string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels(component)}
	}
	cluster := func(name, component string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Labels: labels(component)}
	}
	var objs []any
	if *o.CreateNamespace {
		// Not InstanceLabel: the uninstall deletes the namespace by
		// OwnedNamespaceLabel, as the cluster shows it, never because a
		// rendered file names it.
		objs = append(objs, &corev1.Namespace{TypeMeta: tm("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
			// The agent needs host networking and NET_ADMIN.
			"pod-security.kubernetes.io/enforce": "privileged", "app.kubernetes.io/name": "t1route", OwnedNamespaceLabel: OwnedNamespaceValue}}})
	}
	objs = append(objs,
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta(ControllerName, "controller")},
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta(AgentName, "agent")},
		&rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: cluster(named(ControllerName), "controller"),
			Rules: ControllerClusterRules(cfg, ns)},
		clusterBinding(named(ControllerName), ControllerName, ns, labels("controller")),
		&rbacv1.Role{TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(ControllerName+"-leader-election", "controller"),
			Rules: LeaderElectionRules()},
		roleBinding(ControllerName+"-leader-election", ns, ControllerName, ns, labels("controller")),
		&rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: cluster(named(AgentName), "agent"),
			Rules: AgentRules()},
		clusterBinding(named(AgentName), AgentName, ns, labels("agent")),
		// Whoever may read the controller's /metrics (Prometheus): bind
		// their ServiceAccount to it.
		&rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: cluster(named(MetricsReaderName), "controller"),
			Rules: MetricsReaderRules()},
	)
	// Introspection: the agents' summaries, readable by every viewer, each
	// agent kept to its own node's (podroute/node/introspect). The CRD is
	// shared by every install: no instance label.
	var crd map[string]any
	if err := yaml.Unmarshal(introspect.CRD(), &crd); err != nil {
		return nil, err
	}
	view := cluster(named(ViewName), "agent")
	for k, v := range introspect.ViewAggregationLabels {
		view.Labels[k] = v
	}
	vap, vapb := introspect.AdmissionPolicy(named(AgentOwnNodePolicy), "system:serviceaccount:"+ns+":"+AgentName)
	vap.Labels[InstanceLabel], vapb.Labels[InstanceLabel] = ns, ns
	objs = append(objs, crd, &rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: view,
		Rules: introspect.ViewRules()}, vap, vapb)
	if cfg.Auth.Mode == config.AuthSecret {
		sns, sname := cfg.Auth.SecretNamespace, cfg.Auth.SecretName
		role := &rbacv1.Role{TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"),
			ObjectMeta: metav1.ObjectMeta{Name: named(ControllerName + "-nsx-credentials"), Namespace: sns, Labels: labels("controller")},
			Rules:      CredentialsRules(sname)}
		objs = append(objs, role, roleBinding(named(ControllerName+"-nsx-credentials"), sns, ControllerName, ns, labels("controller")))
	}
	objs = append(objs, &corev1.ConfigMap{TypeMeta: tm("v1", "ConfigMap"), ObjectMeta: meta(ConfigMapName, "controller"), Data: settings})
	if creds != nil {
		objs = append(objs, &corev1.Secret{TypeMeta: tm("v1", "Secret"), ObjectMeta: meta(CredentialsName, "controller"),
			Type: corev1.SecretTypeOpaque, StringData: creds})
	}
	objs = append(objs, controllerDeployment(o, meta(ControllerName, "controller"), selector("controller"), labels("controller"), creds != nil, settingsHash(settings)),
		agentDaemonSet(o, meta(AgentName, "agent"), selector("agent"), labels("agent")))

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# t1route %s for Tier-1 %s (authentication: %s), namespace %s. Apply: kubectl apply -f -\n", o.Version, cfg.RouterPath, cfg.Auth.Mode, ns)
	// The ClusterNetworkPolicy CRD, as published upstream; the agents
	// enforce ClusterNetworkPolicies once it is served.
	buf.WriteString("---\n")
	buf.Write(cnp.CRD())
	for _, obj := range objs {
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if b, err = cleanYAML(b, o.Version); err != nil {
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
// status, and an empty creationTimestamp. It labels the object, and its pod
// template if it has one, with the version (VersionLabel; never selectors,
// which cannot change: an upgrade must not have to replace the workloads).
func cleanYAML(b []byte, version string) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	setLabel := func(md map[string]any) {
		labels, _ := md["labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
		}
		labels[VersionLabel] = version
		md["labels"] = labels
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
		setLabel(md)
	}
	if spec, ok := m["spec"].(map[string]any); ok {
		if tmpl, ok := spec["template"].(map[string]any); ok {
			md, _ := tmpl["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				tmpl["metadata"] = md
			}
			setLabel(md)
		}
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
// tag (ghcr.io/t1route/t1route:v1 -> ghcr.io/t1route/t1route-node:v1). A
// digest names one image only: the node image's must be given.
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

func clusterBinding(name, sa, ns string, labels map[string]string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name}}
}

// roleBinding binds the Role name in namespace to ServiceAccount sa of saNamespace.
func roleBinding(name, namespace, sa, saNamespace string, labels map[string]string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{TypeMeta: tm("rbac.authorization.k8s.io/v1", "RoleBinding"),
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}, Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: saNamespace}},
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name}}
}
