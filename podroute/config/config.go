package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
)

// Secret is a configuration value never shown: it prints as <redacted>.
type Secret string

func (Secret) String() string               { return "<redacted>" }
func (Secret) GoString() string             { return "<redacted>" }
func (Secret) MarshalText() ([]byte, error) { return []byte("<redacted>"), nil }
func (s Secret) Reveal() string             { return string(s) }
func (s Secret) Format(f fmt.State, _ rune) { f.Write([]byte("<redacted>")) } //nolint:errcheck

// AuthMode is how t1route authenticates to NSX, most secure first.
type AuthMode string

const (
	AuthClientCert AuthMode = "client-certificate"
	AuthVMCToken   AuthMode = "vmc-token"
	AuthSecret     AuthMode = "kubernetes-secret"
	AuthPassword   AuthMode = "username-password"
)

// Config is t1route's validated configuration, passed inward as typed values.
type Config struct {
	PodRoutingEnabled bool
	ManagerURL        string         // https://host[:port][/path]
	RouterPath        nsx.RouterPath // a Tier-1 (default space or project) or a VPC
	ClusterCIDRs      []netip.Prefix
	ClusterName       string
	// NodeStatusQPS is the controller's rate of node condition patches;
	// 0: podroute.NodeStatusQPS.
	NodeStatusQPS float64
	// Guard is the management-network guard (no CIDRs: none).
	Guard GuardSettings
	TLS   TLSSettings
	Auth  AuthSettings
	// Sources says where each variable set came from: "env" or "flag".
	Sources map[string]string
	// Notes are remarks that are not errors (settings ignored, insecure choices).
	Notes []string
}

// TLSSettings say how the manager's certificate is verified.
type TLSSettings struct {
	RootCAPEM          []byte // pinned CA; nil means system roots
	RootCASubjects     []string
	InsecureSkipVerify bool
}

// AuthSettings hold the chosen way to authenticate and its inputs.
type AuthSettings struct {
	Mode AuthMode
	Why  string

	CertPEM, KeyPEM   Secret // client certificate from data
	CertFile, KeyFile string // or from files

	VMCAuthHost string
	VMCToken    Secret

	SecretNamespace, SecretName string

	Username    string
	Password    Secret
	Remote      bool
	SessionAuth bool
}

// Problem is one invalid setting: the variable, what is wrong, and a right value.
type Problem struct {
	Var, What, Example string
}

func (p Problem) String() string {
	if p.Example == "" {
		return fmt.Sprintf("%s: %s", p.Var, p.What)
	}
	return fmt.Sprintf("%s: %s (example: %s=%s)", p.Var, p.What, p.Var, p.Example)
}

// parser accumulates problems while reading settings.
type parser struct {
	s        Settings
	cfg      Config
	problems []Problem
}

func (p *parser) bad(v Variable, what string) {
	p.problems = append(p.problems, Problem{Var: v.Env, What: what, Example: v.Example})
}

func (p *parser) str(v Variable) (string, bool) {
	val, from, ok := p.s.Lookup(v)
	if ok {
		p.cfg.Sources[v.Env] = from
	}
	return strings.TrimSpace(val), ok
}

func (p *parser) boolean(v Variable, def bool) bool {
	val, ok := p.str(v)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(val)
	if err != nil {
		p.bad(v, fmt.Sprintf("%q is not true or false", val))
		return def
	}
	return b
}

// Load reads and validates the configuration. It returns every problem
// found, not just the first; no problem quotes a secret's value.
func Load(s Settings) (Config, []Problem) {
	p := &parser{s: s, cfg: Config{Sources: map[string]string{}, ClusterName: "kubernetes"}}
	p.cfg.PodRoutingEnabled = p.boolean(varEnabled, false)
	required := p.cfg.PodRoutingEnabled

	if v, ok := p.str(varManager); ok {
		p.cfg.ManagerURL = p.managerURL(v)
	} else if required {
		p.bad(varManager, "is required when pod routing is enabled")
	}
	if v, ok := p.str(varRouter); ok {
		if router, err := nsx.ParseRouterPath(v); err != nil {
			p.bad(varRouter, err.Error())
		} else {
			p.cfg.RouterPath = router
		}
	} else if required {
		p.bad(varRouter, "is required when pod routing is enabled")
	}
	if v, ok := p.str(varClusterCIDR); ok {
		p.cfg.ClusterCIDRs = p.clusterCIDRs(v, p.boolean(varAllowShortCIDR, false))
	} else if required {
		p.bad(varClusterCIDR, "is required when pod routing is enabled")
	}
	if v, ok := p.str(varClusterName); ok {
		if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 || len(v) > 63 {
			p.bad(varClusterName, fmt.Sprintf("%q is not a valid cluster name: lowercase letters, digits, '-' and '.', at most 63 characters", v))
		} else {
			p.cfg.ClusterName = v
		}
	}
	if v, ok := p.str(varNodeStatusQPS); ok {
		p.cfg.NodeStatusQPS = p.nodeStatusQPS(v)
	}
	p.guardSettings()
	p.tlsSettings()
	p.authSettings(required)
	return p.cfg, p.problems
}

// maxNodeStatusQPS bounds T1ROUTE_NODE_STATUS_QPS: beyond it the API
// server's concurrency limits, not this rate, would set the pace.
const maxNodeStatusQPS = 5000

func (p *parser) nodeStatusQPS(v string) float64 {
	qps, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil || math.IsNaN(qps) || math.IsInf(qps, 0):
		p.bad(varNodeStatusQPS, fmt.Sprintf("%q is not a number of patches per second", v))
	case qps <= 0 || qps > maxNodeStatusQPS:
		p.bad(varNodeStatusQPS, fmt.Sprintf("%s is not between 0 (exclusive) and %d patches per second", v, maxNodeStatusQPS))
	default:
		return qps
	}
	return 0
}

