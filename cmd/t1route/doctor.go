package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	nsxt "github.com/vmware/go-vmware-nsxt"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute/config"
	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/daemon"
)

// doctor prints one PASS/WARN/FAIL line per check with a fix hint.
type doctor struct {
	out               io.Writer
	pass, warn, fails int
}

func (d *doctor) line(level, check, msg, fix string) {
	switch level {
	case "PASS":
		d.pass++
	case "WARN":
		d.warn++
	default:
		d.fails++
	}
	fmt.Fprintf(d.out, "%-4s %s: %s\n", level, check, msg)
	if fix != "" && level != "PASS" {
		fmt.Fprintf(d.out, "     fix: %s\n", fix)
	}
}

type doctorFlags struct {
	kubeconfig, serviceCIDR, leaseNamespace string
	timeout                                 time.Duration
}

// minNSXVersion is the oldest NSX whose Policy API t1route is built for
// (hierarchical API with static route children, TIER1_STATIC_ROUTES).
const minNSXVersion = "3.0"

func newDoctorCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var f doctorFlags
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Preflight: configuration, manager, credentials, version, Tier-1, advertisement, CIDRs, Kubernetes, RBAC",
		Long: `doctor checks everything t1route needs before (or while) it runs, one PASS, WARN
or FAIL line each with a hint to fix it: the configuration; the manager is
reachable and its certificate verified; the credentials are accepted; the
manager's version and cluster status (Management Plane API); the Tier-1 exists
and advertises its static routes to the Tier-0; CLUSTER_CIDR does not overlap
the service range; Kubernetes is reachable and this identity may do what the
controller does. Exit status 1 on any FAIL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			d := &doctor{out: stdout}
			runDoctor(ctx, cmd, getenv, f, d, stderr)
			fmt.Fprintf(stdout, "doctor: %d passed, %d warnings, %d failed\n", d.pass, d.warn, d.fails)
			if d.fails > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	config.AddFlags(fl)
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, then $KUBECONFIG)")
	fl.StringVar(&f.serviceCIDR, "service-cidr", "", "the cluster's service range(s), comma-separated (default: read from the cluster's ServiceCIDRs)")
	fl.StringVar(&f.leaseNamespace, "leader-election-namespace", "", "namespace of the controller's Lease (default: $POD_NAMESPACE, else kube-system)")
	fl.DurationVar(&f.timeout, "timeout", 60*time.Second, "give up after this long")
	return cmd
}

func runDoctor(ctx context.Context, cmd *cobra.Command, getenv func(string) (string, bool), f doctorFlags, d *doctor, stderr io.Writer) {
	cfg, problems := config.Load(config.Settings{Flags: cmd.Flags(), Getenv: getenv})
	if len(problems) > 0 {
		for _, p := range problems {
			d.line("FAIL", "configuration", p.String(), "t1route validate-config explains each variable")
		}
		return
	}
	if !cfg.PodRoutingEnabled {
		d.line("FAIL", "configuration", "NSXT_POD_ROUTING_ENABLED is not true: the controller would idle", "set NSXT_POD_ROUTING_ENABLED=true")
		return
	}
	d.line("PASS", "configuration", fmt.Sprintf("valid; authentication: %s (%s)", cfg.Auth.Mode, cfg.Auth.Why), "")

	kube := doctorKube(ctx, f, d)
	nsxOK := doctorManager(ctx, cfg, d)
	if nsxOK {
		doctorNSX(ctx, cfg, kube, d, stderr)
	}
	doctorCIDRs(ctx, cfg, f, kube, d)
	if kube != nil {
		doctorRBAC(ctx, cfg, f, getenv, kube, d)
	}
}

// doctorManager: reachable, and the certificate verified.
func doctorManager(ctx context.Context, cfg config.Config, d *doctor) bool {
	u, _ := url.Parse(cfg.ManagerURL)
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	tlsConf, err := connect.ManagerTLS(cfg)
	if err != nil {
		d.line("FAIL", "manager TLS", err.Error(), "set NSXT_ROOT_CA_DATA_B64 to base64 of the CA's PEM")
		return false
	}
	tlsConf.ServerName = u.Hostname()
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tlsConf}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &certErr):
		d.line("FAIL", "manager TLS", fmt.Sprintf("%s answers, but its certificate is not trusted: %v", addr, certErr.Err),
			"set NSXT_ROOT_CA_DATA_B64 to base64 of the PEM of the CA that signed the manager's certificate")
		return false
	case err != nil:
		d.line("FAIL", "manager reachable", fmt.Sprintf("%s: %v", addr, err), "check NSXT_MANAGER_HOST, DNS, and firewalls between this host and the manager (TCP 443)")
		return false
	}
	conn.Close()
	d.line("PASS", "manager reachable", addr, "")
	if cfg.TLS.InsecureSkipVerify {
		d.line("WARN", "manager TLS", "certificate NOT verified (NSXT_ALLOW_UNVERIFIED_SSL=true)", "pin the manager's CA with NSXT_ROOT_CA_DATA_B64 and drop NSXT_ALLOW_UNVERIFIED_SSL")
	} else {
		d.line("PASS", "manager TLS", "certificate verified", "")
	}
	return true
}

// doctorNSX: credentials, version and cluster status, the Tier-1 and its advertisement.
func doctorNSX(ctx context.Context, cfg config.Config, kube kubernetes.Interface, d *doctor, stderr io.Writer) {
	log, err := daemon.NewLogger(stderr, "console", "error")
	if err != nil {
		d.line("FAIL", "credentials", err.Error(), "")
		return
	}
	conn, err := connect.NSX(ctx, cfg, kube, connect.Options{Limits: nsx.Limits{RateLimit: 20, MaxInFlight: 4, MaxRetries: 1}, BatchSize: 1000, Log: log})
	if err != nil {
		d.line("FAIL", "credentials", err.Error(), "see t1route validate-config")
		return
	}
	if err := conn.WaitReady(ctx, 15*time.Second); err != nil {
		d.line("FAIL", "credentials", err.Error(), "check the Secret named by NSXT_SECRET_NAMESPACE/NSXT_SECRET_NAME")
		return
	}
	// Management Plane API (go-vmware-nsxt) over t1route's own transport:
	// the same TLS, limits and authentication as the Policy API calls.
	mp, err := nsxt.NewAPIClient(&nsxt.Configuration{BasePath: conn.Client.BaseURL() + "/api/v1", HTTPClient: conn.Client.HTTPClient(),
		SkipSessionAuth: true, RemoteAuth: true, DefaultHeader: map[string]string{}, UserAgent: "t1route/" + version})
	if err != nil {
		d.line("FAIL", "credentials", err.Error(), "")
		return
	}
	props, resp, err := mp.NsxComponentAdministrationApi.ReadNodeProperties(ctx)
	switch {
	case resp != nil && (resp.StatusCode == 401 || resp.StatusCode == 403):
		d.line("FAIL", "credentials", fmt.Sprintf("refused by the manager (HTTP %d)", resp.StatusCode),
			"check the user and password, certificate, or VMC token, and that the user has a role allowing Tier-1 static routes (e.g. Network Admin)")
		return
	case err != nil:
		d.line("FAIL", "credentials", fmt.Sprintf("reading the manager's version: %v", err), "")
		return
	}
	d.line("PASS", "credentials", "accepted", "")
	if older(props.NodeVersion, minNSXVersion) {
		d.line("WARN", "manager version", fmt.Sprintf("NSX %s is older than %s, the oldest t1route is built for", props.NodeVersion, minNSXVersion), "upgrade NSX")
	} else {
		d.line("PASS", "manager version", "NSX "+props.NodeVersion, "")
	}
	status, _, err := mp.NsxComponentAdministrationApi.ReadClusterStatus(ctx, nil)
	switch {
	case err != nil:
		d.line("WARN", "manager cluster", fmt.Sprintf("status unknown: %v", err), "the user may lack read access to the cluster status")
	case status.MgmtClusterStatus == nil || status.MgmtClusterStatus.Status != "STABLE":
		st := "unknown"
		if status.MgmtClusterStatus != nil {
			st = status.MgmtClusterStatus.Status
		}
		level := "WARN"
		if st == "UNSTABLE" || st == "NO_CONTROLLERS" {
			level = "FAIL"
		}
		d.line(level, "manager cluster", "management cluster is "+st, "check the NSX Manager cluster in the NSX UI (System > Appliances)")
	default:
		d.line("PASS", "manager cluster", "management cluster STABLE", "")
	}

	t1, err := conn.Client.Tier1(ctx, cfg.RouterPath)
	if err != nil {
		if nsx.IsNotFound(err) {
			d.line("FAIL", "Tier-1", cfg.RouterPath+" does not exist", "create a dedicated Tier-1 gateway connected to your Tier-0 and set NSXT_ROUTER_PATH=/infra/tier-1s/<its id>")
		} else {
			d.line("FAIL", "Tier-1", err.Error(), "")
		}
		return
	}
	d.line("PASS", "Tier-1", fmt.Sprintf("%s (%s)", t1.Path, t1.DisplayName), "")
	if t1.AdvertisesStaticRoutes() {
		d.line("PASS", "route advertisement", "TIER1_STATIC_ROUTES is advertised to the Tier-0", "")
	} else {
		d.line("FAIL", "route advertisement", fmt.Sprintf("the Tier-1 advertises %v, not TIER1_STATIC_ROUTES: pod routes never reach the Tier-0", t1.RouteAdvertisementTypes),
			"in NSX: Tier-1 Gateways > "+t1.ID+" > Route Advertisement > enable All Static Routes")
	}
}

// older reports whether version v is older than min (major.minor).
func older(v, min string) bool {
	parse := func(s string) (int, int) {
		parts := strings.SplitN(s, ".", 3)
		maj, _ := strconv.Atoi(parts[0])
		mnr := 0
		if len(parts) > 1 {
			mnr, _ = strconv.Atoi(parts[1])
		}
		return maj, mnr
	}
	a, b := parse(v)
	c, e := parse(min)
	return a < c || (a == c && b < e)
}

func doctorKube(ctx context.Context, f doctorFlags, d *doctor) kubernetes.Interface {
	rc, err := connect.KubeConfig(f.kubeconfig, userAgent())
	if err != nil {
		d.line("FAIL", "kubernetes", err.Error(), "give --kubeconfig or run in the cluster")
		return nil
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err == nil {
		var v fmt.Stringer
		v, err = kube.Discovery().ServerVersion()
		if err == nil {
			d.line("PASS", "kubernetes", "reachable, "+v.String(), "")
			return kube
		}
	}
	d.line("FAIL", "kubernetes", err.Error(), "check the kubeconfig and that the API server is reachable")
	return nil
}

// doctorCIDRs: the pod range must not overlap the service range.
func doctorCIDRs(ctx context.Context, cfg config.Config, f doctorFlags, kube kubernetes.Interface, d *doctor) {
	var services []netip.Prefix
	source := "--service-cidr"
	if f.serviceCIDR != "" {
		for _, s := range strings.Split(f.serviceCIDR, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				d.line("FAIL", "service range", fmt.Sprintf("--service-cidr %q: %v", s, err), "give CIDRs like 10.96.0.0/12")
				return
			}
			services = append(services, p.Masked())
		}
	} else if kube != nil {
		source = "the cluster's ServiceCIDRs"
		list, err := kube.NetworkingV1().ServiceCIDRs().List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, sc := range list.Items {
				for _, s := range sc.Spec.CIDRs {
					if p, err := netip.ParsePrefix(s); err == nil {
						services = append(services, p.Masked())
					}
				}
			}
		}
	}
	if len(services) == 0 {
		d.line("WARN", "service range", "unknown, so CLUSTER_CIDR's overlap with it is not checked", "give --service-cidr (kube-apiserver's --service-cluster-ip-range)")
		return
	}
	for _, pod := range cfg.ClusterCIDRs {
		for _, svc := range services {
			if pod.Overlaps(svc) {
				d.line("FAIL", "service range", fmt.Sprintf("CLUSTER_CIDR %s overlaps the service range %s (from %s)", pod, svc, source),
					"choose a CLUSTER_CIDR outside the service range, matching kube-controller-manager's --cluster-cidr")
				return
			}
		}
	}
	d.line("PASS", "service range", fmt.Sprintf("CLUSTER_CIDR %v does not overlap %v", cfg.ClusterCIDRs, services), "")
}

// doctorRBAC: may this identity do what the controller does?
func doctorRBAC(ctx context.Context, cfg config.Config, f doctorFlags, getenv func(string) (string, bool), kube kubernetes.Interface, d *doctor) {
	needs := render.ControllerPermissions(cfg, daemon.LeaseNamespace(getenv, f.leaseNamespace))
	var missing []string
	for _, ra := range needs {
		r, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}, metav1.CreateOptions{})
		if err != nil {
			d.line("FAIL", "rbac", err.Error(), "")
			return
		}
		if !r.Status.Allowed {
			what := ra.Verb + " " + ra.Resource
			if ra.Subresource != "" {
				what += "/" + ra.Subresource
			}
			if ra.Name != "" {
				what += " " + ra.Name
			}
			if ra.Namespace != "" {
				what += " in " + ra.Namespace
			}
			missing = append(missing, what)
		}
	}
	if len(missing) > 0 {
		d.line("FAIL", "rbac", "not allowed: "+strings.Join(missing, "; "), "apply the RBAC from t1route render (or deploy/base)")
		return
	}
	d.line("PASS", "rbac", fmt.Sprintf("all %d permissions the controller uses", len(needs)), "")
}
