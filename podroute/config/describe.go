package config

import (
	"fmt"
	"io"
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
	if cfg.RouterPath != "" {
		fmt.Fprintf(w, "tier-1:         %s\n", cfg.RouterPath)
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
		fmt.Fprintln(w, "TLS:            manager certificate NOT verified (NSXT_ALLOW_UNVERIFIED_SSL=true)")
	case cfg.TLS.RootCAPEM != nil:
		fmt.Fprintf(w, "TLS:            manager CA pinned: %s\n", strings.Join(cfg.TLS.RootCASubjects, "; "))
	default:
		fmt.Fprintln(w, "TLS:            manager certificate verified against the system's roots")
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
