// Command t1route keeps a Tier-1 gateway's static routes equal to a
// Kubernetes cluster's node podCIDRs, for routable (non-NAT) pods on vSphere
// with NSX.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/version"
)

// userAgent names t1route to the APIs it calls.
func userAgent() string { return "t1route/" + version.Version }

// exitError carries an exit code out of a command that has already said
// what failed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a command line cobra or a command refused: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	os.Exit(execute(newRootCommand(os.Stdout, os.Stderr, os.LookupEnv), os.Stderr))
}

// execute runs root and returns the exit status. Every failure a command has
// not reported itself (an exitError) is printed here as one line: which
// command failed, the cause in t1route's words (nsx.Explain) and how to fix it.
func execute(root *cobra.Command, stderr io.Writer) int {
	cmd, err := root.ExecuteC()
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue) || isCobraUsage(err):
		fmt.Fprintf(stderr, "%s: %s; see '%s --help'\n", cmd.CommandPath(), oneLine(err.Error()), cmd.CommandPath())
		return 2
	default:
		var protected *podroute.ProtectedError
		if errors.As(err, &protected) { // the identity and fix t1route knows, beyond NSX's own words
			fmt.Fprintf(stderr, "%s: %s\n", cmd.CommandPath(), protected.Explain())
			return 1
		}
		fmt.Fprintf(stderr, "%s: %s\n", cmd.CommandPath(), nsx.Explain(err))
		return 1
	}
}

// oneLine puts cobra's multi-line "Did you mean this?" on one line.
func oneLine(msg string) string {
	head, suggestions, found := strings.Cut(msg, "Did you mean this?")
	head = strings.TrimSuffix(strings.Join(strings.Fields(head), " "), ".")
	if found {
		if s := strings.Fields(suggestions); len(s) > 0 {
			head += fmt.Sprintf("; did you mean %q?", s[0])
		}
	}
	return head
}

// isCobraUsage reports whether err is cobra's own: an unknown command or
// wrong arguments (cobra has no error types for them).
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "accepts ") || strings.HasPrefix(msg, "requires ") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.HasPrefix(msg, "unknown flag")
}

// groupRun makes a command that only groups subcommands refuse anything but
// one of them, suggesting the closest (cobra itself would print the help and
// exit 0).
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageError{errors.New(msg)}
}

// loadConfig reads a command's NSXT_* configuration (flags win over the
// environment). On problems it prints one line each and returns exit status 2.
func loadConfig(cmd *cobra.Command, getenv func(string) (string, bool), stderr io.Writer) (config.Config, config.Settings, error) {
	s := config.Settings{Flags: cmd.Flags(), Getenv: getenv}
	cfg, problems := config.Load(s)
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "invalid configuration: %d problem(s)\n", len(problems))
		for _, p := range problems {
			fmt.Fprintln(stderr, p.String())
		}
		return cfg, s, exitError{2}
	}
	return cfg, s, nil
}

func newRootCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	root := &cobra.Command{
		Use:   "t1route",
		Short: "Routable pod networking for Kubernetes on vSphere with NSX",
		Long: `t1route keeps one static route per node podCIDR on a dedicated NSX Tier-1
gateway (next hop: the node), so pod IPs are reachable from outside the
cluster without NAT. Configuration comes from NSXT_* environment variables or
the flags of the same meaning (flags win).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Unknown commands suggest the closest one.
		SuggestionsMinimumDistance: 2,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newValidateConfigCommand(stdout, stderr, getenv),
		newControllerCommand(stdout, stderr, getenv),
		newAgentCommand(stderr, getenv),
		newOVSCommand(stderr, getenv),
		newEchoCommand(stdout),
		newCheckCommand(stdout, stderr, getenv),
		newGCCommand(stdout, stderr, getenv),
		newRoutesCommand(stdout, stderr, getenv),
		newCleanupControllerCommand(stderr, getenv),
		newRenderCommand(stdout, stderr, getenv),
		newDoctorCommand(stdout, stderr, getenv),
		newGetCommand(stdout, stderr),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version and the commit it was built from",
			Args:  cobra.NoArgs,
			Run:   func(*cobra.Command, []string) { fmt.Fprintln(stdout, "t1route", version.String()) },
		},
	)
	return root
}
