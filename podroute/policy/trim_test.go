package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestTrimPod(t *testing.T) {
	full := benchPod(7)
	full.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "x"}, {Name: "sidecar", Ports: []corev1.ContainerPort{{Name: "admin", ContainerPort: 9901}}}}
	obj, err := TrimPod(full)
	if err != nil {
		t.Fatal(err)
	}
	trimmed := obj.(*corev1.Pod)
	// What policy reads is unchanged by trimming.
	if a, b := PodFromAPI(full), PodFromAPI(trimmed); !reflect.DeepEqual(a, b) {
		t.Fatalf("trimming changed what policy sees:\n%+v\n%+v", a, b)
	}
	if trimmed.ManagedFields != nil || trimmed.Annotations != nil || trimmed.Spec.Containers[0].Image != "" || len(trimmed.Status.ContainerStatuses) != 0 {
		t.Fatalf("kept more than policy needs: %+v", trimmed)
	}
	again, _ := TrimPod(trimmed)
	if !reflect.DeepEqual(again, trimmed) {
		t.Fatal("TrimPod is not idempotent")
	}
	if tomb, _ := TrimPod("tombstone"); tomb != "tombstone" {
		t.Fatal("a non-Pod was changed")
	}
}

// The informer cache's share of memory at 10,000 pods, printed for the
// README (it is measured, not asserted).
func TestTrimPodMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("measures memory of 10,000 pods")
	}
	before := heapInUse()
	kept := make([]any, benchPods)
	for i := range kept {
		kept[i], _ = TrimPod(benchPod(i))
	}
	after := heapInUse()
	runtime.KeepAlive(kept)
	t.Logf("informer cache of %d trimmed Pods: %.1f MB (%d B a pod)", benchPods, float64(after-before)/1e6, (after-before)/benchPods)
}

func TestRuleSetFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "rules.json")
	if rs, err := ReadRuleSet(path); rs != nil || err != nil {
		t.Fatalf("missing file: %v %v", rs, err)
	}
	c := fixture()
	c.SetNetworkPolicy(netpol("x", "p", fixtureSpecWithEverything()))
	rs := Compile(c, "n1")
	if err := WriteRuleSet(path, rs); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRuleSet(path)
	if err != nil || !reflect.DeepEqual(back, rs) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, rs)
	}
	os.WriteFile(path, []byte("{not json"), 0o644)
	if _, err := ReadRuleSet(path); err == nil {
		t.Fatal("a broken file was read")
	}
}

func TestParseFlowStats(t *testing.T) {
	dump := fmt.Sprintf(`OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x7470000000000000, duration=1.2s, table=1, n_packets=99, n_bytes=9000, priority=100,ip actions=ct(table=2,zone=7)
 cookie=%#x, duration=1.2s, table=4, n_packets=7, n_bytes=600, priority=100,in_port=11 actions=drop
 cookie=%#x, duration=1.2s, table=7, n_packets=3, n_bytes=200, priority=100,ip,nw_dst=100.96.1.2 actions=drop
 cookie=%#x, duration=1.2s, table=7, n_packets=2, n_bytes=200, priority=100,ipv6,ipv6_dst=2001:db8::2 actions=drop
 cookie=0x5, duration=1.2s, table=0, n_packets=1000, n_bytes=9000, priority=0 actions=drop
`, CookieTag|1, CookieTag|2, CookieTag|2)
	got := ParseFlowStats(dump)
	want := map[uint64]uint64{CookieTag | 1: 7, CookieTag | 2: 5}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