func (p *parser) managerURL(v string) string {
	raw := v
	if !strings.Contains(v, "://") {
		raw = "https://" + v
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		p.bad(varManager, "is not a host, host:port or https URL")
		return ""
	case u.User != nil:
		// Never echo it: it holds credentials.
		p.bad(varManager, "holds credentials (user:password@); remove them and use one of the authentication variables")
		return ""
	case u.Scheme != "https":
		p.bad(varManager, fmt.Sprintf("scheme %q is not https: NSX is only reached over TLS", u.Scheme))
		return ""
	case u.Host == "" || u.Hostname() == "":
		p.bad(varManager, fmt.Sprintf("%q has no host", v))
		return ""
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		// Never echo it: a query may hold a token.
		p.bad(varManager, "has a query or fragment (not shown: it may hold a token); give the host, or the base URL of the API")
		return ""
	}
	if !validPort(u.Port()) {
		p.bad(varManager, fmt.Sprintf("port %q is not between 1 and 65535", u.Port()))
		return ""
	}
	if host := u.Hostname(); net.ParseIP(host) == nil && len(validation.IsDNS1123Subdomain(strings.ToLower(host))) > 0 {
		p.bad(varManager, fmt.Sprintf("%q is not a valid host name or IP address", host))
		return ""
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
}

func (p *parser) clusterCIDRs(v string, allowShort bool) []netip.Prefix {
	parts := strings.Split(v, ",")
	if len(parts) > 2 {
		p.bad(varClusterCIDR, fmt.Sprintf("%d CIDRs given; give one, or one IPv4 and one IPv6 for dual-stack", len(parts)))
		return nil
	}
	var out []netip.Prefix
	for _, part := range parts {
		part = strings.TrimSpace(part)
		pfx, err := netip.ParsePrefix(part)
		if err != nil {
			p.bad(varClusterCIDR, fmt.Sprintf("%q is not a CIDR", part))
			return nil
		}
		if pfx.Masked() != pfx {
			p.bad(varClusterCIDR, fmt.Sprintf("%q has host bits set; did you mean %s?", part, pfx.Masked()))
			return nil
		}
		if err := podroute.CheckClusterCIDR(pfx, allowShort); err != nil {
			p.bad(varClusterCIDR, err.Error())
			return nil
		}
		if allowShort && podroute.CheckClusterCIDR(pfx, false) != nil {
			p.cfg.Notes = append(p.cfg.Notes, fmt.Sprintf("NSXT_ALLOW_SHORT_CLUSTER_CIDR=true: CLUSTER_CIDR %s is wider than a cluster's pod range usually is; the controller may route all of it to nodes", pfx))
		}
		out = append(out, pfx)
	}
	if len(out) == 2 && out[0].Addr().Is4() == out[1].Addr().Is4() {
		p.bad(varClusterCIDR, "two CIDRs of the same IP family; dual-stack takes one IPv4 and one IPv6 CIDR")
		return nil
	}
	return out
}

func (p *parser) tlsSettings() {
	insecure := p.boolean(varInsecure, false)
	if v, ok := p.str(varRootCA); ok {
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
		switch {
		case err != nil && strings.HasPrefix(v, "-----BEGIN"):
			p.bad(varRootCA, "is PEM, not base64 of PEM; encode it with base64 -w0")
		case err != nil:
			p.bad(varRootCA, "is not base64")
		default:
			subjects, perr := caSubjects(raw)
			if perr != nil {
				p.bad(varRootCA, "decodes, but "+perr.Error())
			} else {
				p.cfg.TLS.RootCAPEM, p.cfg.TLS.RootCASubjects = raw, subjects
			}
		}
		if insecure {
			p.bad(varInsecure, "is true while NSXT_ROOT_CA_DATA_B64 pins a CA: pin the CA or disable verification, not both")
		}
	}
	if insecure {
		p.cfg.TLS.InsecureSkipVerify = true
		p.cfg.Notes = append(p.cfg.Notes, "NSXT_ALLOW_UNVERIFIED_SSL=true: the NSX Manager's certificate is NOT verified; anyone on the path "+
			"can pose as the manager and read every credential sent to it (password, session, VMC access token); "+
			"it covers the manager only: the VMC token service (NSXT_VMC_AUTH_HOST) is always verified, as the API token goes there")
	}
}

func caSubjects(pemBytes []byte) ([]string, error) {
	var subjects []string
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a %q block, not a CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("a certificate does not parse: %v", err)
		}
		subjects = append(subjects, c.Subject.String())
	}
	if len(subjects) == 0 {
		return nil, fmt.Errorf("holds no PEM certificate")
	}
	return subjects, nil
}

// readSecretPEM reads a PEM-or-base64 secret variable; problems never quote it.
func (p *parser) readSecretPEM(v Variable) ([]byte, bool) {
	val, ok := p.str(v)
	if !ok {
		return nil, false
	}
	out, err := auth.DecodePEMOrBase64([]byte(val))
	if err != nil {
		p.bad(v, "the value "+err.Error())
		return nil, true
	}
	return out, true
}

func readFile(v Variable, path string, p *parser) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		p.bad(v, fmt.Sprintf("cannot read %s: %v", path, unwrapPathError(err)))
		return nil
	}
	return b
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// validPort accepts an absent port or one in 1-65535.
func validPort(port string) bool {
	if port == "" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}
