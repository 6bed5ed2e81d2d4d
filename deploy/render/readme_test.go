package render

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/podroute/config/configtest"
)

// The permissions deploy/README.md lists are exactly the rendered RBAC:
// the block between its permission markers is what permissionsTable
// prints for the README's configuration (the guard and Secret
// authentication, in t1route-system). On a difference the test prints the
// block to paste.
func TestREADMEPermissions(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- permissions: begin -->\n", "<!-- permissions: end -->"
	_, rest, ok := strings.Cut(string(b), begin)
	got, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("deploy/README.md has no %q ... %q block", begin, end)
	}
	if want := permissionsTable(t); got != want {
		t.Fatalf("deploy/README.md's permissions differ from the rendered RBAC; the block should be:\n%s%s%s", begin, want, end)
	}
}

// permissionsTable describes every Role and ClusterRole render makes, what
// each is bound to, and each rule, marking what only some configurations
// render.
func permissionsTable(t *testing.T) string {
	t.Helper()
	full := configtest.ValidEnv()
	delete(full, "NSXT_USERNAME")
	delete(full, "NSXT_PASSWORD")
	full["NSXT_SECRET_NAMESPACE"], full["NSXT_SECRET_NAME"] = DefaultNamespace, "nsx-credentials"
	full["NSXT_MANAGEMENT_CIDR"] = "203.0.113.0/28"
	noGuard := configtest.ValidEnv() // and password authentication
	type role struct {
		kind, namespace, name string
		rules                 []rbacv1.PolicyRule
		aggregated            bool
	}
	read := func(env map[string]string) (roles []role, bound map[string][]string) {
		bound = map[string][]string{}
		for _, o := range renderEnv(t, env, Options{}) {
			kind := o["kind"].(string)
			data, _ := yaml.Marshal(o)
			switch kind {
			case "ClusterRole", "Role":
				var r rbacv1.ClusterRole
				if err := yaml.Unmarshal(data, &r); err != nil {
					t.Fatal(err)
				}
				roles = append(roles, role{kind, r.Namespace, r.Name, r.Rules, r.Labels["rbac.authorization.k8s.io/aggregate-to-view"] == "true"})
			case "ClusterRoleBinding", "RoleBinding":
				var rb rbacv1.RoleBinding
				if err := yaml.Unmarshal(data, &rb); err != nil {
					t.Fatal(err)
				}
				for _, s := range rb.Subjects {
					key := rb.RoleRef.Kind + "/" + rb.Namespace + "/" + rb.RoleRef.Name
					bound[key] = append(bound[key], fmt.Sprintf("%s `%s/%s`", s.Kind, s.Namespace, s.Name))
				}
			}
		}
		return roles, bound
	}
	roles, bound := read(full)
	otherRoles, _ := read(noGuard)
	find := func(rs []role, kind, name string) *role {
		for i := range rs {
			if rs[i].kind == kind && rs[i].name == name {
				return &rs[i]
			}
		}
		return nil
	}
	var b strings.Builder
	b.WriteString("| role | bound to | may (as rendered) |\n| --- | --- | --- |\n")
	for _, r := range roles {
		cell := r.kind + " `" + r.name + "`"
		if r.namespace != "" {
			cell += " in `" + r.namespace + "`"
		}
		other := find(otherRoles, r.kind, r.name)
		if other == nil {
			cell += " (Secret authentication only: NSXT_SECRET_NAMESPACE, its namespace)"
		}
		to := strings.Join(bound[r.kind+"/"+r.namespace+"/"+r.name], ", ")
		switch {
		case r.aggregated:
			to = "aggregated into the built-in `view` role (so `edit` and `admin`)"
		case to == "":
			to = "nothing: bind the ServiceAccount of your Prometheus to it"
		}
		var rules []string
		for _, rule := range r.rules {
			s := ruleText(rule)
			if other != nil && !slices.ContainsFunc(other.rules, func(o rbacv1.PolicyRule) bool { return ruleText(o) == s }) {
				s += " (with NSXT_MANAGEMENT_CIDR only)"
			}
			rules = append(rules, s)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", cell, to, strings.Join(rules, "; "))
	}
	return b.String()
}

// ruleText is one rule as the README says it: resources (with their API
// group), names if limited, then the verbs.
func ruleText(r rbacv1.PolicyRule) string {
	var what []string
	for _, u := range r.NonResourceURLs {
		what = append(what, "`"+u+"`")
	}
	for _, g := range r.APIGroups {
		for _, res := range r.Resources {
			if g != "" {
				res += "." + g
			}
			what = append(what, "`"+res+"`")
		}
	}
	s := strings.Join(what, ", ")
	if len(r.ResourceNames) > 0 {
		s += " named " + namesText(r.ResourceNames)
	}
	return s + ": " + strings.Join(r.Verbs, ", ")
}

// namesText lists names, a run of X-allow-1 ... X-allow-N as its ends.
func namesText(names []string) string {
	var out []string
	for i := 0; i < len(names); i++ {
		j := i
		for j+1 < len(names) && names[j+1] == strings.TrimSuffix(names[i], "1")+fmt.Sprint(j-i+2) && strings.HasSuffix(names[i], "-1") {
			j++
		}
		if j-i >= 2 {
			out = append(out, fmt.Sprintf("`%s` … `%s`", names[i], names[j]))
			i = j
			continue
		}
		out = append(out, "`"+names[i]+"`")
	}
	return strings.Join(out, ", ")
}
