package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The test binary doubles as the plugin: a container runtime execs it with
// CNI_* variables and the network configuration on stdin.
func TestMain(m *testing.M) {
	if os.Getenv("T1ROUTE_CNI_AS_PLUGIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runPlugin(t *testing.T, command, stdin string) (stdout string, exitCode int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"T1ROUTE_CNI_AS_PLUGIN=1", "CNI_COMMAND=" + command, "CNI_CONTAINERID=c1",
		"CNI_NETNS=/var/run/netns/does-not-exist", "CNI_IFNAME=eth0", "CNI_PATH=/opt/cni/bin"}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	return string(out), 0
}

func TestVersion(t *testing.T) {
	out, code := runPlugin(t, "VERSION", `{"cniVersion":"1.0.0"}`)
	if code != 0 || !strings.Contains(out, `"1.0.0"`) || !strings.Contains(out, `"0.4.0"`) {
		t.Fatalf("VERSION: exit %d, %s", code, out)
	}
}

// Bad input gets CNI error JSON naming what is wrong, and a non-zero exit.
func TestErrorsAreCNIErrorJSON(t *testing.T) {
	cases := []struct {
		name, stdin, want string
		code              uint
	}{
		{"not JSON", `{"cniVersion":"1.0.0",`, "", 0},
		{"no bridge", `{"cniVersion":"1.0.0","name":"t1route","type":"t1route-cni","ovsRunDir":"/x","ipam":{"type":"host-local"}}`, "lacks bridge", 7},
		{"other ipam", `{"cniVersion":"1.0.0","name":"t1route","type":"t1route-cni","bridge":"br-int","ovsRunDir":"/x","ipam":{"type":"dhcp"}}`, `ipam type "dhcp" is not supported`, 7},
		{"missing netns", `{"cniVersion":"1.0.0","name":"t1route","type":"t1route-cni","bridge":"br-int","ovsRunDir":"/x","ipam":{"type":"host-local","ranges":[[{"subnet":"100.96.1.0/24"}]]}}`, "pod network namespace", 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runPlugin(t, "ADD", tc.stdin)
			if code == 0 {
				t.Fatalf("exit 0 on bad input: %s", out)
			}
			var e struct {
				CNIVersion string `json:"cniVersion"`
				Code       uint   `json:"code"`
				Msg        string `json:"msg"`
			}
			if err := json.Unmarshal([]byte(out), &e); err != nil || e.Msg == "" {
				t.Fatalf("stdout is not CNI error JSON: %q (%v)", out, err)
			}
			if tc.code != 0 && e.Code != tc.code {
				t.Errorf("code %d, want %d (%s)", e.Code, tc.code, e.Msg)
			}
			if !strings.Contains(e.Msg, tc.want) {
				t.Errorf("msg %q does not say %q", e.Msg, tc.want)
			}
		})
	}
}
