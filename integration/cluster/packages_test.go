//go:build integration && e2e

package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/t1route/t1route/deploy/packaging"
	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/guard"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// TestPackages proves the two ways operators install add-ons: the Helm
// chart and the Carvel package give exactly render's objects for several
// configurations, refuse bad values naming the field, and install for real
// on a cluster of two real nodes: helm install -> routable -> helm upgrade
// with new values (controller and agents rolled) -> routable -> helm
// uninstall (the ClusterNetworkPolicy CRD stays); then the package's bundle
// pulled with imgpkg, rendered by ytt, resolved by kbld to make image's
// digests, kapp deploy -> routable -> kapp delete (the CRD stays). Every
// install ends with `t1route check` passing from the external host. It
// ends with `packages: N passed, M failed`.
//
// CLUSTER_IMAGES names make image's OCI layout (with the bundle); HELM,
// YTT, KBLD, KAPP and IMGPKG the tools (make e2e-packages passes them).
func TestPackages(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := &steps{t: t}
	defer func() { fmt.Printf("packages: %d passed, %d failed\n", s.pass, s.fail) }()
	tools := findPackageTools(t)
	layoutDir := os.Getenv("CLUSTER_IMAGES")
	if layoutDir == "" {
		t.Fatal("CLUSTER_IMAGES is not set: run make e2e-packages (make image writes the images and the bundle to .cache/image/oci)")
	}
	start := time.Now()
	templateSteps(s, tools, buildT1route(t))
	refusalSteps(s, tools)
	bundleStep(s, layoutDir)
	t.Logf("template, schema and bundle checks: %.1f s", time.Since(start).Seconds())

	s.fail++ // until the cluster is up
	c := startCluster(t, Config{ImageLayout: layoutDir}, "node-a-kubelet", "node-b-kubelet")
	s.fail--
	p := &packageRun{t: t, c: c, tools: tools, helmEnv: append(helmEnv(t), "KUBECONFIG="+c.Kubeconfig), layout: layoutDir}
	values := p.clusterValues()
	values["image"] = c.Images["t1route"]
	chart := filepath.Join(repoRoot(t), packaging.ChartDir)

	if !s.step("helm install: controller and agents Ready, nodes Ready", func(t *testing.T) {
		took := time.Now()
		if out, err := p.helm("install", "t1route", chart, "--namespace", "kube-system", "-f", writeValues(t, values)); err != nil {
			t.Fatalf("%v\n%s", err, out)
		} else if !strings.Contains(string(out), "t1route check") {
			t.Errorf("NOTES do not say to run t1route check:\n%s", out)
		}
		p.waitInstalled(ctx, t)
		t.Logf("installed and Ready in %.1f s", time.Since(took).Seconds())
	}) {
		return
	}
	s.step("after helm install: a pod on each node reachable from the external host through the Tier-1's routes; t1route check passes", func(t *testing.T) {
		p.routable(ctx, t, "helm")
	})
	s.step("helm upgrade with new values rolls the controller (settings) and the agents (node image); still routable, t1route check passes", func(t *testing.T) {
		before := p.podNames(ctx, t)
		hash := p.configHash(ctx, t)
		up := clone(values)
		up["config"].(map[string]any)["nodeStatusQPS"] = 50
		up["nodeImage"] = p.nodeImageByDigest(t)
		took := time.Now()
		if out, err := p.helm("upgrade", "t1route", chart, "--namespace", "kube-system", "-f", writeValues(t, up)); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if err := waitFor(ctx, 3*time.Minute, "every controller and agent pod replaced", func() (bool, error) {
			now := p.podNames(ctx, t)
			if len(now) != len(before) {
				return false, nil
			}
			for n := range now {
				if before[n] {
					return false, nil
				}
			}
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		p.waitInstalled(ctx, t)
		if h := p.configHash(ctx, t); h == hash {
			t.Errorf("the controller's %s did not change with the settings (%s)", render.ConfigHashAnnotation, h)
		}
		t.Logf("upgrade rolled %d pods in %.1f s", len(before), time.Since(took).Seconds())
		p.routable(ctx, t, "helm-upgraded")
	})
	s.step("helm uninstall removes t1route's objects; the ClusterNetworkPolicy CRD stays (deploy/README.md, Uninstalling)", func(t *testing.T) {
		if out, err := p.helm("uninstall", "t1route", "--namespace", "kube-system", "--wait", "--timeout", "3m"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		p.uninstalled(ctx, t)
	})

	var resolved string
	s.step("imgpkg pulls the bundle from the registry; ytt and kbld resolve every image to make image's digests", func(t *testing.T) {
		resolved = p.carvelResolve(ctx, t)
	})
	if resolved == "" {
		s.fail += 3
		return
	}
	deployed := s.step("kapp deploy of the package: controller and agents Ready; routable; t1route check passes", func(t *testing.T) {
		took := time.Now()
		if out, err := p.kapp("deploy", "-a", "t1route", "-f", resolved, "-y"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		p.waitInstalled(ctx, t)
		t.Logf("kapp deploy and Ready in %.1f s", time.Since(took).Seconds())
		p.routable(ctx, t, "kapp")
	})
	s.step("kapp delete removes t1route's objects; the ClusterNetworkPolicy CRD stays", func(t *testing.T) {
		if !deployed {
			t.Fatal("kapp deployed nothing to delete")
		}
		if out, err := p.kapp("delete", "-a", "t1route", "-y"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		p.uninstalled(ctx, t)
	})
}

type packageRun struct {
	t       *testing.T
	c       *Cluster
	tools   packageTools
	helmEnv []string
	layout  string
}

func (p *packageRun) helm(args ...string) ([]byte, error) {
	return runCombined(p.helmEnv, p.tools.helm, args...)
}

func (p *packageRun) kapp(args ...string) ([]byte, error) {
	return runCombined(append(os.Environ(), "KAPP_KUBECONFIG="+p.c.Kubeconfig), p.tools.kapp,
		append(args, "--namespace", "default", "--kubeconfig", p.c.Kubeconfig)...)
}

func runCombined(env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return out, nil
}

// clusterValues are the cluster's nsx.env as chart values (every variable
// through the value standing for it), on the userspace datapath.
func (p *packageRun) clusterValues() map[string]any {
	env, err := exportLines(p.c.NSXEnv)
	if err != nil {
		p.t.Fatal(err)
	}
	values := map[string]any{"datapathType": "netdev", "config": map[string]any{}, "credentials": map[string]any{}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		found := false
		for _, val := range packaging.Values() {
			if val.Env == k {
				var x any = v
				if val.Type == "boolean" {
					x = v == "true"
				}
				values[val.Path[0]].(map[string]any)[val.Path[1]] = x
				found = true
			}
		}
		if !found {
			p.t.Fatalf("nsx.env sets %s, which no chart value stands for", k)
		}
	}
	return values
}

func clone(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if mm, ok := v.(map[string]any); ok {
			v = clone(mm)
		}
		out[k] = v
	}
	return out
}

// nodeImageByDigest is the node image in the cluster's registry by digest.
func (p *packageRun) nodeImageByDigest(t *testing.T) string {
	ref, err := name.ParseReference(p.c.Images["t1route-node"])
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	return ref.Context().Name() + "@" + d.Digest.String()
}

func (p *packageRun) waitInstalled(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := waitController(ctx, p.c); err != nil {
		t.Fatal(err)
	}
	if err := waitAgents(ctx, p.c); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 2*time.Minute, "the controller Deployment and agent DaemonSet rolled out", func() (bool, error) {
		d, err := p.c.Client.AppsV1().Deployments(render.DefaultNamespace).Get(ctx, render.ControllerName, metav1.GetOptions{})
		if err != nil || d.Status.ObservedGeneration != d.Generation || d.Status.UpdatedReplicas != 2 || d.Status.Replicas != 2 || d.Status.ReadyReplicas != 2 {
			return false, nil
		}
		ds, err := p.c.Client.AppsV1().DaemonSets(render.DefaultNamespace).Get(ctx, render.AgentName, metav1.GetOptions{})
		return err == nil && ds.Status.ObservedGeneration == ds.Generation && ds.Status.UpdatedNumberScheduled == int32(len(p.c.Nodes)) &&
			ds.Status.NumberReady == int32(len(p.c.Nodes)), nil
	}); err != nil {
		t.Fatal(err)
	}
}

// podNames are the controller's and agents' running pods.
func (p *packageRun) podNames(ctx context.Context, t *testing.T) map[string]bool {
	list, err := p.c.Client.CoreV1().Pods(render.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=t1route"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, pod := range list.Items {
		if pod.DeletionTimestamp == nil {
			out[pod.Name] = true
		}
	}
	return out
}

func (p *packageRun) configHash(ctx context.Context, t *testing.T) string {
	d, err := p.c.Client.AppsV1().Deployments(render.DefaultNamespace).Get(ctx, render.ControllerName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Annotations[render.ConfigHashAnnotation]
}

// routable runs an echo pod on each node and checks what users rely on:
// each pod has an address of its node's podCIDR, the Tier-1 routes both
// podCIDRs to their nodes, the external host reaches each pod (which sees
// the external host's own address), and t1route check passes from the
// external host, probing both pods. The pods are deleted after.
func (p *packageRun) routable(ctx context.Context, t *testing.T, tag string) {
	t.Helper()
	c := p.c
	var pods []*corev1.Pod
	defer func() {
		for _, n := range c.Nodes {
			c.Client.CoreV1().Pods("default").Delete(ctx, "echo-"+tag+"-"+n.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}) //nolint:errcheck
		}
		waitFor(ctx, time.Minute, "echo pods gone", func() (bool, error) { //nolint:errcheck
			for _, n := range c.Nodes {
				if _, err := c.Client.CoreV1().Pods("default").Get(ctx, "echo-"+tag+"-"+n.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					return false, nil
				}
			}
			return true, nil
		})
	}()
	for _, n := range c.Nodes {
		pod, err := runEcho(ctx, c, n.Name, "echo-"+tag+"-"+n.Name)
		if err != nil {
			t.Fatal(err)
		}
		node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ip, err := netip.ParseAddr(pod.Status.PodIP); err != nil || !netip.MustParsePrefix(node.Spec.PodCIDR).Contains(ip) {
			t.Errorf("%s on %s has IP %q, not in its podCIDR %s", pod.Name, n.Name, pod.Status.PodIP, node.Spec.PodCIDR)
		}
		pods = append(pods, pod)
	}
	var routes string
	if err := waitFor(ctx, time.Minute, "routes on the Tier-1", func() (bool, error) {
		o, _ := exec.CommandContext(ctx, "ip", "-n", c.RouterNS, "route").CombinedOutput()
		routes = string(o)
		for _, n := range c.Nodes {
			node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || !strings.Contains(routes, node.Spec.PodCIDR+" via "+n.IP) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("%v:\n%s", err, routes)
	}
	for _, pod := range pods {
		var out []byte
		if err := waitFor(ctx, 20*time.Second, "external host -> "+pod.Name, func() (bool, error) {
			out, _ = exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, "curl", "-s", "-m", "2", "http://"+pod.Status.PodIP+":8080/").CombinedOutput()
			return echoed(string(out), pod.Name, ExternalIP), nil
		}); err != nil {
			t.Errorf("%v: last answer %q", err, out)
		}
	}
	env, err := exportLines(c.NSXEnv)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"netns", "exec", c.ExternalNS, filepath.Join(c.binDir, "t1route"), "check", "--kubeconfig", c.InternalKubeconfig}
	for _, pod := range pods {
		args = append(args, "--probe", pod.Status.PodIP)
	}
	check := exec.CommandContext(ctx, "ip", args...)
	check.Env = append(os.Environ(), env...)
	out, err := check.CombinedOutput()
	if err != nil || strings.Contains(string(out), "FAIL") {
		t.Errorf("t1route check: %v\n%s", err, out)
	}
	for _, pod := range pods {
		if !strings.Contains(string(out), pod.Status.PodIP) {
			t.Errorf("t1route check did not probe %s:\n%s", pod.Status.PodIP, out)
		}
	}
}

// uninstalled checks what an uninstall leaves, as deploy/README.md says:
// t1route's namespace, cluster roles and own CRD gone, the upstream
// ClusterNetworkPolicy CRD kept. The guard's ClusterNetworkPolicies (the
// controller's, not the install's) are then deleted as the README says.
func (p *packageRun) uninstalled(ctx context.Context, t *testing.T) {
	t.Helper()
	c := p.c
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(rc)
	crds := dyn.Resource(crdResource)
	if err := waitFor(ctx, 2*time.Minute, "t1route's namespace, ClusterRoles and T1RouteAgentInfo CRD gone", func() (bool, error) {
		_, e1 := c.Client.CoreV1().Namespaces().Get(ctx, render.DefaultNamespace, metav1.GetOptions{})
		_, e2 := c.Client.RbacV1().ClusterRoles().Get(ctx, render.ControllerName, metav1.GetOptions{})
		_, e3 := crds.Get(ctx, "t1routeagentinfos.t1route.io", metav1.GetOptions{})
		return apierrors.IsNotFound(e1) && apierrors.IsNotFound(e2) && apierrors.IsNotFound(e3), nil
	}); err != nil {
		t.Error(err)
	}
	if _, err := crds.Get(ctx, cnp.Resource.GroupResource().String(), metav1.GetOptions{}); err != nil {
		t.Errorf("the ClusterNetworkPolicy CRD went with the uninstall: %v", err)
	}
	if err := dyn.Resource(cnp.Resource).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: guard.Selector.String()}); err != nil {
		t.Errorf("deleting the guard's ClusterNetworkPolicies: %v", err)
	}
	// The README's last step: the routes go (so that the next install must
	// make them again).
	env, err := exportLines(c.NSXEnv)
	if err != nil {
		t.Fatal(err)
	}
	gc := exec.CommandContext(ctx, "ip", "netns", "exec", c.ExternalNS, filepath.Join(c.binDir, "t1route"), "gc", "--cluster", ClusterName,
		"--kubeconfig", c.InternalKubeconfig, "--force", "--yes")
	gc.Env = append(os.Environ(), env...)
	if out, err := gc.CombinedOutput(); err != nil {
		t.Errorf("t1route gc: %v\n%s", err, out)
	}
	var routes string
	if err := waitFor(ctx, 30*time.Second, "the pod routes gone from the Tier-1", func() (bool, error) {
		o, _ := exec.CommandContext(ctx, "ip", "-n", c.RouterNS, "route").CombinedOutput()
		routes = string(o)
		for _, n := range c.Nodes {
			node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || strings.Contains(routes, node.Spec.PodCIDR+" via ") {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Errorf("%v:\n%s", err, routes)
	}
}

// carvelResolve relocates the bundle's images next to it in the cluster's
// registry (as imgpkg copy does), pulls the bundle with imgpkg, renders
// it with ytt and the cluster's values, and resolves the images with kbld
// and the bundle's images.yml; it checks every image is make image's by
// digest, and returns the file of resolved manifests.
func (p *packageRun) carvelResolve(ctx context.Context, t *testing.T) string {
	t.Helper()
	c := p.c
	bundle := c.Images["t1route-package"]
	if bundle == "" {
		t.Fatalf("make image's layout holds no t1route-package bundle: %v", c.Images)
	}
	bref, err := name.ParseReference(bundle)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(p.layout)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, d := range m.Manifests {
		ref := d.Annotations["org.opencontainers.image.ref.name"]
		repo := ref[:strings.LastIndex(ref, ":")]
		repo = repo[strings.LastIndex(repo, "/")+1:]
		if repo == "t1route-package" {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		// imgpkg copy puts a bundle's images in the bundle's repository.
		to := bref.Context().Digest(d.Digest.String())
		if err := remote.Write(to, img); err != nil {
			t.Fatal(err)
		}
		digests[d.Digest.String()] = repo
	}
	// The resolved manifests outlive this subtest (kapp deploys them next).
	dir := p.t.TempDir()
	pulled := filepath.Join(dir, "bundle")
	if out, err := runCombined(os.Environ(), p.tools.imgpkg, "pull", "-b", bundle, "-o", pulled, "--registry-insecure"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	values := p.clusterValues()
	ytt := exec.CommandContext(ctx, p.tools.ytt, "-f", filepath.Join(pulled, "config"), "--data-values-file", writeValues(t, values))
	rendered, err := ytt.Output()
	if err != nil {
		t.Fatalf("ytt: %v", err)
	}
	kbld := exec.CommandContext(ctx, p.tools.kbld, "-f", "-", "-f", filepath.Join(pulled, ".imgpkg", "images.yml"))
	kbld.Stdin = strings.NewReader(string(rendered))
	var stderr strings.Builder
	kbld.Stderr = &stderr
	resolved, err := kbld.Output()
	if err != nil {
		t.Fatalf("kbld: %v\n%s", err, stderr.String())
	}
	objs, err := packaging.SplitObjects(resolved)
	if err != nil {
		t.Fatal(err)
	}
	images := 0
	for _, o := range objs {
		if o["kind"] != "Deployment" && o["kind"] != "DaemonSet" {
			continue
		}
		spec := o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		for _, list := range []string{"initContainers", "containers"} {
			cs, _ := spec[list].([]any)
			for _, x := range cs {
				img := x.(map[string]any)["image"].(string)
				images++
				at := strings.LastIndex(img, "@")
				if at < 0 || !strings.HasPrefix(img, bref.Context().Name()+"@") || digests[img[at+1:]] == "" {
					t.Errorf("%s %s: image %s is not one of make image's, by digest, relocated with the bundle (%s)", o["kind"], x.(map[string]any)["name"], img, bref.Context().Name())
				}
			}
		}
	}
	if images == 0 {
		t.Fatalf("no images in the resolved manifests:\n%s", resolved)
	}
	path := filepath.Join(dir, "resolved.yaml")
	if err := os.WriteFile(path, resolved, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d container images resolved to %v", images, digests)
	return path
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
