package config

import (
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/t1route/t1route/podroute"
)

// Describe prints the effective configuration as validate-config shows it:
// every variable with its source, secrets (as the variable table marks them)
// as <redacted>, then what the values mean.
func Describe(w io.Writer, cfg Config, s Settings) {
	fmt.Fprintln(w, "configuration is valid")
	fmt.Fprintln(w)
	for _, v := range Variables() {
		val, from, ok := s.Lookup(v)
		switch {
		case !ok:
			fmt.Fprintf(w, "  %-27s (not set)\n", v.Env)
		case v.Secret:
			fmt.Fprintf(w, "  %-27s <redacted>   (%s)\n", v.Env, from)
		case v.Env == varManager.Env || v.Env == varVMCHost.Env:
			fmt.Fprintf(w, "  %-27s %s   (%s)\n", v.Env, abbreviate(hideURLSecrets(strings.TrimSpace(val))), from)
		default:
			fmt.Fprintf(w, "  %-27s %s   (%s)\n", v.Env, abbreviate(strings.TrimSpace(val)), from)
		}
	}
	fmt.Fprintln(w)
	if !cfg.PodRoutingEnabled {
		fmt.Fprintln(w, "pod routing:    disabled (NSXT_POD_ROUTING_ENABLED is not true): the controller will idle")
	} else {
		fmt.Fprintln(w, "pod routing:    enabled")
	}
	if cfg.ManagerURL != "" {
		fmt.Fprintf(w, "manager:        %s\n", cfg.ManagerURL)
	}
	if !cfg.RouterPath.IsZero() {
		fmt.Fprintf(w, "router:         %s (%s)\n", cfg.RouterPath, cfg.RouterPath.Kind())
	}
	if len(cfg.ClusterCIDRs) > 0 {
		cidrs := make([]string, len(cfg.ClusterCIDRs))
		for i, c := range cfg.ClusterCIDRs {
			cidrs[i] = c.String()
		}
		fmt.Fprintf(w, "cluster CIDRs:  %s\n", strings.Join(cidrs, ", "))
	}
	fmt.Fprintf(w, "cluster name:   %s\n", cfg.ClusterName)
	if cfg.NodeStatusQPS > 0 {
		fmt.Fprintf(w, "node status:    %g condition patches/s (default %d)\n", cfg.NodeStatusQPS, podroute.NodeStatusQPS)
	}
	switch {
	case cfg.TLS.InsecureSkipVerify:
		fmt.Fprintln(w, "TLS:            WARNING: the NSX Manager's certificate is NOT verified (NSXT_ALLOW_UNVERIFIED_SSL=true): anyone on the path can read the credentials sent to it")
	case cfg.TLS.RootCAPEM != nil:
		fmt.Fprintf(w, "TLS:            manager CA pinned: %s\n", strings.Join(cfg.TLS.RootCASubjects, "; "))
	default:
		fmt.Fprintln(w, "TLS:            manager certificate verified against the system's roots")
	}
	if cfg.Auth.Mode == AuthVMCToken {
		how := "the system's roots"
		if cfg.TLS.RootCAPEM != nil {
			how += " and the CA of NSXT_ROOT_CA_DATA_B64"
		}
		fmt.Fprintf(w, "token service:  https://%s, certificate always verified (against %s; NSXT_ALLOW_UNVERIFIED_SSL never applies to it)\n", cfg.Auth.VMCAuthHost, how)
	}
	if cfg.Auth.Mode != "" {
		fmt.Fprintf(w, "auth mode:      %s, because %s\n", describeMode(cfg.Auth), cfg.Auth.Why)
	} else {
		fmt.Fprintln(w, "auth mode:      none set")
	}
	for _, n := range cfg.Notes {
		fmt.Fprintf(w, "note:           %s\n", n)
	}
}

func describeMode(a AuthSettings) string {
	switch a.Mode {
	case AuthSecret, AuthPassword:
		how := "NSX session"
		if !a.SessionAuth {
			how = "credentials on every request"
		}
		if a.Remote {
			how += ", Remote (vIDM/LDAP)"
		}
		return fmt.Sprintf("%s (%s)", a.Mode, how)
	}
	return string(a.Mode)
}

// abbreviate shortens long values (a base64 CA) for the listing.
func abbreviate(v string) string {
	if len(v) <= 64 {
		return v
	}
	return fmt.Sprintf("%s… (%d characters)", v[:24], len(v))
}

// hideURLSecrets shows a host value without its user info, query or
// fragment, which may hold a password or token (Load refuses them; this
// keeps Describe from ever showing one).
func hideURLSecrets(v string) string {
	if !strings.ContainsAny(v, "?#@") {
		return v
	}
	raw := v
	if !strings.Contains(v, "://") {
		raw = "https://" + v
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return v
	}
	if u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" {
		return v
	}
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if !strings.Contains(v, "://") {
		shown = strings.TrimPrefix(shown, "https://")
	}
	return shown + " (user info, query or fragment not shown)"
}
