package render

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func ptr[T any](v T) *T { return &v }

// runtimeDefault is the container runtime's default seccomp profile, for
// every pod (the runtime does not apply it to a privileged container).
func runtimeDefault() *corev1.SeccompProfile {
	return &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
}

// controllerDeployment is the controller's Deployment; selector is its
// (immutable) selector, podLabels its pods' labels (a superset).
func controllerDeployment(o Options, meta metav1.ObjectMeta, selector, podLabels map[string]string, withCreds bool, configHash string) *appsv1.Deployment {
	envFrom := []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName}}}}
	if withCreds {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: CredentialsName}}})
	}
	// HTTPS: the port also serves /metrics to authorized tokens only; the
	// kubelet does not verify the serving certificate of a probe.
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("metrics"),
			Scheme: corev1.URISchemeHTTPS}}, PeriodSeconds: 10, FailureThreshold: 3}
	}
	return &appsv1.Deployment{TypeMeta: tm("apps/v1", "Deployment"), ObjectMeta: meta,
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			// One replica per node and a host port: a surge pod has no node to
			// go to while both replicas run (on a cluster of two schedulable
			// nodes the default 25%/25% never finished a rollout). Replace one
			// at a time instead: the other keeps or takes the Lease.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: ptr(intstr.FromInt32(0)), MaxUnavailable: ptr(intstr.FromInt32(1))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{ConfigHashAnnotation: configHash}},
				Spec: corev1.PodSpec{
					ServiceAccountName: ControllerName,
					PriorityClassName:  "system-cluster-critical",
					SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(65532)), SeccompProfile: runtimeDefault()},
					// Host networking: a pod network cannot reach the API server
					// before this controller has created the routes to it.
					HostNetwork: true,
					DNSPolicy:   corev1.DNSClusterFirstWithHostNet,
					// The port is a node port: one replica per node, so that two
					// never collide and losing a node loses at most one.
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
							TopologyKey: "kubernetes.io/hostname", LabelSelector: &metav1.LabelSelector{MatchLabels: selector}}}}},
					Tolerations: []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
					Containers: []corev1.Container{{
						Name:           "controller",
						Image:          o.Image,
						Args:           controllerArgs(o),
						Env:            []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}},
						EnvFrom:        envFrom,
						Ports:          []corev1.ContainerPort{{Name: "metrics", ContainerPort: o.ControllerPort, HostPort: o.ControllerPort}},
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

func controllerArgs(o Options) []string {
	args := []string{"controller", "--leader-elect=true", fmt.Sprintf("--metrics-bind-address=:%d", o.ControllerPort)}
	if o.AdoptCloudProviderRoutes {
		args = append(args, "--adopt-cloud-provider-routes")
	}
	return args
}

func hostPath(name, path string, t corev1.HostPathType) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &t}}}
}

func mount(name, path string, ro bool) corev1.VolumeMount {
	return corev1.VolumeMount{Name: name, MountPath: path, ReadOnly: ro}
}

// caps is a root container's security context: only the capabilities
// add, no privilege escalation (no setuid binary needs it), and a read-only
// root filesystem (what it writes is in its volume mounts).
func caps(add ...corev1.Capability) *corev1.SecurityContext {
	return &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: add, Drop: []corev1.Capability{"ALL"}},
		AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true)}
}

// ovsContainer runs Open vSwitch from the node image (start-ovs). The
// kernel datapath needs the openvswitch module (SYS_MODULE to load it from
// /lib/modules); the userspace one needs /dev/net/tun instead. It writes
// only its run directory (sockets, pid files), its database and its logs,
// each a hostPath mount, and temporary files in /tmp (an emptyDir): the
// root filesystem is read-only.
func ovsContainer(o Options) corev1.Container {
	c := corev1.Container{
		Name: "ovs", Image: o.OVSImage,
		Command: []string{"/usr/local/bin/start-ovs"},
		Env:     []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
		// Netlink to the datapath, raw sockets for its ports, real-time
		// threads and locked memory for ovs-vswitchd.
		SecurityContext: caps("NET_ADMIN", "NET_RAW", "SYS_NICE", "IPC_LOCK"),
		// ovsdb-server makes temporary files in /tmp (tmpfile(3)): it
		// refused to start on the read-only root without ovs-tmp.
		VolumeMounts: []corev1.VolumeMount{mount("ovs-run", "/var/run/openvswitch", false), mount("ovs-db", "/etc/openvswitch", false),
			mount("ovs-log", "/var/log/openvswitch", false), mount("ovs-tmp", "/tmp", false)},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
	}
	switch o.DatapathType {
	case "netdev":
		c.VolumeMounts = append(c.VolumeMounts, mount("tun", "/dev/net/tun", false))
	default:
		c.SecurityContext.Capabilities.Add = append(c.SecurityContext.Capabilities.Add, "SYS_MODULE")
		c.VolumeMounts = append(c.VolumeMounts, mount("modules", "/lib/modules", true))
	}
	return c
}

