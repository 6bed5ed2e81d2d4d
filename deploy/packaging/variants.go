package packaging

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/t1route/t1route/podroute/version"
	"io"
	"math/big"
	"strings"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/config"
)

// A dimension is a choice in the values that may change which objects
// render makes, or their shape (not only a value inside them). The
// generator renders every combination and finds, per object, the
// dimensions it depends on: only those become conditions in the templates.
// A dimension render does not (yet) depend on costs nothing.
type dimension struct {
	name   string   // also the template variable ($auth, auth)
	values []string // the first is the default
}

var dimensions = []dimension{
	{"auth", []string{string(config.AuthPassword), string(config.AuthClientCert), string(config.AuthVMCToken), string(config.AuthSecret)}},
	{"datapath", render.DatapathTypes},
	{"adopt", []string{"false", "true"}},
	{"guard", []string{"off", "on"}},
	{"dualstack", []string{"off", "on"}},
	// render names the cluster-scoped objects of an install into another
	// namespace than t1route-system after it (render.ClusterScopedName).
	{"nsdefault", []string{"yes", "no"}},
}

// variant is one combination: a value of each dimension, in order.
type variant []string

func (v variant) get(dim string) string {
	for i, d := range dimensions {
		if d.name == dim {
			return v[i]
		}
	}
	return ""
}

func allVariants() []variant {
	out := []variant{{}}
	for _, d := range dimensions {
		var next []variant
		for _, v := range out {
			for _, val := range d.values {
				next = append(next, append(append(variant{}, v...), val))
			}
		}
		out = next
	}
	return out
}

// Placeholders render is called with: every one is found again in its
// output and replaced by a reference to the values.
const (
	phNamespace  = "t1rphns"
	phImage      = "t1rph.invalid/t1rph-image:t1rph"
	phNodeImage  = "t1rph.invalid/t1rph-node-image:t1rph"
	phPort       = 61999
	phSecretNS   = "t1rphsecretns"
	phSecretName = "t1rphsecretname"
	phToken      = "t1rph" // no placeholder-free output holds this
)

// placeholderEnv is the configuration of variant v, with placeholders
// where the values go.
func placeholderEnv(v variant, certPEM, keyPEM []byte) map[string]string {
	env := map[string]string{
		"NSXT_POD_ROUTING_ENABLED": "true",
		"NSXT_MANAGER_HOST":        "nsx.example.com",
		"NSXT_ROUTER_PATH":         "/infra/tier-1s/t1rph",
		"CLUSTER_CIDR":             "100.96.0.0/11",
	}
	switch config.AuthMode(v.get("auth")) {
	case config.AuthPassword:
		env["NSXT_USERNAME"], env["NSXT_PASSWORD"] = "t1rph-user", "t1rph-password"
	case config.AuthClientCert:
		env["NSXT_CLIENT_CERT_DATA"] = base64.StdEncoding.EncodeToString(certPEM)
		env["NSXT_CLIENT_CERT_KEY_DATA"] = base64.StdEncoding.EncodeToString(keyPEM)
	case config.AuthVMCToken:
		env["NSXT_VMC_AUTH_HOST"], env["NSXT_VMC_ACCESS_TOKEN"] = "console.example.com", "t1rph-token"
	case config.AuthSecret:
		env["NSXT_SECRET_NAMESPACE"], env["NSXT_SECRET_NAME"] = phSecretNS, phSecretName
	}
	if v.get("guard") == "on" {
		env["NSXT_MANAGEMENT_CIDR"] = "203.0.113.0/28"
	}
	if v.get("dualstack") == "on" {
		env["CLUSTER_CIDR"] = "100.96.0.0/11,fd00:100:96::/48"
	}
	return env
}

// renderVariant renders variant v with placeholders and returns its
// objects, in render's order.
func renderVariant(v variant, certPEM, keyPEM []byte) ([]map[string]any, error) {
	env := placeholderEnv(v, certPEM, keyPEM)
	s := config.FromMap(env)
	cfg, problems := config.Load(s)
	if len(problems) > 0 {
		return nil, fmt.Errorf("variant %v: the placeholder configuration is refused: %v", v, problems)
	}
	if string(cfg.Auth.Mode) != v.get("auth") {
		return nil, fmt.Errorf("variant %v: authenticates with %s", v, cfg.Auth.Mode)
	}
	// The chart and the package create their namespace (values.namespace).
	create := true
	ns := phNamespace
	if v.get("nsdefault") == "yes" {
		ns = render.DefaultNamespace
	}
	out, err := render.Manifests(cfg, s, render.Options{Namespace: ns, CreateNamespace: &create, Image: phImage, OVSImage: phNodeImage,
		ControllerPort: phPort, DatapathType: v.get("datapath"), AdoptCloudProviderRoutes: v.get("adopt") == "true", Version: version.Version})
	if err != nil {
		return nil, fmt.Errorf("variant %v: %w", v, err)
	}
	if ns == render.DefaultNamespace {
		// Every mention of the namespace is a reference to the value, as in
		// the other variants: only what differs (the cluster-scoped names)
		// becomes a condition.
		out = bytes.ReplaceAll(out, []byte(render.DefaultNamespace), []byte(phNamespace))
	}
	return SplitObjects(out)
}

// SplitObjects parses a YAML stream into its objects (documents with a
// kind), in order.
func SplitObjects(b []byte) ([]map[string]any, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var out []map[string]any
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("not YAML: %w\n%s", err, doc)
		}
		if m != nil && m["kind"] != nil {
			out = append(out, m)
		}
	}
}

// ObjectKey names an object: apiVersion, kind, namespace and name.
func ObjectKey(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	return fmt.Sprintf("%v %v %s/%s", o["apiVersion"], o["kind"], ns, name)
}

// selfSignedPair is a throwaway certificate and key that config.Load
// accepts; their content is never written (the credentials are values).
func selfSignedPair() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t1route-packaging"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// shape is one object across the variants: its key, and for each variant
// its template text (empty: not rendered in that variant).
type shape struct {
	key   string
	kind  string
	name  string
	first int // position in the first variant that has it, for a stable order
	byVar map[string]templ
}

// collect renders every variant and gathers the objects' templates.
func collect() ([]*shape, []variant, error) {
	certPEM, keyPEM, err := selfSignedPair()
	if err != nil {
		return nil, nil, err
	}
	vars := allVariants()
	shapes := map[string]*shape{}
	var order []*shape
	for _, v := range vars {
		objs, err := renderVariant(v, certPEM, keyPEM)
		if err != nil {
			return nil, nil, err
		}
		for i, o := range objs {
			if isUpstreamCRD(o) {
				continue // crds/ and the package's own file
			}
			k := ObjectKey(o)
			md, _ := o["metadata"].(map[string]any)
			name := strings.ReplaceAll(fmt.Sprint(md["name"]), phNamespace, "namespace")
			t, err := toTemplate(o) // changes o
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", k, err)
			}
			s := shapes[k]
			if s == nil {
				s = &shape{key: k, kind: fmt.Sprint(o["kind"]), name: name, first: i, byVar: map[string]templ{}}
				shapes[k] = s
				order = append(order, s)
			}
			s.byVar[strings.Join(v, "/")] = t
		}
	}
	return order, vars, nil
}
