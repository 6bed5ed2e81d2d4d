package packaging

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestGeneratedFilesAreCurrent is the drift check: the committed chart and
// package are exactly what deploy/render gives now. When render changes,
// `make packages` regenerates them.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	diff, err := Diff(repoRoot(t), files)
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) > 0 {
		t.Errorf("deploy/helm/t1route and deploy/carvel differ from what deploy/render gives now: run make packages\n  %s", strings.Join(diff, "\n  "))
	}
}

func TestValueNames(t *testing.T) {
	for env, want := range map[string]string{
		"NSXT_MANAGER_HOST": "managerHost", "CLUSTER_CIDR": "clusterCIDR", "NSXT_ROOT_CA_DATA_B64": "rootCADataB64",
		"NSXT_VMC_AUTH_HOST": "vmcAuthHost", "T1ROUTE_NODE_STATUS_QPS": "nodeStatusQPS", "NSXT_ALLOW_UNVERIFIED_SSL": "allowUnverifiedSSL",
		"NSXT_CLIENT_CERT_KEY_DATA": "clientCertKeyData",
	} {
		if got := valueName(env); got != want {
			t.Errorf("valueName(%s) = %s, want %s", env, got, want)
		}
	}
	seen := map[string]string{}
	for _, v := range Values() {
		if prev, ok := seen[v.Key()]; ok {
			t.Errorf("%s and %s both map to %s", prev, v.Env, v.Key())
		}
		seen[v.Key()] = v.Env
	}
}

func TestCondition(t *testing.T) {
	// dims: auth (4 values), datapath (2).
	dims := []int{0, 1}
	cases := []struct {
		combos    [][]string
		helm, ytt string
	}{
		{[][]string{{"kubernetes-secret", "system"}, {"kubernetes-secret", "netdev"}}, `(eq $auth "kubernetes-secret")`, `auth == "kubernetes-secret"`},
		{[][]string{{"username-password", "netdev"}, {"vmc-token", "netdev"}},
			`(and (has $auth (list "username-password" "vmc-token")) (eq $datapath "netdev"))`,
			`(auth in ["username-password", "vmc-token"]) and (datapath == "netdev")`},
		{[][]string{{"username-password", "netdev"}, {"vmc-token", "system"}},
			`(or (and (eq $auth "username-password") (eq $datapath "netdev")) (and (eq $auth "vmc-token") (eq $datapath "system")))`,
			`((auth == "username-password") and (datapath == "netdev")) or ((auth == "vmc-token") and (datapath == "system"))`},
	}
	for _, c := range cases {
		if got := condition(helmSyntax, dims, c.combos); got != c.helm {
			t.Errorf("helm %v:\n got %s\nwant %s", c.combos, got, c.helm)
		}
		if got := condition(yttSyntax, dims, c.combos); got != c.ytt {
			t.Errorf("ytt %v:\n got %s\nwant %s", c.combos, got, c.ytt)
		}
	}
	all := [][]string{}
	for _, a := range dimensions[0].values {
		for _, d := range dimensions[1].values {
			all = append(all, []string{a, d})
		}
	}
	if got := condition(helmSyntax, dims, all); got != "" {
		t.Errorf("every combination: %q, want no condition", got)
	}
}

// TestSplitPlaceholders: a string made of literals and placeholders.
func TestSplitPlaceholders(t *testing.T) {
	got := splitPlaceholders("system:serviceaccount:" + phNamespace + ":t1route-agent")
	if len(got) != 3 || got[0].lit != "system:serviceaccount:" || !got[1].isRef || got[1].ref != refNamespace || got[2].lit != ":t1route-agent" {
		t.Errorf("%+v", got)
	}
	if got := splitPlaceholders(phSecretNS); len(got) != 1 || got[0].ref != refSecretNamespace {
		t.Errorf("the secret namespace placeholder read as %+v", got)
	}
}
