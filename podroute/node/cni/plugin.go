// Package cni is t1route's CNI plugin (spec 1.0.0): it attaches a pod to the
// node's OVS bridge with a veth, an address from the node's podCIDR
// (host-local IPAM, in process) and a default route via the gateway, then
// asks the node agent (the only flow writer) to rebuild the bridge's flows,
// so the pod forwards before ADD returns.
package cni

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"

	"github.com/t1route/t1route/podroute/node/ovs"

	"github.com/t1route/t1route/podroute/node/pipeline"
)

// NetConf is the plugin's entry in the conflist the agent writes.
type NetConf struct {
	types.NetConf
	Bridge      string `json:"bridge"`
	GatewayPort string `json:"gatewayPort"`
	OVSRunDir   string `json:"ovsRunDir"`
	// AgentSocket is the agent's flow-sync socket (default
	// <ovsRunDir>/t1route-cni.sock, where the agent listens).
	AgentSocket       string `json:"agentSocket"`
	MTU               int    `json:"mtu"`
	DisableTxChecksum bool   `json:"disableTxChecksumOffload"`
}

// Versions are the CNI spec versions the plugin speaks.
var Versions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Funcs are the plugin's commands for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs { return skel.CNIFuncs{Add: Add, Del: Del, Check: Check} }

// opTimeout bounds one invocation's OVSDB work.
const opTimeout = 30 * time.Second

// agentWait is how long an ADD waits for an agent to listen (a node
// booting, an agent restarting); the agent itself then waits up to 20 s for
// its policy enforcer. Within opTimeout's 30 s.
const agentWait = 8 * time.Second

func loadConf(data []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "network configuration is not valid JSON", err.Error())
	}
	var missing []string
	if conf.Bridge == "" {
		missing = append(missing, "bridge")
	}
	if conf.OVSRunDir == "" {
		missing = append(missing, "ovsRunDir")
	}
	if conf.IPAM.Type == "" {
		missing = append(missing, "ipam")
	}
	if len(missing) > 0 {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			"network configuration lacks "+strings.Join(missing, ", "),
			"the t1route agent writes a complete conflist; is it running on this node?")
	}
	if conf.IPAM.Type != "host-local" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("ipam type %q is not supported", conf.IPAM.Type), `t1route-cni allocates with "host-local"`)
	}
	if conf.MTU == 0 {
		conf.MTU = 1500
	}
	if conf.AgentSocket == "" {
		conf.AgentSocket = filepath.Join(conf.OVSRunDir, "t1route-cni.sock")
	}
	return conf, nil
}

// HostVethName is the node-side veth of a pod interface: deterministic so a
// retried ADD or a DEL finds it, 14 characters (Linux allows 15).
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return "t1r" + hex.EncodeToString(sum[:])[:11]
}

// podIdentity reads K8S_POD_NAMESPACE and K8S_POD_NAME from CNI_ARGS.
func podIdentity(args string) (namespace, name string) {
	for _, kv := range strings.Split(args, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "K8S_POD_NAMESPACE":
			namespace = v
		case "K8S_POD_NAME":
			name = v
		}
	}
	return namespace, name
}

