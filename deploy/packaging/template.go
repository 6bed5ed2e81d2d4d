package packaging

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/node/policy/cnp"
)

// ref is a reference to the values that a placeholder stood for.
type ref int

const (
	refNamespace ref = iota
	refImage
	refNodeImage
	refPort
	refSecretNamespace
	refSecretName
)

var placeholders = []struct {
	text string
	ref  ref
}{
	// Longest first: no placeholder is a part of another one found first.
	{phNodeImage, refNodeImage}, {phImage, refImage}, {phSecretNS, refSecretNamespace}, {phSecretName, refSecretName},
	{phNamespace, refNamespace}, {strconv.Itoa(phPort), refPort},
}

// part is a literal or a reference, of a string made of both.
type part struct {
	lit   string
	ref   ref
	isRef bool
}

type markerKind int

const (
	markString      markerKind = iota // a string of literals and references
	markPort                          // the port, as an integer
	markSettings                      // the ConfigMap's data
	markCredentials                   // the credentials Secret's stringData
	markConfigHash                    // the controller's config hash annotation
)

type marker struct {
	kind  markerKind
	parts []part
}

// templ is an object as YAML in which markers (plain scalars mark0000…)
// stand where values go.
type templ struct {
	text    string
	markers []marker
}

func (t templ) equal(o templ) bool {
	return t.text == o.text && slices.EqualFunc(t.markers, o.markers, func(a, b marker) bool {
		return a.kind == b.kind && slices.Equal(a.parts, b.parts)
	})
}

const markPrefix = "t1rphmark"

var markRE = regexp.MustCompile(markPrefix + `[0-9]{4}`)

// toTemplate turns a rendered object into a template: placeholders become
// markers; the ConfigMap's data, the credentials' stringData and the
// config hash become markers whole.
func toTemplate(o map[string]any) (templ, error) {
	var t templ
	add := func(m marker) string {
		t.markers = append(t.markers, m)
		return fmt.Sprintf("%s%04d", markPrefix, len(t.markers)-1)
	}
	md, _ := o["metadata"].(map[string]any)
	switch {
	case o["kind"] == "ConfigMap" && md["name"] == render.ConfigMapName:
		o["data"] = add(marker{kind: markSettings})
	case o["kind"] == "Secret" && md["name"] == render.CredentialsName:
		o["stringData"] = add(marker{kind: markCredentials})
	}
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				if strings.Contains(k, phToken) {
					return nil, fmt.Errorf("a placeholder in the key %q", k)
				}
				if k == render.ConfigHashAnnotation {
					x[k] = add(marker{kind: markConfigHash})
					continue
				}
				nv, err := walk(x[k])
				if err != nil {
					return nil, err
				}
				x[k] = nv
			}
			return x, nil
		case []any:
			for i := range x {
				nv, err := walk(x[i])
				if err != nil {
					return nil, err
				}
				x[i] = nv
			}
			return x, nil
		case float64:
			if x == phPort {
				return add(marker{kind: markPort}), nil
			}
			return x, nil
		case string:
			if strings.HasPrefix(x, markPrefix) {
				return x, nil
			}
			parts := splitPlaceholders(x)
			if len(parts) == 1 && !parts[0].isRef {
				if strings.Contains(x, phToken) {
					return nil, fmt.Errorf("an unknown placeholder in %q", x)
				}
				return x, nil
			}
			return add(marker{kind: markString, parts: parts}), nil
		}
		return v, nil
	}
	if _, err := walk(o); err != nil {
		return t, err
	}
	b, err := yaml.Marshal(o)
	if err != nil {
		return t, err
	}
	t.text = string(b)
	if n := len(markRE.FindAllString(t.text, -1)); n != len(t.markers) {
		return t, fmt.Errorf("%d markers in the YAML, %d made (a marker was quoted?)", n, len(t.markers))
	}
	if strings.Contains(markRE.ReplaceAllString(t.text, ""), phToken) {
		return t, fmt.Errorf("a placeholder is left in:\n%s", t.text)
	}
	return t, nil
}

// splitPlaceholders splits s into literals and references.
func splitPlaceholders(s string) []part {
	var out []part
	for s != "" {
		at, which := -1, -1
		for i, p := range placeholders {
			if j := strings.Index(s, p.text); j >= 0 && (at < 0 || j < at) {
				at, which = j, i
			}
		}
		if at < 0 {
			out = append(out, part{lit: s})
			break
		}
		if at > 0 {
			out = append(out, part{lit: s[:at]})
		}
		out = append(out, part{ref: placeholders[which].ref, isRef: true})
		s = s[at+len(placeholders[which].text):]
	}
	if len(out) == 0 {
		out = append(out, part{})
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// upstreamCRDName is the ClusterNetworkPolicy CRD's name: render carries
// it, but t1route does not own it (deploy/README.md, Uninstalling).
func upstreamCRDName() string {
	var crd struct {
		Metadata struct{ Name string } `json:"metadata"`
	}
	if err := yaml.Unmarshal(cnp.CRD(), &crd); err != nil || crd.Metadata.Name == "" {
		return "clusternetworkpolicies.policy.networking.k8s.io"
	}
	return crd.Metadata.Name
}

func isUpstreamCRD(o map[string]any) bool {
	md, _ := o["metadata"].(map[string]any)
	return o["kind"] == "CustomResourceDefinition" && md["name"] == upstreamCRDName()
}

// dependsOn returns the dimensions (indexes) that s's template depends on:
// the smallest set, found by dropping one dimension at a time, such that
// variants equal in those dimensions give equal templates.
func (s *shape) dependsOn(vars []variant) []int {
	var keep []int
	for i := range dimensions {
		keep = append(keep, i)
	}
	for i := range dimensions {
		trial := slices.DeleteFunc(slices.Clone(keep), func(d int) bool { return d == i })
		if s.determinedBy(trial, vars) {
			keep = trial
		}
	}
	return keep
}

func (s *shape) determinedBy(dims []int, vars []variant) bool {
	seen := map[string]templ{}
	for _, v := range vars {
		k := projection(v, dims)
		t := s.byVar[strings.Join(v, "/")]
		if prev, ok := seen[k]; ok && !prev.equal(t) {
			return false
		}
		seen[k] = t
	}
	return true
}

func projection(v variant, dims []int) string {
	var parts []string
	for _, d := range dims {
		parts = append(parts, v[d])
	}
	return strings.Join(parts, "/")
}

// group is one distinct template of a shape, and the combinations of its
// dimensions' values that give it.
type group struct {
	t      templ
	combos [][]string // each: values of the shape's dimensions, in order
}

// groups returns the distinct templates of s over dims, in the order of
// the variants (the default combination first); an absent object is a
// group with an empty text.
func (s *shape) groups(dims []int, vars []variant) []group {
	var out []group
	seen := map[string]bool{}
	for _, v := range vars {
		k := projection(v, dims)
		if seen[k] {
			continue
		}
		seen[k] = true
		t := s.byVar[strings.Join(v, "/")]
		var combo []string
		for _, d := range dims {
			combo = append(combo, v[d])
		}
		found := false
		for i := range out {
			if out[i].t.equal(t) {
				out[i].combos = append(out[i].combos, combo)
				found = true
				break
			}
		}
		if !found {
			out = append(out, group{t: t, combos: [][]string{combo}})
		}
	}
	return out
}
