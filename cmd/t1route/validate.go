package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func newValidateConfigCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate-config",
		Short: "Check the NSXT_* configuration and print it with secrets redacted",
		Long: `validate-config reads the configuration exactly as the controller would and
prints the effective values, every secret shown as <redacted>, and the way of
authenticating chosen and why. Exit 0 if valid; exit 2 with one line per
problem (the variable, what is wrong, an example of a right value) if not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, problems := LoadConfig(settings{flags: cmd.Flags(), getenv: getenv})
			if len(problems) > 0 {
				fmt.Fprintf(stderr, "invalid configuration: %d problem(s)\n", len(problems))
				for _, p := range problems {
					fmt.Fprintln(stderr, p.String())
				}
				return exitError{2}
			}
			describeConfig(stdout, cfg, settings{flags: cmd.Flags(), getenv: getenv})
			return nil
		},
	}
	addConfigFlags(cmd.Flags())
	return cmd
}

// describeConfig prints the effective configuration; secrets are <redacted>.
func describeConfig(w io.Writer, cfg Config, s settings) {
	fmt.Fprintln(w, "configuration is valid")
	fmt.Fprintln(w)
	for _, v := range configVariables {
		val, from, ok := s.get(v)
		switch {
		case !ok:
			fmt.Fprintf(w, "  %-27s (not set)\n", v.env)
		case v.secret:
			fmt.Fprintf(w, "  %-27s <redacted>   (%s)\n", v.env, from)
		default:
			fmt.Fprintf(w, "  %-27s %s   (%s)\n", v.env, abbreviate(strings.TrimSpace(val)), from)
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
