// Command nsxsim runs the NSX Manager simulator. Once listening it prints the
// NSXT_* variables that point t1route at it, as shell export lines, and
// serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/t1route/t1route/nsx/nsxsim"
)

func main() {
	if err := newCommand(os.Stdout, os.Stderr).Execute(); err != nil {
		os.Exit(2)
	}
}

type flags struct {
	listen, username, password string
	tier1s, faults, vmcTokens  []string
	routers, projectUsers      []string
	rateLimit, clientConc      int
	globalConc                 int
	latency, latencyPerChild   time.Duration
	realizeDelay, sessionIdle  time.Duration
	tokenLifetime              time.Duration
	verbose                    bool
	realizeNetns               string
	principals                 []string
	certDir                    string
	searchLag                  time.Duration
}

func newCommand(stdout, stderr io.Writer) *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:   "nsxsim",
		Short: "An NSX Manager simulator (Policy API, auth, limits, faults) for tests and demos",
		Long: `nsxsim serves the part of the NSX Policy and Management Plane APIs that t1route
uses, over HTTPS with a CA of its own, with NSX's errors, authentication (basic,
Remote, session, client certificate, VMC/CSP tokens), rate limits and injectable
faults. Once listening it prints export lines for NSXT_* variables.`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, f, stdout, stderr)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:0", "address to listen on")
	fl.StringArrayVar(&f.tier1s, "tier1", nil, "Tier-1 ID to create at start (repeatable; default "+nsxsim.DefaultTier1+")")
	fl.StringArrayVar(&f.routers, "router", nil, "more routers to create at start, by policy path (repeatable): a Tier-1 in a project, /orgs/<org>/projects/<p>/infra/tier-1s/<id>, or a VPC, /orgs/<org>/projects/<p>/vpcs/<vpc>; their projects are created with them. NSXT_ROUTER_PATH is printed for the first --tier1 if any, else the first --router")
	fl.StringArrayVar(&f.projectUsers, "project-user", nil, "a local user whose role is scoped to one project, NAME:PASSWORD:/orgs/<org>/projects/<p> (repeatable): it may call only inside that project (and PATCH /org-root for its VPCs); anything else is refused with 403, error_code 401")
	fl.StringVar(&f.username, "username", "admin", "local user name")
	fl.StringVar(&f.password, "password", "", "local user's password (default: random, printed)")
	fl.StringArrayVar(&f.vmcTokens, "vmc-refresh-token", nil, "VMC API token the CSP endpoint accepts, acting as the local user (repeatable)")
	fl.IntVar(&f.rateLimit, "rate-limit", 100, "requests per second per client (NSX: 100); -1 disables")
	fl.IntVar(&f.clientConc, "client-concurrency", 40, "concurrent requests per client (NSX: 40); -1 disables")
	fl.IntVar(&f.globalConc, "global-concurrency", 199, "concurrent requests overall (NSX: 199); -1 disables")
	fl.DurationVar(&f.latency, "latency", 0, "latency added to every API call")
	fl.DurationVar(&f.latencyPerChild, "latency-per-child", 0, "latency added per child of a hierarchical call")
	fl.DurationVar(&f.realizeDelay, "realize-delay", 0, "how long a changed route stays unrealized")
	fl.DurationVar(&f.sessionIdle, "session-idle-timeout", 30*time.Minute, "idle time after which a session expires")
	fl.DurationVar(&f.tokenLifetime, "token-lifetime", 30*time.Minute, "lifetime of CSP access tokens")
	fl.StringArrayVar(&f.faults, "fault", nil, `fault rule (repeatable), e.g. "method=PATCH,path=^/policy/api/v1/infra$,status=503,p=0.2,count=10"`)
	fl.StringArrayVar(&f.principals, "principal-identity", nil, "register a protected principal identity NAME (repeatable): its client certificate and key are written to --cert-dir as NAME.crt and NAME.key; what it creates only it, or the admin with X-Allow-Overwrite: true, may change")
	fl.StringVar(&f.certDir, "cert-dir", "", "directory for the principal identities' NAME.crt and NAME.key (created if missing; required with --principal-identity)")
	fl.DurationVar(&f.searchLag, "search-lag", 0, "how long a write takes to appear in the search API (NSX's index lags by seconds; 0: at once)")
	fl.StringVar(&f.realizeNetns, "realize-netns", "", "make the Tier-1 real: its static routes become kernel routes in this network namespace (Linux, root)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every request to stderr")
	return cmd
}

