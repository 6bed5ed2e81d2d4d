package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/t1route/t1route/auth"
	"github.com/t1route/t1route/nsx"
)

// authCandidate is one way to authenticate found (complete) in the settings.
type authCandidate struct {
	mode AuthMode
	vars []string
}

// authSettings finds every way to authenticate that is set, checks each,
// and chooses the most secure: client certificate, VMC token, Kubernetes
// Secret, then username and password.
func (p *parser) authSettings(required bool) {
	a := &p.cfg.Auth
	a.Remote = p.boolean(varRemoteAuth, false)
	a.SessionAuth = p.boolean(varSessionAuth, true)
	var found []authCandidate

	if c, ok := p.clientCert(); ok {
		found = append(found, c)
	}
	host, hostSet := p.str(varVMCHost)
	token, tokenSet := p.secretValue(varVMCToken)
	if hostSet || tokenSet {
		switch {
		case !hostSet:
			p.bad(varVMCHost, "is required with NSXT_VMC_ACCESS_TOKEN")
		case !tokenSet:
			p.bad(varVMCToken, "is required with NSXT_VMC_AUTH_HOST")
		default:
			if h, ok := p.vmcHost(host); ok {
				a.VMCAuthHost, a.VMCToken = h, Secret(token)
				found = append(found, authCandidate{AuthVMCToken, []string{varVMCHost.Env, varVMCToken.Env}})
			}
		}
	}
	ns, nsSet := p.str(varSecretNS)
	name, nameSet := p.str(varSecretName)
	if nsSet || nameSet {
		ok := true
		if !nsSet {
			p.bad(varSecretNS, "is required with NSXT_SECRET_NAME")
			ok = false
		} else if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			p.bad(varSecretNS, fmt.Sprintf("%q is not a valid namespace name: %s", ns, errs[0]))
			ok = false
		}
		if !nameSet {
			p.bad(varSecretName, "is required with NSXT_SECRET_NAMESPACE")
			ok = false
		} else if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			p.bad(varSecretName, fmt.Sprintf("%q is not a valid Secret name: %s", name, errs[0]))
			ok = false
		}
		if ok {
			a.SecretNamespace, a.SecretName = ns, name
			found = append(found, authCandidate{AuthSecret, []string{varSecretNS.Env, varSecretName.Env}})
		}
	}
	user, userSet := p.str(varUsername)
	pass, passSet := p.secretValue(varPassword)
	if userSet || passSet {
		switch {
		case !userSet:
			p.bad(varUsername, "is required with NSXT_PASSWORD")
		case !passSet:
			p.bad(varPassword, "is required with NSXT_USERNAME")
		default:
			a.Username, a.Password = user, Secret(pass)
			found = append(found, authCandidate{AuthPassword, []string{varUsername.Env, varPassword.Env}})
		}
	}

	if len(found) == 0 {
		if required && !p.hasAuthProblem() {
			p.problems = append(p.problems, Problem{Var: "NSXT authentication", What: "no way to authenticate is set; set one of: " +
				"NSXT_CLIENT_CERT_DATA and NSXT_CLIENT_CERT_KEY_DATA (or NSXT_CLIENT_CERT_FILE and NSXT_CLIENT_KEY_FILE); " +
				"NSXT_VMC_AUTH_HOST and NSXT_VMC_ACCESS_TOKEN; NSXT_SECRET_NAMESPACE and NSXT_SECRET_NAME; NSXT_USERNAME and NSXT_PASSWORD"})
		}
		return
	}
	chosen := found[0]
	a.Mode = chosen.mode
	a.Why = strings.Join(chosen.vars, " and ") + " are set"
	if len(found) > 1 {
		var ignored []string
		for _, c := range found[1:] {
			ignored = append(ignored, c.vars...)
		}
		a.Why += "; when several ways are set the most secure wins (client certificate, VMC token, Kubernetes Secret, username/password)"
		p.cfg.Notes = append(p.cfg.Notes, "also set but not used: "+strings.Join(ignored, ", "))
	}
	if a.Mode == AuthClientCert || a.Mode == AuthVMCToken {
		for _, v := range []Variable{varRemoteAuth, varSessionAuth} {
			if _, set := p.cfg.Sources[v.Env]; set {
				p.cfg.Notes = append(p.cfg.Notes, fmt.Sprintf("%s applies to username/password authentication and is ignored with %s", v.Env, a.Mode))
			}
		}
	}
}

func (p *parser) hasAuthProblem() bool {
	for _, pr := range p.problems {
		if strings.HasPrefix(pr.Var, "NSXT_CLIENT") || strings.HasPrefix(pr.Var, "NSXT_VMC") || strings.HasPrefix(pr.Var, "NSXT_SECRET") ||
			pr.Var == varUsername.Env || pr.Var == varPassword.Env {
			return true
		}
	}
	return false
}