// Add attaches the pod.
func Add(args *skel.CmdArgs) (err error) {
	conf, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("pod network namespace %q: %v", args.Netns, err), "")
	}
	defer netns.Close()

	ipConfs, release, err := allocate(args)
	if err != nil {
		return err
	}
	hostName := HostVethName(args.ContainerID, args.IfName)
	defer func() {
		if err != nil {
			release()
			_ = ip.DelLinkByName(hostName)
		}
	}()

	result := &current.Result{CNIVersion: current.ImplementedSpecVersion, IPs: ipConfs}
	for _, c := range ipConfs { // a default route per family, via that family's gateway
		if c.Address.IP.To4() != nil {
			result.Routes = append(result.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, GW: c.Gateway})
		} else {
			result.Routes = append(result.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, GW: c.Gateway})
		}
	}
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return err
	}
	defer hostNS.Close()
	var hostIf, contIf net.Interface
	if err := netns.Do(func(ns.NetNS) error {
		var err error
		hostIf, contIf, err = ip.SetupVethWithName(args.IfName, hostName, conf.MTU, "", hostNS)
		if err != nil {
			return err
		}
		result.Interfaces = []*current.Interface{
			{Name: hostIf.Name, Mac: hostIf.HardwareAddr.String()},
			{Name: contIf.Name, Mac: contIf.HardwareAddr.String(), Sandbox: args.Netns},
		}
		for _, c := range result.IPs {
			c.Interface = current.Int(1)
		}
		// The pod's addresses are allocated, not guessed: skip duplicate
		// address detection, which would hold an IPv6 address for a second.
		if err := disableDAD(args.IfName); err != nil {
			return err
		}
		if err := ipam.ConfigureIface(args.IfName, result); err != nil {
			return err
		}
		if conf.DisableTxChecksum {
			return ovs.DisableTxChecksum(args.IfName)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("set up %s in the pod: %w", args.IfName, err)
	}
	if err := ovs.IsolateHostPort(hostName); err != nil {
		return err
	}

	db, err := ovs.DialOVSDB(ctx, conf.OVSRunDir, logr.Discard())
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	defer db.Close()
	podNS, podName := podIdentity(args.Args)
	var ips []string
	for _, c := range result.IPs {
		ips = append(ips, c.Address.IP.String())
	}
	ids := map[string]string{
		pipeline.KeyContainerID: args.ContainerID, pipeline.KeyIfName: args.IfName,
		pipeline.KeyPodNamespace: podNS, pipeline.KeyPodName: podName,
		pipeline.KeyIPs: strings.Join(ips, ","), pipeline.KeyMAC: contIf.HardwareAddr.String(),
	}
	if err := db.EnsurePort(ctx, conf.Bridge, hostName, "", ids); err != nil {
		return fmt.Errorf("plug %s into %s: %w", hostName, conf.Bridge, err)
	}
	defer func() {
		if err != nil {
			_ = db.DeletePort(context.Background(), conf.Bridge, hostName)
		}
	}()
	if _, err := db.WaitOFPort(ctx, hostName); err != nil {
		return err
	}
	if err := SyncFlowsWaiting(ctx, conf.AgentSocket, agentWait); err != nil {
		return agentError(fmt.Errorf("install flows for %s: %w", hostName, err))
	}
	return types.PrintResult(result, conf.CNIVersion)
}

// allocate reserves the pod's addresses with host-local's allocator and
// store (the same on-disk format as the host-local plugin).
func allocate(args *skel.CmdArgs) ([]*current.IPConfig, func(), error) {
	ipamConf, _, err := allocator.LoadIPAMConfig(args.StdinData, "")
	if err != nil {
		return nil, nil, types.NewError(types.ErrInvalidNetworkConfig, "ipam configuration: "+err.Error(), "")
	}
	store, err := disk.New(ipamConf.Name, ipamConf.DataDir)
	if err != nil {
		return nil, nil, types.NewError(types.ErrIOFailure, "ipam store: "+err.Error(), "")
	}
	defer store.Close()
	var out []*current.IPConfig
	release := func() { _ = releaseAll(args) }
	for idx, rs := range ipamConf.Ranges {
		a := allocator.NewIPAllocator(&rs, store, idx)
		c, err := a.Get(args.ContainerID, args.IfName, nil)
		if err != nil {
			release()
			return nil, nil, types.NewError(types.ErrInternal, fmt.Sprintf("allocate an address from %s: %v", rs.String(), err),
				"the node's podCIDR may be exhausted")
		}
		out = append(out, c)
	}
	return out, release, nil
}

func releaseAll(args *skel.CmdArgs) error {
	ipamConf, _, err := allocator.LoadIPAMConfig(args.StdinData, "")
	if err != nil {
		return err
	}
	store, err := disk.New(ipamConf.Name, ipamConf.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	var errs []error
	for idx, rs := range ipamConf.Ranges {
		errs = append(errs, allocator.NewIPAllocator(&rs, store, idx).Release(args.ContainerID, args.IfName))
	}
	return errors.Join(errs...)
}

// Del detaches the pod and frees its address. Idempotent: whatever is
// already gone (netns, veth, port, reservation) is skipped.
func Del(args *skel.CmdArgs) error {
	conf, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	hostName := HostVethName(args.ContainerID, args.IfName)
	db, err := ovs.DialOVSDB(ctx, conf.OVSRunDir, logr.Discard())
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	defer db.Close()
	if err := db.DeletePort(ctx, conf.Bridge, hostName); err != nil {
		return fmt.Errorf("unplug %s: %w", hostName, err)
	}
	if err := ip.DelLinkByName(hostName); err != nil && !errors.Is(err, ip.ErrLinkNotFound) {
		return fmt.Errorf("delete %s: %w", hostName, err)
	}
	if args.Netns != "" {
		// The pod end goes with the host end; this covers a half-built ADD.
		_ = ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
			if l, err := netlink.LinkByName(args.IfName); err == nil {
				return netlink.LinkDel(l)
			}
			return nil
		})
	}
	if err := releaseAll(args); err != nil {
		return fmt.Errorf("release the pod's address: %w", err)
	}
	// Without an agent the port's flows stay until it starts, and it
	// rebuilds the table then; a pod's teardown must not wait for that.
	if err := SyncFlows(ctx, conf.AgentSocket); err != nil && !errors.Is(err, ErrAgentDown) {
		return agentError(fmt.Errorf("remove flows of %s: %w", hostName, err))
	}
	return nil
}

