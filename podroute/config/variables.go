// Package config is t1route's NSXT_* configuration: the variables operators
// already use for routable pods on vSphere with NSX, each with a flag of the
// same meaning (flags win), parsed and validated once into a typed Config.
// It is pure: it reads settings and local files, never the network.
package config

import (
	"github.com/spf13/pflag"
)

// Variable is one configuration setting: an environment variable and the
// flag of the same meaning.
type Variable struct {
	Env, Flag string
	// Secret values are never shown: validate-config prints <redacted>, and
	// a problem never quotes them.
	Secret bool
	// Credential values are rendered into the credentials Secret, not the
	// ConfigMap. Every Secret variable is one; the user name is one too.
	Credential bool
	// InlinedAs, for a variable naming a local file, is the data variable
	// that carries the file's content when the configuration is rendered for
	// another machine.
	InlinedAs     string
	Help, Example string
}

// The NSXT_* variables, in the order validate-config lists them.
var (
	varEnabled        = Variable{Env: "NSXT_POD_ROUTING_ENABLED", Flag: "pod-routing-enabled", Help: "true to program pod routes; false idles the controller", Example: "true"}
	varManager        = Variable{Env: "NSXT_MANAGER_HOST", Flag: "manager-host", Help: "NSX Manager: host, host:port, or https URL (also VMC's reverse-proxy URL)", Example: "nsx.example.com"}
	varRouter         = Variable{Env: "NSXT_ROUTER_PATH", Flag: "router-path", Help: "policy path of the dedicated Tier-1 gateway (/infra/tier-1s/<id>, or /orgs/<org>/projects/<p>/infra/tier-1s/<id> in a project) or of a VPC (/orgs/<org>/projects/<p>/vpcs/<vpc>)", Example: "/infra/tier-1s/t1-routable"}
	varClusterCIDR    = Variable{Env: "CLUSTER_CIDR", Flag: "cluster-cidr", Help: "pod CIDR, or an IPv4 and an IPv6 CIDR comma-separated", Example: "100.96.0.0/11"}
	varAllowShortCIDR = Variable{Env: "NSXT_ALLOW_SHORT_CLUSTER_CIDR", Flag: "allow-short-cluster-cidr", Help: "true accepts a CLUSTER_CIDR shorter than /8 (IPv4) or /32 (IPv6); every other CLUSTER_CIDR rule still applies", Example: "false"}
	varClusterName    = Variable{Env: "CLUSTER_NAME", Flag: "cluster-name", Help: "cluster name recorded on routes (default kubernetes)", Example: "prod-east-1"}
	varCertData       = Variable{Env: "NSXT_CLIENT_CERT_DATA", Flag: "client-cert-data", Secret: true, Credential: true, Help: "client certificate, PEM or base64 of PEM", Example: "<base64 of the certificate PEM>"}
	varKeyData        = Variable{Env: "NSXT_CLIENT_CERT_KEY_DATA", Flag: "client-cert-key-data", Secret: true, Credential: true, Help: "client certificate's private key, PEM or base64 of PEM", Example: "<base64 of the key PEM>"}
	varCertFile       = Variable{Env: "NSXT_CLIENT_CERT_FILE", Flag: "client-cert-file", InlinedAs: "NSXT_CLIENT_CERT_DATA", Help: "client certificate file (re-read when it changes)", Example: "/etc/t1route/nsx/tls.crt"}
	varKeyFile        = Variable{Env: "NSXT_CLIENT_KEY_FILE", Flag: "client-key-file", InlinedAs: "NSXT_CLIENT_CERT_KEY_DATA", Help: "client certificate's key file (re-read when it changes)", Example: "/etc/t1route/nsx/tls.key"}
	varRootCA         = Variable{Env: "NSXT_ROOT_CA_DATA_B64", Flag: "root-ca-data-b64", Help: "base64 of the PEM of the CA that signed the manager's certificate", Example: "$(base64 -w0 ca.pem)"}
	varInsecure       = Variable{Env: "NSXT_ALLOW_UNVERIFIED_SSL", Flag: "allow-unverified-ssl", Help: "true disables TLS verification (not for production)", Example: "false"}
	varVMCHost        = Variable{Env: "NSXT_VMC_AUTH_HOST", Flag: "vmc-auth-host", Help: "VMware Cloud Services host for token exchange", Example: "console.cloud.vmware.com"}
	varVMCToken       = Variable{Env: "NSXT_VMC_ACCESS_TOKEN", Flag: "vmc-access-token", Secret: true, Credential: true, Help: "VMC API token (exchanged for short-lived access tokens)", Example: "<VMC API token>"}
	varSecretNS       = Variable{Env: "NSXT_SECRET_NAMESPACE", Flag: "secret-namespace", Help: "namespace of the Secret holding username and password", Example: "t1route-system"}
	varSecretName     = Variable{Env: "NSXT_SECRET_NAME", Flag: "secret-name", Help: "name of the Secret holding username and password", Example: "nsx-credentials"}
	varUsername       = Variable{Env: "NSXT_USERNAME", Flag: "username", Credential: true, Help: "NSX user", Example: "admin"}
	varPassword       = Variable{Env: "NSXT_PASSWORD", Flag: "password", Secret: true, Credential: true, Help: "NSX user's password", Example: "<password>"}
	varRemoteAuth     = Variable{Env: "NSXT_REMOTE_AUTH", Flag: "remote-auth", Help: "true for vIDM/LDAP users (Authorization: Remote)", Example: "true"}
	varSessionAuth    = Variable{Env: "NSXT_SESSION_AUTH", Flag: "session-auth", Help: "false sends credentials on every request instead of an NSX session", Example: "true"}
	varMgmtCIDR       = Variable{Env: "NSXT_MANAGEMENT_CIDR", Flag: "management-cidr", Help: "the vCenter management network, comma-separated CIDRs: pods other than the vSphere cloud provider's and CSI driver's are denied egress to it (the controller keeps the guard's ClusterNetworkPolicies)", Example: "203.0.113.0/28"}
	varMgmtAllowed    = Variable{Env: "NSXT_MANAGEMENT_ALLOWED_PODS", Flag: "management-allowed-pods", Help: "more pods allowed to reach NSXT_MANAGEMENT_CIDR, comma-separated namespace:selector", Example: "tools:app=backup"}
	varNodeStatusQPS  = Variable{Env: "T1ROUTE_NODE_STATUS_QPS", Flag: "node-status-qps", Help: "node condition patches per second, through a client of their own (default 500: 10,000 nodes in 20 s); lower it for a small API server", Example: "500"}
)

