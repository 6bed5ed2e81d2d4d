//go:build linux

package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/t1route/t1route/deploy/image/builder"
)

// The cluster's DNS, as on every real cluster: CoreDNS (the version
// integration/cluster/coredns/go.mod pins) as the kube-dns Service in
// kube-system at a fixed ClusterIP that every kubelet's clusterDNS names.
const (
	DNSClusterIP   = "100.64.0.10"
	ClusterDomain  = "cluster.local"
	DNSName        = "coredns"
	CoreDNSVersion = "v1.13.1"
	// DNSAppLabel is the label kube-dns pods carry (k8s-app=kube-dns), as
	// kubeadm's and every distribution's do: NetworkPolicies that allow DNS
	// select it.
	DNSAppLabel = "kube-dns"
)

// corefile serves cluster.local from the API (Services, endpoints and pod
// records) and the reverse zones of the cluster. Nothing is forwarded: the
// cluster has no upstream resolver, so other names get no answer.
const corefile = `.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes ` + ClusterDomain + ` in-addr.arpa ip6.arpa {
        pods insecure
        ttl 30
    }
    cache 30
    loadbalance
}
`

// buildCoreDNS builds CoreDNS from its own module (integration/cluster/coredns)
// into the cluster's bin directory.
func (c *Cluster) buildCoreDNS(ctx context.Context) error {
	return builder.GoBuild(ctx, filepath.Join(c.cfg.Root, "integration", "cluster", "coredns"), c.binDir, nil, ".")
}

// pushCoreDNS pushes CoreDNS's image (the static binary on the images' base
// files) to the registry and returns its reference.
func (c *Cluster) pushCoreDNS(ctx context.Context) (string, error) {
	epoch := time.Unix(0, 0)
	files := append(builder.BaseFiles(), builder.File{Path: "/coredns", Mode: 0o755, Source: filepath.Join(c.binDir, "coredns")})
	l, err := builder.Layer(files, epoch)
	if err != nil {
		return "", err
	}
	img, err := builder.BuildImage(builder.Spec{Layers: []builder.NamedLayer{{Layer: l, CreatedBy: "coredns " + CoreDNSVersion}},
		Entrypoint: []string{"/coredns"}, Created: epoch})
	if err != nil {
		return "", err
	}
	ref := c.Registry + "/coredns:" + CoreDNSVersion
	return ref, builder.Push(ctx, ref, img)
}

// deployDNS creates CoreDNS's objects: its RBAC, Corefile, a Deployment of
// one replica per node (its pods start once a network plugin makes the
// nodes Ready) and the kube-dns Service.
func (c *Cluster) deployDNS(ctx context.Context, image string) error {
	ns := metav1.NamespaceSystem
	labels := map[string]string{"k8s-app": DNSAppLabel}
	k := c.Client
	create := func(what string, err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster DNS: %s: %w", what, err)
		}
		return nil
	}
	if err := create("ServiceAccount", func() error {
		_, err := k.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: DNSName}}, metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	if err := create("ClusterRole", func() error {
		_, err := k.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
				{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			}}, metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	if err := create("ClusterRoleBinding", func() error {
		_, err := k.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:coredns"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: DNSName, Namespace: ns}}}, metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	if err := create("ConfigMap", func() error {
		_, err := k.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: DNSName},
			Data: map[string]string{"Corefile": corefile}}, metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	replicas := int32(len(c.Nodes))
	probe := func(path string, port int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port)}},
			PeriodSeconds: 2, TimeoutSeconds: 2}
	}
	if err := create("Deployment", func() error {
		_, err := k.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: DNSName, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{
						ServiceAccountName: DNSName,
						PriorityClassName:  "system-cluster-critical",
						// Not itself: it answers from the API, and forwards nothing.
						DNSPolicy:   corev1.DNSDefault,
						Tolerations: []corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists}},
						// One replica on each node: every pod has a DNS server on its
						// own node and one on another (both paths of a Service).
						Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
							RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
								LabelSelector: &metav1.LabelSelector{MatchLabels: labels}, TopologyKey: corev1.LabelHostname}}}},
						Containers: []corev1.Container{{
							Name: DNSName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent,
							Args: []string{"-conf", "/etc/coredns/Corefile"},
							Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
								{Name: "dns-tcp", ContainerPort: 53, Protocol: corev1.ProtocolTCP},
								{Name: "metrics", ContainerPort: 9153, Protocol: corev1.ProtocolTCP}},
							VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
							ReadinessProbe: probe("/ready", 8181),
							LivenessProbe:  probe("/health", 8080),
						}},
						Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: DNSName}}}}},
					},
				},
			},
		}, metav1.CreateOptions{})
		return err
	}()); err != nil {
		return err
	}
	return create("Service", func() error {
		_, err := k.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Labels: map[string]string{"k8s-app": DNSAppLabel, "kubernetes.io/name": "CoreDNS"}},
			Spec: corev1.ServiceSpec{ClusterIP: DNSClusterIP, Selector: labels, Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt32(53), Protocol: corev1.ProtocolTCP},
				{Name: "metrics", Port: 9153, TargetPort: intstr.FromInt32(9153), Protocol: corev1.ProtocolTCP},
			}},
		}, metav1.CreateOptions{})
		return err
	}())
}

// WaitDNS waits until CoreDNS runs a Ready replica on every node (once a
// network plugin runs its pods).
func (c *Cluster) WaitDNS(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, "cluster DNS (CoreDNS) Ready on every node", func() (bool, error) {
		d, err := c.Client.AppsV1().Deployments(metav1.NamespaceSystem).Get(ctx, DNSName, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == int32(len(c.Nodes)), nil
	})
}
