//go:build linux

package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestParseSandboxTimings(t *testing.T) {
	const id = "4b2e1c0f"
	log := strings.Join([]string{
		`time="2026-11-30T14:00:00Z" level=info msg="a text line is passed over"`,
		`{"level":"info","msg":"RunPodSandbox for \u0026PodSandboxMetadata{Name:bench-1,Uid:u1,Namespace:default,Attempt:0,}","time":"2026-11-30T14:00:01.000000000Z"}`,
		`{"level":"debug","msg":"begin cni setup","podsandboxid":"` + id + `","time":"2026-11-30T14:00:01.200000000Z"}`,
		`{"level":"debug","msg":"cni result: {\"Interfaces\":{}}","podsandboxid":"` + id + `","time":"2026-11-30T14:00:01.275000000Z"}`,
		`{"level":"info","msg":"RunPodSandbox for \u0026PodSandboxMetadata{Name:bench-1,Uid:u1,Namespace:default,Attempt:0,} returns sandbox id \"` + id + `\"","time":"2026-11-30T14:00:01.400000000Z"}`,
		// A sandbox that failed: no "returns" line, so no timing.
		`{"level":"info","msg":"RunPodSandbox for \u0026PodSandboxMetadata{Name:broken,Uid:u2,Namespace:kube-system,Attempt:0,}","time":"2026-11-30T14:00:02Z"}`,
		// Without debug level: the sandbox is timed, its CNI ADD is not.
		`{"level":"info","msg":"RunPodSandbox for \u0026PodSandboxMetadata{Name:quiet,Uid:u3,Namespace:t1route-system,Attempt:1,}","time":"2026-11-30T14:00:03Z"}`,
		`{"level":"info","msg":"RunPodSandbox for \u0026PodSandboxMetadata{Name:quiet,Uid:u3,Namespace:t1route-system,Attempt:1,} returns sandbox id \"77aa\"","time":"2026-11-30T14:00:03.5Z"}`,
		`{"level":"info","msg":"no newline at the end","time":"2026-11-30T14:00:04Z"}`,
	}, "\n")
	got, err := parseSandboxTimings(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	want := []SandboxTiming{
		{Pod: "default/bench-1", Sandbox: 400 * time.Millisecond, CNIAdd: 75 * time.Millisecond},
		{Pod: "t1route-system/quiet", Sandbox: 500 * time.Millisecond},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sandbox %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
