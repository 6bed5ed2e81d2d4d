package podroute

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

// testNode is node i (name n<i>, two digits): podCIDR 100.96.<i>.0/24 via
// InternalIP 198.51.100.<i+1>.
func testNode(i int) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%02d", i)},
		Spec:   corev1.NodeSpec{PodCIDRs: []string{fmt.Sprintf("100.96.%d.0/24", i)}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("198.51.100.%d", i+1)}}}}
}

// fakeNodes is a fake cluster holding testNode(0) to testNode(n-1).
func fakeNodes(n int) *fake.Clientset {
	kube := fake.NewSimpleClientset()
	for i := range n {
		if _, err := kube.CoreV1().Nodes().Create(context.Background(), testNode(i), metav1.CreateOptions{}); err != nil {
			panic(err)
		}
	}
	return kube
}

// newTestController is a controller of kube's nodes on client, its node
// informer started and synced; the informer stops when the test ends.
func newTestController(t *testing.T, cfg Config, kube kubernetes.Interface, client RouteClient, events record.EventRecorder) *Controller {
	t.Helper()
	factory := informers.NewSharedInformerFactory(kube, 0)
	c, err := New(cfg, kube, factory.Core().V1().Nodes(), client, events, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	return c
}

// drainConditions patches every node queued for a condition, as the
// condition workers do, until none is queued (retries not included: they
// wait out their backoff).
func drainConditions(ctx context.Context, c *Controller) {
	for c.condQueue.Len() > 0 {
		c.processNextCondition(ctx)
	}
}
