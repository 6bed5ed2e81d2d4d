package ovs

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/t1route/t1route/podroute/policy/rules"
)

// OFCtl programs a bridge's flow table with ovs-ofctl over the bridge's
// management socket (OpenFlow 1.3). libOpenflow is not served to this
// project; ovs-ofctl ships with every OVS and its replace-flows computes the
// minimal change itself.
type OFCtl struct {
	RunDir string // OVS run directory holding <bridge>.mgmt
	Bridge string
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
// denies passes). Idempotent.
func (o OFCtl) Replace(ctx context.Context, flows []string) error {
	_, err := o.run(ctx, strings.Join(flows, "\n")+"\n", "--bundle", "replace-flows", o.target(), "-")
	return err
}

// PolicyStats returns the policy flows' packet counts by cookie.
func (o OFCtl) PolicyStats(ctx context.Context) (map[uint64]uint64, error) {
	out, err := o.run(ctx, "", "dump-flows", o.target(), fmt.Sprintf("cookie=%#x/%#x", rules.CookieTag, rules.CookieMask))
	if err != nil {
		return nil, err
	}
	return rules.ParseFlowStats(out), nil
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
	out, err := o.run(ctx, "", "dump-flows", "--no-stats", o.target())
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
