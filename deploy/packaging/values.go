package packaging

import (
	"github.com/t1route/t1route/podroute/version"
	"strconv"
	"strings"

	"github.com/t1route/t1route/deploy/render"
	"github.com/t1route/t1route/podroute/config"
)

// Value is one setting of the chart and the package: a path in the values
// (["config", "managerHost"]) and, for the NSXT_* settings, the variable it
// stands for. Both schemas, values.yaml and the templates' tables come from
// this one list.
type Value struct {
	Path []string
	// Env is the configuration variable (config.Variables) it sets; empty
	// for deployment options (namespace, images, datapath, port).
	Env string
	// Credential values go to the credentials Secret, the others to the
	// ConfigMap (as render does).
	Credential bool
	Type       string // "string", "boolean", "integer" or "number"
	// Default is the value's default; nil (with Nullable) for the NSXT_*
	// settings, which render leaves out when unset.
	Default  any
	Nullable bool
	Enum     []string
	Pattern  string
	Min, Max int // integers only; 0 and 0: no bounds
	Help     string
}

// Key is the value's path joined with dots (config.managerHost).
func (v Value) Key() string { return strings.Join(v.Path, ".") }

// DefaultImage is the chart's and the package's default t1route image:
// this version's release image (render refuses :latest, which the registry
// may serve as another build at each pull).
var DefaultImage = render.DefaultImageRepo + ":" + version.Tag()

// Values lists every value: the deployment options, then one per NSXT_*
// variable (config: settings; credentials: secrets and the user name).
// Variables naming a local file (NSXT_CLIENT_CERT_FILE) have no value: a
// chart's values travel to the cluster, so the file's content is given
// instead (helm --set-file credentials.clientCertData=tls.crt).
func Values() []Value {
	vals := []Value{
		{Path: []string{"namespace"}, Type: "string", Default: render.DefaultNamespace, Pattern: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`,
			Help: "namespace t1route runs in (created by the chart, labelled pod-security privileged)"},
		{Path: []string{"image"}, Type: "string", Default: DefaultImage, Pattern: `^[^@\s]+:[^:/@\s]+$`,
			Help: "t1route image, registry/repository:tag (t1route and t1route-cni in /usr/local/bin)"},
		{Path: []string{"nodeImage"}, Type: "string", Default: "",
			Help: "node image for the agent pod (t1route, t1route-cni and Open vSwitch); empty: image's repository + \"-node\", same tag"},
		{Path: []string{"datapathType"}, Type: "string", Default: render.DatapathTypes[0], Enum: render.DatapathTypes,
			Help: "OVS datapath: system (kernel module) or netdev (userspace)"},
		{Path: []string{"controllerPort"}, Type: "integer", Default: render.DefaultControllerPort, Min: 1, Max: 65535,
			Help: "controller metrics and health port, a host port on the nodes (the controller uses host networking)"},
		{Path: []string{"adoptCloudProviderRoutes"}, Type: "boolean", Default: false,
			Help: "run the controller with --adopt-cloud-provider-routes (migrating from the vSphere cloud provider)"},
	}
	for _, v := range config.Variables() {
		if v.InlinedAs != "" {
			continue
		}
		group := "config"
		if v.Credential {
			group = "credentials"
		}
		val := Value{Path: []string{group, valueName(v.Env)}, Env: v.Env, Credential: v.Credential, Type: valueType(v),
			Nullable: true, Help: v.Help + " (" + v.Env + ")"}
		if v.Env == "NSXT_POD_ROUTING_ENABLED" {
			// render needs it true: the one setting with a default.
			val.Default = true
		}
		vals = append(vals, val)
	}
	return vals
}

// valueType guesses a variable's type from its example: true/false are
// booleans, numbers are numbers, the rest strings.
func valueType(v config.Variable) string {
	switch {
	case v.Example == "true" || v.Example == "false":
		return "boolean"
	case v.Secret:
		return "string"
	}
	if _, err := strconv.ParseFloat(v.Example, 64); err == nil {
		return "number"
	}
	return "string"
}

// acronyms keep their case inside a value name (clusterCIDR, rootCADataB64).
var acronyms = map[string]bool{"CIDR": true, "CA": true, "SSL": true, "QPS": true, "B64": true, "URL": true, "IP": true, "ID": true}

// valueName is a variable's name in the values: without the NSXT_ or
// T1ROUTE_ prefix, lower camel case (NSXT_MANAGER_HOST -> managerHost).
func valueName(env string) string {
	env = strings.TrimPrefix(strings.TrimPrefix(env, "NSXT_"), "T1ROUTE_")
	var b strings.Builder
	for i, w := range strings.Split(env, "_") {
		switch {
		case i == 0:
			b.WriteString(strings.ToLower(w))
		case acronyms[w]:
			b.WriteString(w)
		default:
			b.WriteString(w[:1] + strings.ToLower(w[1:]))
		}
	}
	return b.String()
}

// valueFor returns the value standing for variable env.
func valueFor(env string) Value {
	for _, v := range Values() {
		if v.Env == env {
			return v
		}
	}
	panic("packaging: no value for " + env)
}
