// Package introspect shows what a node's datapath is doing, in the style of
// antctl: the pods attached to the bridge, the OpenFlow flows with their
// counters (all, one table's, or those carrying one pod), and the agent's
// own state; and publishes a small per-node summary to the API server so
// that kubectl alone shows every node's datapath health.
package introspect