func run(ctx context.Context, f flags, stdout, stderr io.Writer) error {
	logger := log.New(stderr, "nsxsim: ", log.LstdFlags)
	opts := nsxsim.Options{
		Listen: f.listen, Tier1s: f.tier1s, RateLimit: f.rateLimit, ClientConcurrency: f.clientConc,
		GlobalConcurrency: f.globalConc, Latency: f.latency, LatencyPerChild: f.latencyPerChild,
		RealizeDelay: f.realizeDelay, SessionIdleTimeout: f.sessionIdle, TokenLifetime: f.tokenLifetime,
		SearchLag: f.searchLag, PrincipalIdentities: f.principals, Routers: f.routers,
	}
	if err := checkPrincipalFlags(f); err != nil {
		fmt.Fprintln(stderr, "nsxsim:", err)
		return err
	}
	if f.password == "" {
		f.password = randomPassword()
	}
	opts.Users = map[string]string{f.username: f.password}
	for _, pu := range f.projectUsers {
		name, rest, ok1 := strings.Cut(pu, ":")
		password, project, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || name == "" || password == "" || !strings.HasPrefix(project, "/orgs/") {
			err := fmt.Errorf("--project-user %q: want NAME:PASSWORD:/orgs/<org>/projects/<project>", strings.SplitN(pu, ":", 2)[0]+":…")
			fmt.Fprintln(stderr, "nsxsim:", err)
			return err
		}
		if opts.ProjectUsers == nil {
			opts.ProjectUsers = map[string]string{}
		}
		opts.Users[name], opts.ProjectUsers[name] = password, project
	}
	if len(f.vmcTokens) > 0 {
		opts.RefreshTokens = map[string]string{}
		for _, t := range f.vmcTokens {
			opts.RefreshTokens[t] = f.username
		}
	}
	for _, s := range f.faults {
		rule, err := nsxsim.ParseFaultRule(s)
		if err != nil {
			fmt.Fprintln(stderr, "nsxsim:", err)
			return err
		}
		opts.Faults = append(opts.Faults, rule)
	}
	if f.verbose {
		opts.Logf = logger.Printf
	}
	sim, err := nsxsim.New(opts)
	if err == nil {
		err = sim.Start()
	}
	if err != nil {
		fmt.Fprintln(stderr, "nsxsim:", err)
		return err
	}
	defer sim.Close()
	certFiles, err := writePrincipalCerts(sim, f.principals, f.certDir)
	if err != nil {
		fmt.Fprintln(stderr, "nsxsim:", err)
		return err
	}
	if f.realizeNetns != "" {
		stopRealize, err := sim.RealizeInNetns(f.realizeNetns, logger.Printf)
		if err != nil {
			fmt.Fprintln(stderr, "nsxsim: --realize-netns:", err)
			return err
		}
		defer stopRealize()
		logger.Printf("realizing static routes as kernel routes in network namespace %s", f.realizeNetns)
	}
	router := "/infra/tier-1s/" + nsxsim.DefaultTier1
	switch {
	case len(f.tier1s) > 0:
		router = "/infra/tier-1s/" + f.tier1s[0]
	case len(f.routers) > 0:
		router = f.routers[0]
	}
	fmt.Fprintf(stdout, "export NSXT_MANAGER_HOST=%s\n", sim.Addr())
	fmt.Fprintf(stdout, "export NSXT_ROUTER_PATH=%s\n", router)
	fmt.Fprintf(stdout, "export NSXT_USERNAME=%s\n", shellQuote(f.username))
	fmt.Fprintf(stdout, "export NSXT_PASSWORD=%s\n", shellQuote(f.password))
	fmt.Fprintf(stdout, "export NSXT_ROOT_CA_DATA_B64=%s\n", base64.StdEncoding.EncodeToString(sim.CACertPEM()))
	if len(f.vmcTokens) > 0 {
		fmt.Fprintf(stdout, "export NSXT_VMC_AUTH_HOST=%s\n", sim.Addr())
	}
	for _, c := range certFiles {
		// A comment: sourcing this file must not switch t1route to certificate auth.
		fmt.Fprintf(stdout, "# principal identity %s: NSXT_CLIENT_CERT_FILE=%s NSXT_CLIENT_KEY_FILE=%s\n", c.name, shellQuote(c.cert), shellQuote(c.key))
	}
	if fl, ok := stdout.(interface{ Sync() error }); ok {
		fl.Sync() //nolint:errcheck
	}
	logger.Printf("serving the NSX API on https://%s (tier-1s: %s)", sim.Addr(), strings.Join(append(orDefault(f.tier1s), f.routers...), ", "))
	<-ctx.Done()
	logger.Printf("shutting down")
	return nil
}

func orDefault(t1s []string) []string {
	if len(t1s) == 0 {
		return []string{nsxsim.DefaultTier1}
	}
	return t1s
}

// shellQuote quotes s for a POSIX shell's export line.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
