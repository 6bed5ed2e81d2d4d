// Package ovs is a small Open vSwitch library with no knowledge of t1route:
// bridges and ports through OVSDB (libovsdb), flow tables through
// ovs-ofctl (OpenFlow 1.3, atomic bundles), the syntax of ovs-ofctl's
// output, and the host networking a bridge needs (gateway addresses and
// routes through netlink on Linux; other systems build, and say so when
// called). What the flows mean is package pipeline's.
package ovs
