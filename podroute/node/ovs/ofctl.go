package ovs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// OFCtl programs a bridge's flow table with ovs-ofctl over the bridge's
// management socket (OpenFlow 1.3). libOpenflow is not served to this
// project; ovs-ofctl ships with every OVS and its replace-flows computes the
// minimal change itself.
type OFCtl struct {
	RunDir string // OVS run directory holding <bridge>.mgmt
	Bridge string
	// Save keeps a copy of every table Replace installs in
	// SavedFlowsFile(RunDir, Bridge), for Daemons to restore should
	// ovs-vswitchd restart.
	Save bool
}

func (o OFCtl) target() string { return "unix:" + filepath.Join(o.RunDir, o.Bridge+".mgmt") }

func (o OFCtl) run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ovs-ofctl", append([]string{"-O", "OpenFlow13"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("ovs-ofctl %s %s: %w: %s", args[0], o.Bridge, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Replace makes the bridge's flow table exactly flows, changing only flows
// that differ, in one OpenFlow bundle: packets see the old table or the new
// one, never a mix (a policy change has no window in which a flow it
// denies passes). Flows of the keep tables that flows does not list stay:
// those the learn action added (replace-flows would delete them). With Save,
// a copy of flows is kept for a restarted switch. Idempotent.
func (o OFCtl) Replace(ctx context.Context, flows []string, keep ...int) error {
	if err := o.replace(ctx, flows, keep); err != nil {
		return err
	}
	if !o.Save {
		return nil
	}
	path := SavedFlowsFile(o.RunDir, o.Bridge)
	if err := writeSavedFlows(path, flows); err != nil {
		// An outdated copy must not be restored: without one, a restarted
		// switch forwards once this writer installs the table again.
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("flows installed, but the copy for restarts (%s) is outdated and cannot be removed: %w", path, rerr)
		}
	}
	return nil
}

// DumpRestorable returns the installed flows in the syntax add-flows
// reads back (no statistics, port numbers rather than names).
func (o OFCtl) DumpRestorable(ctx context.Context) ([]string, error) {
	return o.dumpFlows(ctx, "--no-stats", "--no-names")
}

// dumpFlows returns dump-flows' flows, one per line, without its header.
func (o OFCtl) dumpFlows(ctx context.Context, opts ...string) ([]string, error) {
	out, err := o.run(ctx, "", append(append([]string{"dump-flows"}, opts...), o.target())...)
	if err != nil {
		return nil, err
	}
	var flows []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_FLOW") {
			continue
		}
		flows = append(flows, line)
	}
	return flows, nil
}

func (o OFCtl) replace(ctx context.Context, flows []string, keep []int) error {
	in := strings.Join(flows, "\n") + "\n"
	if len(keep) == 0 {
		_, err := o.run(ctx, in, "--bundle", "replace-flows", o.target(), "-")
		return err
	}
	// ovs-ofctl computes the difference (it normalises both sides, as
	// replace-flows does); the change is then applied as one bundle of
	// strict deletes and adds, leaving the keep tables' other flows alone.
	// In the run directory: the agent's root filesystem, /tmp included,
	// is read-only in its pod.
	f, err := os.CreateTemp(o.RunDir, ".t1route-flows-*.txt")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(in); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := o.runStatus(ctx, "", map[int]bool{2: true}, "--no-names", "diff-flows", o.target(), f.Name())
	if err != nil {
		return err
	}
	mods, err := BundleFromDiff(out, keep)
	if err != nil || len(mods) == 0 {
		return err
	}
	_, err = o.run(ctx, strings.Join(mods, "\n")+"\n", "--bundle", "add-flows", o.target(), "-")
	return err
}

// BundleFromDiff turns `ovs-ofctl diff-flows SWITCH FILE` output into
// flow mods for `add-flows` that make the switch's table the file's:
// a strict delete for each flow only on the switch (except in the keep
// tables) and an add for each flow only in the file (an add replaces a flow
// with the same match and priority, so a changed flow is a delete and an
// add, applied together in one bundle).
func BundleFromDiff(diff string, keep []int) ([]string, error) {
	var dels, adds []string
	for _, line := range strings.Split(diff, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		sign, flow := line[0], strings.TrimSpace(line[1:])
		switch sign {
		case '+':
			adds = append(adds, "add "+flow)
		case '-':
			m, err := strictMatch(flow)
			if err != nil {
				return nil, fmt.Errorf("diff-flows line %q: %w", line, err)
			}
			if slices.Contains(keep, m.table) {
				continue
			}
			dels = append(dels, "delete_strict "+m.text)
		default:
			return nil, fmt.Errorf("diff-flows line %q: want + or -", line)
		}
	}
	return append(dels, adds...), nil
}

