// Package podroute is the route controller: it keeps one static route per
// node podCIDR on the cluster's NSX Tier-1 (desired state from the Node
// objects, actual state from NSX, a pure diff, batched apply, node
// conditions and events).
//
// The tree, controller side first, node side under node/:
//
//	podroute            the route controller (desired, actual, diff, apply, check, adopt)
//	podroute/config     configuration: every variable, parsed once into typed settings
//	podroute/connect    an NSX client and a Kubernetes client from the configuration
//	podroute/daemon     what every long-running command shares: logging, health, leases
//	podroute/doctor     preflight checks of NSX, credentials, the Tier-1 and RBAC
//	podroute/gc         garbage collection of deleted clusters' routes, cleanup
//	podroute/guard      the management-network guard's ClusterNetworkPolicies, kept by the leader
//	podroute/probe      ping and HTTP checks that pods are routable
//	podroute/node/agent       the node agent: bridge, gateway, CNI install, flow sync, metrics
//	podroute/node/cni         the CNI plugin (no Kubernetes client)
//	podroute/node/proxy       the service table: Services and EndpointSlices, read as kube-proxy does
//	podroute/node/hostguard   the management guard in the node's kernel (iptables), for what kube-proxy translates
//	podroute/node/pipeline    the OpenFlow pipeline: forwarding, Service translation and policy tables, flow sync
//	podroute/node/ovs         a plain Open vSwitch library (OVSDB, ovs-ofctl, host networking)
//	podroute/node/neighbors   the node's permanent neighbour entries for its pods on the gateway
//	podroute/node/policy      NetworkPolicy and ClusterNetworkPolicy compiled per node
//	podroute/node/policy/rules  the compiled rules: what the pipeline renders
//	podroute/node/introspect  `t1route get ...`: what a node's datapath holds, and why
//
// Imports run down this list's layers only: the node side never imports the
// controller side, and ovs imports nothing of t1route (cmd/t1route's
// TestLayering checks it).
package podroute