// Check verifies that the pod is attached as ADD left it: its port on the
// bridge with this container's identity, its addresses and routes in the pod,
// and its address reserved.
func Check(args *skel.CmdArgs) error {
	conf, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	if conf.RawPrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs prevResult", "")
	}
	if err := version.ParsePrevResult(&conf.NetConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "prevResult: "+err.Error(), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	hostName := HostVethName(args.ContainerID, args.IfName)
	db, err := ovs.DialOVSDB(ctx, conf.OVSRunDir, logr.Discard())
	if err != nil {
		return types.NewError(types.ErrTryAgainLater, err.Error(), "")
	}
	defer db.Close()
	ports, err := db.Ports(ctx, conf.Bridge)
	if err != nil {
		return err
	}
	found := false
	for _, p := range ports {
		if p.Name == hostName {
			if p.ExternalIDs[pipeline.KeyContainerID] != args.ContainerID {
				return fmt.Errorf("port %s belongs to container %q, not %q", hostName, p.ExternalIDs[pipeline.KeyContainerID], args.ContainerID)
			}
			if p.OFPort <= 0 {
				return fmt.Errorf("port %s is not built by ovs-vswitchd: %s", hostName, p.Error)
			}
			found = true
		}
	}
	if !found {
		return fmt.Errorf("port %s of container %s is not on bridge %s", hostName, args.ContainerID, conf.Bridge)
	}
	ipamConf, _, err := allocator.LoadIPAMConfig(args.StdinData, "")
	if err != nil {
		return err
	}
	store, err := disk.New(ipamConf.Name, ipamConf.DataDir)
	if err != nil {
		return err
	}
	reserved := store.FindByID(args.ContainerID, args.IfName)
	store.Close()
	if !reserved {
		return fmt.Errorf("no address is reserved for container %s", args.ContainerID)
	}
	return ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		if err := ip.ValidateExpectedInterfaceIPs(args.IfName, prev.IPs); err != nil {
			return err
		}
		return ip.ValidateExpectedRoute(prev.Routes)
	})
}

// disableDAD turns off IPv6 duplicate address detection on a link of the
// current network namespace (no error where IPv6 is off).
func disableDAD(link string) error {
	path := "/proc/sys/net/ipv6/conf/" + link + "/accept_dad"
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
		return fmt.Errorf("turn off IPv6 duplicate address detection on %s: %w", link, err)
	}
	return nil
}