// Variables returns the variable table, in the order validate-config lists it.
func Variables() []Variable {
	return []Variable{varEnabled, varManager, varRouter, varClusterCIDR, varAllowShortCIDR, varClusterName, varCertData, varKeyData,
		varCertFile, varKeyFile, varRootCA, varInsecure, varVMCHost, varVMCToken, varSecretNS, varSecretName,
		varUsername, varPassword, varRemoteAuth, varSessionAuth, varMgmtCIDR, varMgmtAllowed, varNodeStatusQPS}
}

// Settings look variables up: a flag that was set wins over the environment.
type Settings struct {
	Flags  *pflag.FlagSet              // may be nil
	Getenv func(string) (string, bool) // os.LookupEnv in a program
}

// FromMap is Settings of an environment given as a map (tests, the demo,
// bench: settings built in code go through the same parser).
func FromMap(env map[string]string) Settings {
	return Settings{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
}

// Lookup returns a variable's raw value and where it came from ("flag" or
// "env"); ok is false when it is not set (an empty variable is not set).
func (s Settings) Lookup(v Variable) (value, source string, ok bool) {
	if s.Flags != nil {
		if f := s.Flags.Lookup(v.Flag); f != nil && f.Changed {
			return f.Value.String(), "flag", true
		}
	}
	if s.Getenv != nil {
		if val, ok := s.Getenv(v.Env); ok && val != "" {
			return val, "env", true
		}
	}
	return "", "", false
}

// AddFlags registers a flag for every configuration variable.
func AddFlags(fs *pflag.FlagSet) {
	for _, v := range Variables() {
		help := v.Help + " (env " + v.Env + ")"
		if v.Secret {
			help += "; prefer the environment: flags show in the process list"
		}
		fs.String(v.Flag, "", help)
	}
}