// secretValue reads a secret variable as given (not trimmed: spaces may be part of it).
func (p *parser) secretValue(v Variable) (string, bool) {
	val, from, ok := p.s.Lookup(v)
	if ok {
		p.cfg.Sources[v.Env] = from
	}
	return val, ok
}

// clientCert reads the certificate as data or as files; it reports a
// candidate when the pair is complete and valid.
func (p *parser) clientCert() (authCandidate, bool) {
	certPEM, certSet := p.readSecretPEM(varCertData)
	keyPEM, keySet := p.readSecretPEM(varKeyData)
	certFile, certFileSet := p.str(varCertFile)
	keyFile, keyFileSet := p.str(varKeyFile)
	dataSet, filesSet := certSet || keySet, certFileSet || keyFileSet
	a := &p.cfg.Auth
	switch {
	case dataSet && filesSet:
		p.bad(varCertFile, "is set together with NSXT_CLIENT_CERT_DATA; give the certificate as data or as files, not both")
		return authCandidate{}, false
	case dataSet:
		if !certSet {
			p.bad(varCertData, "is required with NSXT_CLIENT_CERT_KEY_DATA")
		}
		if !keySet {
			p.bad(varKeyData, "is required with NSXT_CLIENT_CERT_DATA")
		}
		if certPEM == nil || keyPEM == nil {
			return authCandidate{}, false
		}
		if !p.keyPair(varCertData, varKeyData, certPEM, keyPEM) {
			return authCandidate{}, false
		}
		a.CertPEM, a.KeyPEM = Secret(certPEM), Secret(keyPEM)
		return authCandidate{AuthClientCert, []string{varCertData.Env, varKeyData.Env}}, true
	case filesSet:
		if !certFileSet {
			p.bad(varCertFile, "is required with NSXT_CLIENT_KEY_FILE")
			return authCandidate{}, false
		}
		if !keyFileSet {
			p.bad(varKeyFile, "is required with NSXT_CLIENT_CERT_FILE")
			return authCandidate{}, false
		}
		certPEM, keyPEM := readFile(varCertFile, certFile, p), readFile(varKeyFile, keyFile, p)
		if certPEM == nil || keyPEM == nil || !p.keyPair(varCertFile, varKeyFile, certPEM, keyPEM) {
			return authCandidate{}, false
		}
		a.CertFile, a.KeyFile = certFile, keyFile
		return authCandidate{AuthClientCert, []string{varCertFile.Env, varKeyFile.Env}}, true
	}
	return authCandidate{}, false
}

// keyPair checks a certificate and key, blaming the variable at fault.
func (p *parser) keyPair(certVar, keyVar Variable, certPEM, keyPEM []byte) bool {
	_, err := auth.ParseKeyPair(certPEM, keyPEM)
	if err == nil {
		return true
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "does not match"):
		p.bad(keyVar, msg+"; give the key of that certificate")
	case strings.HasPrefix(msg, "the private key") || strings.HasPrefix(msg, "the key"):
		p.bad(keyVar, msg)
	default:
		p.bad(certVar, msg)
	}
	return false
}

// vmcHost accepts host, host:port or https://host[:port] with no path. The
// value is never quoted whole in a problem: a query or user info may hold
// the refresh token or a password, and a problem is printed (validate-config,
// render, doctor, every command's start).
func (p *parser) vmcHost(v string) (string, bool) {
	raw := v
	if !strings.Contains(v, "://") {
		raw = "https://" + v
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" && u.User == nil:
		p.bad(varVMCHost, "is not a host name (host or host:port); give only the host, e.g. console.cloud.vmware.com")
		return "", false
	case u.User != nil:
		p.bad(varVMCHost, "holds user info (user[:password]@, not shown): give only the host; the API token goes in NSXT_VMC_ACCESS_TOKEN")
		return "", false
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(v, "#"):
		p.bad(varVMCHost, fmt.Sprintf("has a query or fragment (not shown: it may hold a token) after the host %s: give only the host; the API token goes in NSXT_VMC_ACCESS_TOKEN", safeHost(u)))
		return "", false
	case u.Scheme != "https":
		p.bad(varVMCHost, fmt.Sprintf("scheme %q is not https: the API token is sent to this host", u.Scheme))
		return "", false
	case strings.Trim(u.Path, "/") != "":
		p.bad(varVMCHost, fmt.Sprintf("has a path after the host %s: give only the host; t1route adds %s", safeHost(u), auth.CSPAuthorizePath))
		return "", false
	}
	if !validPort(u.Port()) {
		p.bad(varVMCHost, fmt.Sprintf("port %q is not between 1 and 65535", u.Port()))
		return "", false
	}
	if host := u.Hostname(); net.ParseIP(host) == nil && len(validation.IsDNS1123Subdomain(strings.ToLower(host))) > 0 {
		p.bad(varVMCHost, fmt.Sprintf("%q is not a valid host name or IP address", host))
		return "", false
	}
	return u.Host, true
}

// safeHost is u's host for a message: printable, at most 100 characters.
func safeHost(u *url.URL) string { return nsx.Sanitize(u.Host, 100) }
