package proxy

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// scaleObjects makes services Services (one TCP port, 80 -> 8080) in 50
// namespaces, each with one EndpointSlice of endpoints pods spread over
// 100 nodes, all in the test ranges.
func scaleObjects(services, endpoints int) []k8sruntime.Object {
	var objs []k8sruntime.Object
	pod := 0
	for i := range services {
		ns, name := fmt.Sprintf("ns-%02d", i%50), fmt.Sprintf("svc-%05d", i)
		ip := netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)})
		objs = append(objs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
			Spec: corev1.ServiceSpec{ClusterIP: ip.String(), ClusterIPs: []string{ip.String()}, Selector: map[string]string{"app": name},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080)}}}})
		proto, port, pname := corev1.ProtocolTCP, int32(8080), "http"
		sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: &pname, Protocol: &proto, Port: &port}}}
		for range endpoints {
			node := pod % 100
			a := netip.AddrFrom4([4]byte{100, byte(96 + node/64), byte(node%64)<<2 | byte(pod/100/250), byte(1 + pod/100%250)})
			nodeName, ready := fmt.Sprintf("node-%03d", node), true
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{a.String()}, NodeName: &nodeName,
				Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: fmt.Sprintf("%s-%d", name, pod)}})
			pod++
		}
		objs = append(objs, sl)
	}
	return objs
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkServiceScale prints, for 1,000 Services x 10 endpoints and
// 5,000 x 2: the agent's informer memory (trimmed caches and maps), the
// time to compute the service table and to render the node's whole flow
// table, and the flows the service stage holds. The real replace on OVS is
// integration/e2e's BenchmarkServiceFlows.
func BenchmarkServiceScale(b *testing.B) {
	for _, size := range [][2]int{{1000, 10}, {5000, 2}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			objs := scaleObjects(size[0], size[1])
			kube := fake.NewClientset(objs...)
			var svcs []*Service
			var sls []*Slice
			for _, o := range objs {
				switch x := o.(type) {
				case *corev1.Service:
					svcs = append(svcs, ServiceFromAPI(x))
				case *discoveryv1.EndpointSlice:
					sls = append(sls, SliceFromAPI(x))
				}
			}
			objs = nil
			before := heapInUse()
			w := NewWatcher(kube, "node-000", time.Millisecond, zap.NewNop())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			start := time.Now()
			go w.Run(ctx) //nolint:errcheck
			for w.Table() == nil {
				time.Sleep(5 * time.Millisecond)
			}
			synced := time.Since(start)
			mem := heapInUse() - before

			b.ResetTimer()
			var table *pipeline.ServiceTable
			var tableDur, renderDur time.Duration
			var out pipeline.Output
			gw := pipeline.Gateway{OFPort: 1, MAC: "0a:00:00:00:00:01", IPs: []netip.Addr{netip.MustParseAddr("100.96.0.1")}}
			var pods []pipeline.PodPort
			for i := range 30 {
				pods = append(pods, pipeline.PodPort{Name: fmt.Sprintf("p%d", i), Key: fmt.Sprintf("x/p%d", i), OFPort: 2 + i,
					MAC: fmt.Sprintf("0a:00:00:00:01:%02x", i), IPs: []netip.Addr{netip.AddrFrom4([4]byte{100, 96, 0, byte(2 + i)})}})
			}
			for range b.N {
				t0 := time.Now()
				table = Table(svcs, sls, "node-000")
				t1 := time.Now()
				out = pipeline.Render(pipeline.Input{Gateway: gw, Pods: pods, Services: table})
				tableDur, renderDur = t1.Sub(t0), time.Since(t1)
			}
			b.StopTimer()
			st := out.Services
			fmt.Printf("services %d x %d endpoints: informers synced and table published in %s; informer memory %.1f MB\n",
				size[0], size[1], synced.Round(time.Millisecond), float64(mem)/1e6)
			fmt.Printf("services %d x %d endpoints: table %s, whole flow table rendered in %s: %d flows, %d of them the service stage's "+
				"(%.1f per service port: 1 + endpoints + one DNAT per distinct endpoint)\n",
				size[0], size[1], tableDur.Round(100*time.Microsecond), renderDur.Round(100*time.Microsecond), len(out.Flows), st.Flows,
				float64(st.Flows)/float64(st.Ports))
			b.ReportMetric(float64(mem)/1e6, "informer-MB")
			b.ReportMetric(float64(st.Flows), "service-flows")
			runtime.KeepAlive(kube)
		})
	}
}
