package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/nsx"
	"github.com/t1route/t1route/podroute/connect"
)

// manager: reachable, and the certificate verified.
func (c *checker) manager(ctx context.Context) bool {
	cfg := c.o.Config
	u, _ := url.Parse(cfg.ManagerURL)
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	tlsConf, err := connect.ManagerTLS(cfg)
	if err != nil {
		c.add(Fail, "manager TLS", err.Error(), "set NSXT_ROOT_CA_DATA_B64 to base64 of the CA's PEM")
		return false
	}
	tlsConf.ServerName = u.Hostname()
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tlsConf}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &certErr):
		c.add(Fail, "manager TLS", fmt.Sprintf("%s answers, but its certificate is not trusted: %v", addr, certErr.Err),
			"set NSXT_ROOT_CA_DATA_B64 to base64 of the PEM of the CA that signed the manager's certificate")
		return false
	case err != nil:
		c.add(Fail, "manager reachable", fmt.Sprintf("%s: %v", addr, err), "check NSXT_MANAGER_HOST, DNS, and firewalls between this host and the manager (TCP 443)")
		return false
	}
	conn.Close()
	c.add(Pass, "manager reachable", addr, "")
	if cfg.TLS.InsecureSkipVerify {
		c.add(Warn, "manager TLS", "certificate NOT verified (NSXT_ALLOW_UNVERIFIED_SSL=true)", "pin the manager's CA with NSXT_ROOT_CA_DATA_B64 and drop NSXT_ALLOW_UNVERIFIED_SSL")
	} else {
		c.add(Pass, "manager TLS", "certificate verified", "")
	}
	return true
}

// nsx: credentials, version and cluster status, the Tier-1 and its advertisement.
func (c *checker) nsx(ctx context.Context, kube kubernetes.Interface) {
	cfg := c.o.Config
	conn, err := connect.NSX(ctx, cfg, kube, connect.Options{Limits: nsxLimits, BatchSize: 1000, Log: c.o.Log})
	if err != nil {
		c.add(Fail, "credentials", nsx.Explain(err), "see t1route validate-config")
		return
	}
	if err := conn.WaitReady(ctx, credentialsWait); err != nil {
		c.add(Fail, "credentials", nsx.Explain(err), "check the Secret named by NSXT_SECRET_NAMESPACE/NSXT_SECRET_NAME")
		return
	}
	st, err := c.o.ManagementPlane(conn.Client).ManagerStatus(ctx)
	var apiErr *nsx.APIError
	switch {
	case nsx.IsNotAuthorized(err):
		// The credentials were accepted; a role scoped to a project may not
		// read the manager's own state. The router checks below say whether
		// the role reaches what t1route needs.
		c.add(Pass, "credentials", "accepted", "")
		c.add(Warn, "manager version", "not readable with this user's role ("+nsx.Explain(err)+")",
			"nothing to do if the router checks pass; a project-scoped role cannot read the manager's version")
		c.router(ctx, conn.Client)
		return
	case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusUnauthorized || apiErr.StatusCode == http.StatusForbidden):
		c.add(Fail, "credentials", fmt.Sprintf("refused by the manager (HTTP %d)", apiErr.StatusCode),
			"check the user and password, certificate, or VMC token, and that the user has a role allowing Tier-1 static routes (e.g. Network Admin)")
		return
	case err != nil:
		c.add(Fail, "credentials", "reading the manager's version: "+nsx.Explain(err), "")
		return
	}
	c.add(Pass, "credentials", "accepted", "")
	if older(st.Version, minNSXVersion) {
		c.add(Warn, "manager version", fmt.Sprintf("NSX %s is older than %s, the oldest t1route is built for", st.Version, minNSXVersion), "upgrade NSX")
	} else {
		c.add(Pass, "manager version", "NSX "+st.Version, "")
	}
	switch {
	case st.ClusterErr != nil:
		c.add(Warn, "manager cluster", "status unknown: "+nsx.Explain(st.ClusterErr), "the user may lack read access to the cluster status")
	case st.Cluster == nsx.ClusterUnstable || st.Cluster == nsx.ClusterNoControllers:
		c.add(Fail, "manager cluster", "management cluster is "+st.Cluster, "check the NSX Manager cluster in the NSX UI (System > Appliances)")
	case st.Cluster != nsx.ClusterStable:
		c.add(Warn, "manager cluster", "management cluster is "+st.Cluster, "check the NSX Manager cluster in the NSX UI (System > Appliances)")
	default:
		c.add(Pass, "manager cluster", "management cluster STABLE", "")
	}

	c.router(ctx, conn.Client)
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