type flowMatch struct {
	table int
	text  string // table, priority and match, as delete_strict takes them
}

// strictMatch keeps what identifies a flow (table, priority, match) from a
// printed flow, dropping its cookie, timeouts, flags and actions.
func strictMatch(flow string) (flowMatch, error) {
	match, _, ok := strings.Cut(flow, " actions=")
	if !ok {
		return flowMatch{}, fmt.Errorf("no actions")
	}
	m := flowMatch{}
	var keepParts []string
	hasTable := false
	for _, part := range SplitTop(strings.ReplaceAll(match, " ", ",")) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "cookie", "idle_timeout", "hard_timeout", "importance", "send_flow_rem", "check_overlap", "reset_counts",
			"no_packet_counts", "no_byte_counts", "duration", "n_packets", "n_bytes", "idle_age", "hard_age":
			continue
		case "table":
			n, err := strconv.Atoi(v)
			if err != nil {
				return flowMatch{}, fmt.Errorf("table %q", v)
			}
			m.table, hasTable = n, true
		}
		keepParts = append(keepParts, part)
	}
	if !hasTable {
		// OVS leaves table 0 out when it prints a flow; a delete without a
		// table would match in every table.
		keepParts = append([]string{"table=0"}, keepParts...)
	}
	m.text = strings.Join(keepParts, ",")
	return m, nil
}

// runStatus is run, with exit codes in ok also taken as success (diff-flows
// exits 2 when the sides differ).
func (o OFCtl) runStatus(ctx context.Context, stdin string, ok map[int]bool, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ovs-ofctl", append([]string{"-O", "OpenFlow13"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !ok[ee.ExitCode()] {
			return "", fmt.Errorf("ovs-ofctl %s %s: %w: %s", args[0], o.Bridge, err, strings.TrimSpace(errb.String()))
		}
	}
	return out.String(), nil
}

// FlowStats returns the packet counts, by cookie, of the flows whose cookie
// is tag under mask (flows whose cookie is tag itself excluded: a tag alone
// marks a family's fixed flows, not one of its members).
func (o OFCtl) FlowStats(ctx context.Context, tag, mask uint64) (map[uint64]uint64, error) {
	out, err := o.run(ctx, "", "dump-flows", o.target(), fmt.Sprintf("cookie=%#x/%#x", tag, mask))
	if err != nil {
		return nil, err
	}
	return ParseFlowStats(out, tag, mask), nil
}

// DumpStats returns dump-flows output with statistics and port numbers
// (not names), as introspection parses it.
func (o OFCtl) DumpStats(ctx context.Context) (string, error) {
	return o.run(ctx, "", "dump-flows", "--no-names", o.target())
}

// Desc returns dump-desc output: the running ovs-vswitchd's description.
func (o OFCtl) Desc(ctx context.Context) (string, error) {
	return o.run(ctx, "", "dump-desc", o.target())
}

// Dump returns the installed flows without statistics (for checks and tests).
func (o OFCtl) Dump(ctx context.Context) ([]string, error) {
	return o.dumpFlows(ctx, "--no-stats")
}

// ParseFlowStats reads `ovs-ofctl dump-flows` output and sums n_packets by
// cookie, for the flows whose cookie is tag under mask (tag itself excluded).
func ParseFlowStats(dump string, tag, mask uint64) map[uint64]uint64 {
	out := map[uint64]uint64{}
	for _, line := range strings.Split(dump, "\n") {
		var cookie, packets uint64
		var haveCookie, havePackets bool
		for _, f := range strings.Split(strings.TrimSpace(line), ", ") {
			k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok {
				continue
			}
			switch k {
			case "cookie":
				c, err := strconv.ParseUint(v, 0, 64)
				cookie, haveCookie = c, err == nil
			case "n_packets":
				n, err := strconv.ParseUint(v, 10, 64)
				packets, havePackets = n, err == nil
			}
		}
		if haveCookie && havePackets && cookie&mask == tag && cookie != tag {
			out[cookie] += packets
		}
	}
	return out
}
