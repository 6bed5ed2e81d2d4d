package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config"
)

// renderOptions are the deployment choices that are not NSX configuration.
type renderOptions struct {
	namespace, image, ovsImage, datapathType string
	adopt                                    bool
}

// Names of what render creates.
const (
	controllerName  = "t1route-controller"
	agentName       = "t1route-agent"
	configMapName   = "t1route-config"
	credentialsName = "t1route-nsx-credentials"
)

func newRenderCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var o renderOptions
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print ready-to-apply manifests for the NSXT_* configuration (kubectl apply -f -)",
		Long: `render reads the same NSXT_* variables (or flags) as validate-config, validates them
the same way (exit 2 with one line per problem), and prints the manifests that
install t1route with that configuration: namespace, service accounts,
least-privilege RBAC, the controller Deployment (2 replicas, leader election),
the node agent DaemonSet with Open vSwitch and the CNI install, a ConfigMap for
the settings and a Secret for the NSX credentials. With credentials from a
Secret (NSXT_SECRET_NAMESPACE/NAME) no credentials are rendered, and the
controller may read that one Secret only.

  t1route render | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, s, err := loadConfig(cmd, getenv, stderr)
			if err != nil {
				return err
			}
			if !cfg.PodRoutingEnabled {
				fmt.Fprintln(stderr, "NSXT_POD_ROUTING_ENABLED: is not true; render needs a complete configuration (the controller would idle)")
				return exitError{2}
			}
			if o.datapathType != "system" && o.datapathType != "netdev" {
				fmt.Fprintf(stderr, "--datapath-type %q: use system (kernel module) or netdev (userspace)\n", o.datapathType)
				return exitError{2}
			}
			out, err := renderManifests(cfg, s, o)
			if err != nil {
				return err
			}
			if cfg.Auth.Mode != config.AuthSecret {
				fmt.Fprintf(stderr, "note: the output holds the NSX credentials (Secret %s/%s): pipe it to kubectl apply, do not keep it in a file\n", o.namespace, credentialsName)
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	config.AddFlags(fl)
	fl.StringVar(&o.namespace, "namespace", "t1route-system", "namespace to install into")
	fl.StringVar(&o.image, "image", "ghcr.io/t1route/t1route:"+imageTag(), "t1route image (t1route and t1route-cni in /usr/local/bin)")
	fl.StringVar(&o.ovsImage, "ovs-image", "", "Open vSwitch image for the agent's ovs container (default: --image, which includes openvswitch-switch)")
	fl.StringVar(&o.datapathType, "datapath-type", "system", "OVS datapath: system (kernel module) or netdev (userspace)")
	fl.BoolVar(&o.adopt, "adopt-cloud-provider-routes", false, "run the controller with --adopt-cloud-provider-routes (migrating from the vSphere cloud provider)")
	return cmd
}

func imageTag() string {
	if version == "dev" {
		return "latest"
	}
	return version
}

// renderManifests builds every object for cfg. The raw settings give the
// values exactly as the operator set them, already validated by cfg.
func renderManifests(cfg config.Config, s config.Settings, o renderOptions) ([]byte, error) {
	if o.ovsImage == "" {
		o.ovsImage = o.image
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

	ns := o.namespace
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
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta(controllerName, "controller")},
		&corev1.ServiceAccount{TypeMeta: tm("v1", "ServiceAccount"), ObjectMeta: meta(agentName, "agent")},
		&rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: cluster(controllerName, "controller"),
			Rules: controllerClusterRules()},
		binding(true, controllerName, controllerName, ns, "controller"),
		&rbacv1.Role{TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta(controllerName+"-leader-election", "controller"),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}}}},
		binding(false, controllerName+"-leader-election", controllerName, ns, "controller"),
		&rbacv1.ClusterRole{TypeMeta: tm("rbac.authorization.k8s.io/v1", "ClusterRole"), ObjectMeta: cluster(agentName, "agent"),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}}},
		binding(true, agentName, agentName, ns, "agent"),
	}
	if cfg.Auth.Mode == config.AuthSecret {
		sns, sname := cfg.Auth.SecretNamespace, cfg.Auth.SecretName
		role := &rbacv1.Role{TypeMeta: tm("rbac.authorization.k8s.io/v1", "Role"),
			ObjectMeta: metav1.ObjectMeta{Name: controllerName + "-nsx-credentials", Namespace: sns, Labels: labels("controller")},
			// One named Secret; list and watch are authorized for it only
			// with a metadata.name field selector, which is how t1route watches.
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{sname}, Verbs: []string{"get", "list", "watch"}}}}
		rb := binding(false, controllerName+"-nsx-credentials", controllerName, ns, "controller").(*rbacv1.RoleBinding)
		rb.Namespace = sns
		objs = append(objs, role, rb)
	}
	objs = append(objs, &corev1.ConfigMap{TypeMeta: tm("v1", "ConfigMap"), ObjectMeta: meta(configMapName, "controller"), Data: settings})
	if creds != nil {
		objs = append(objs, &corev1.Secret{TypeMeta: tm("v1", "Secret"), ObjectMeta: meta(credentialsName, "controller"),
			Type: corev1.SecretTypeOpaque, StringData: creds})
	}
	objs = append(objs, controllerDeployment(o, meta(controllerName, "controller"), labels("controller"), creds != nil),
		agentDaemonSet(o, meta(agentName, "agent"), labels("agent")))

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# t1route %s for Tier-1 %s (authentication: %s). Apply: kubectl apply -f -\n", version, cfg.RouterPath, cfg.Auth.Mode)
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

func tm(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// controllerClusterRules is everything the controller does cluster-wide.
func controllerClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		// The cluster's identity is the kube-system namespace's UID.
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, ResourceNames: []string{"kube-system"}, Verbs: []string{"get"}},
	}
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

func ptr[T any](v T) *T { return &v }

func controllerDeployment(o renderOptions, meta metav1.ObjectMeta, labels map[string]string, withCreds bool) *appsv1.Deployment {
	envFrom := []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: configMapName}}}}
	if withCreds {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: credentialsName}}})
	}
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("metrics")}},
			PeriodSeconds: 10, FailureThreshold: 3}
	}
	return &appsv1.Deployment{TypeMeta: tm("apps/v1", "Deployment"), ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: controllerName,
					PriorityClassName:  "system-cluster-critical",
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					// Spread the two replicas so that losing a node loses at most one.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname",
						WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: labels}}},
					Tolerations: []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
					Containers: []corev1.Container{{
						Name:           "controller",
						Image:          o.image,
						Args:           []string{"controller", "--leader-elect=true", "--metrics-bind-address=:8080"},
						Env:            []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}},
						EnvFrom:        envFrom,
						Ports:          []corev1.ContainerPort{{Name: "metrics", ContainerPort: 8080}},
						LivenessProbe:  probe("/healthz"),
						ReadinessProbe: probe("/readyz"),
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
							// 10,000 nodes peak near 250 MB (make bench); room for 4x that.
							Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
						},
						SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr(true), AllowPrivilegeEscalation: ptr(false),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
}

func controllerArgs(o renderOptions) []string {
	args := []string{"controller", "--leader-elect=true", "--metrics-bind-address=:8080"}
	if o.adopt {
		args = append(args, "--adopt-cloud-provider-routes")
	}
	return args
}

func agentDaemonSet(o renderOptions, meta metav1.ObjectMeta, labels map[string]string) *appsv1.DaemonSet {
	hostPath := func(name, path string, t corev1.HostPathType) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &t}}}
	}
	mount := func(name, path string, ro bool) corev1.VolumeMount {
		return corev1.VolumeMount{Name: name, MountPath: path, ReadOnly: ro}
	}
	caps := func(add ...corev1.Capability) *corev1.SecurityContext {
		return &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: add, Drop: []corev1.Capability{"ALL"}}}
	}
	return &appsv1.DaemonSet{TypeMeta: tm("apps/v1", "DaemonSet"), ObjectMeta: meta,
		Spec: appsv1.DaemonSetSpec{
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: agentName,
					HostNetwork:        true,
					DNSPolicy:          corev1.DNSClusterFirstWithHostNet,
					PriorityClassName:  "system-node-critical",
					// Every node, including NotReady ones: the agent is what makes them Ready.
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					InitContainers: []corev1.Container{{
						// The only privileged step: /proc/sys is read-only to unprivileged containers.
						Name: "ip-forward", Image: o.image, Command: []string{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
						SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)},
					}},
					Containers: []corev1.Container{
						{
							Name: "ovs", Image: o.ovsImage,
							Command: []string{"sh", "-c", "/usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-monitor && exec tail -F /var/log/openvswitch/ovs-vswitchd.log"},
							// The kernel datapath: netlink to the openvswitch module (and loading it), real-time threads, locked memory.
							SecurityContext: caps("NET_ADMIN", "SYS_NICE", "SYS_MODULE", "IPC_LOCK"),
							VolumeMounts: []corev1.VolumeMount{mount("ovs-run", "/var/run/openvswitch", false), mount("ovs-db", "/etc/openvswitch", false),
								mount("ovs-log", "/var/log/openvswitch", false), mount("modules", "/lib/modules", true)},
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
						},
						{
							Name: "agent", Image: o.image,
							Args: []string{"agent", "--datapath-type=" + o.datapathType, "--cni-plugin=/usr/local/bin/t1route-cni",
								"--health-bind-address=127.0.0.1:8081"},
							Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
							// Addresses and links on the host, offloads on the gateway.
							SecurityContext: caps("NET_ADMIN"),
							LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/healthz", Port: intstr.FromInt32(8081)}},
								PeriodSeconds: 10, FailureThreshold: 3},
							ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/readyz", Port: intstr.FromInt32(8081)}},
								PeriodSeconds: 5},
							VolumeMounts: []corev1.VolumeMount{mount("ovs-run", "/var/run/openvswitch", false), mount("cni-bin", "/opt/cni/bin", false),
								mount("cni-conf", "/etc/cni/net.d", false)},
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
						},
					},
					Volumes: []corev1.Volume{
						hostPath("ovs-run", "/var/run/openvswitch", corev1.HostPathDirectoryOrCreate),
						hostPath("ovs-db", "/var/lib/t1route/openvswitch", corev1.HostPathDirectoryOrCreate),
						hostPath("ovs-log", "/var/log/openvswitch", corev1.HostPathDirectoryOrCreate),
						hostPath("modules", "/lib/modules", corev1.HostPathDirectory),
						hostPath("cni-bin", "/opt/cni/bin", corev1.HostPathDirectoryOrCreate),
						hostPath("cni-conf", "/etc/cni/net.d", corev1.HostPathDirectoryOrCreate),
					},
				},
			},
		},
	}
}