func agentVolumes(o Options) []corev1.Volume {
	v := []corev1.Volume{
		{Name: "introspect", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: "ovs-tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr(resource.MustParse("64Mi"))}}},
		hostPath("ovs-run", "/var/run/openvswitch", corev1.HostPathDirectoryOrCreate),
		hostPath("ovs-db", "/var/lib/t1route/openvswitch", corev1.HostPathDirectoryOrCreate),
		hostPath("ovs-log", "/var/log/openvswitch", corev1.HostPathDirectoryOrCreate),
		hostPath("cni-bin", "/opt/cni/bin", corev1.HostPathDirectoryOrCreate),
		hostPath("cni-conf", "/etc/cni/net.d", corev1.HostPathDirectoryOrCreate),
	}
	if o.DatapathType == "netdev" {
		return append(v, hostPath("tun", "/dev/net/tun", corev1.HostPathCharDev))
	}
	return append(v, hostPath("modules", "/lib/modules", corev1.HostPathDirectory))
}

// agentDaemonSet is the agent's DaemonSet; selector is its (immutable)
// selector, podLabels its pods' labels (a superset).
func agentDaemonSet(o Options, meta metav1.ObjectMeta, selector, podLabels map[string]string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{TypeMeta: tm("apps/v1", "DaemonSet"), ObjectMeta: meta,
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			// Surge: a node's new agent pod starts beside the old one, stands
			// by, and takes over the moment the old one stops (the new ovs
			// container copies the old switch's flows meanwhile), so an
			// upgrade is a sub-second handover rather than the seconds between
			// one pod's end and the next one's start.
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxSurge: ptr(intstr.FromInt32(1)), MaxUnavailable: ptr(intstr.FromInt32(0))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					SecurityContext:    &corev1.PodSecurityContext{SeccompProfile: runtimeDefault()},
					ServiceAccountName: AgentName,
					HostNetwork:        true,
					DNSPolicy:          corev1.DNSClusterFirstWithHostNet,
					PriorityClassName:  "system-node-critical",
					// Every node, including NotReady ones: the agent is what makes them Ready.
					Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
					InitContainers: []corev1.Container{{
						// The only privileged step: /proc/sys is read-only to unprivileged
						// containers (and the runtime applies no seccomp profile to it).
						Name: "ip-forward", Image: o.OVSImage, Command: []string{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
						SecurityContext: &corev1.SecurityContext{Privileged: ptr(true), ReadOnlyRootFilesystem: ptr(true)},
					}},
					Containers: []corev1.Container{
						ovsContainer(o),
						{
							// The node image: the agent runs ovs-ofctl, the only flow writer.
							Name: "agent", Image: o.OVSImage,
							Args: []string{"agent", "--datapath-type=" + o.DatapathType, "--cni-plugin=/usr/local/bin/t1route-cni",
								"--health-bind-address=127.0.0.1:8081"},
							Env: []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
								// The management guard, enforced from the agent's start (before
								// the policy enforcer has seen the guard's policies or the pods).
								{Name: "NSXT_MANAGEMENT_CIDR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
									LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName}, Key: "NSXT_MANAGEMENT_CIDR", Optional: ptr(true)}}}},
							// Addresses and links on the host, offloads on the gateway.
							SecurityContext: caps("NET_ADMIN"),
							LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/healthz", Port: intstr.FromInt32(8081)}},
								PeriodSeconds: 10, FailureThreshold: 3},
							ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Path: "/readyz", Port: intstr.FromInt32(8081)}},
								PeriodSeconds: 5},
							// What it writes, each a mount (the root filesystem is
							// read-only): the OVS run directory, which also holds its
							// flow-sync socket (t1route-cni.sock, which the CNI plugin
							// calls), the policy rules and the flow lock; introspect, the
							// socket `t1route get` asks, private to this container's users;
							// the CNI plugin and its configuration on the host.
							VolumeMounts: []corev1.VolumeMount{mount("introspect", "/var/run/t1route", false), mount("ovs-run", "/var/run/openvswitch", false), mount("cni-bin", "/opt/cni/bin", false),
								mount("cni-conf", "/etc/cni/net.d", false)},
							Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
						},
					},
					Volumes: agentVolumes(o),
				},
			},
		},
	}
}
