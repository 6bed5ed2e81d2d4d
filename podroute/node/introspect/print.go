package introspect

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"
)

// Format is how results are printed: a table for people (default), or
// JSON or YAML for scripts, as kubectl's -o.
type Format string

// Formats.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatYAML  Format = "yaml"
)

// ParseFormat reads -o.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case "", FormatTable, "wide":
		return FormatTable, nil
	case FormatJSON, FormatYAML:
		return f, nil
	}
	return "", fmt.Errorf("-o %q: use table, json or yaml", s)
}

// printData writes v as JSON or YAML; ok false for the table format.
func printData(w io.Writer, f Format, v any) (ok bool, err error) {
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case FormatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = w.Write(b)
		return true, err
	}
	return false, nil
}

func table(w io.Writer, header string, rows func(tw io.Writer)) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinOrDash(ss []string) string { return dash(strings.Join(ss, ",")) }

// PrintPodInterfaces prints pods attached to bridges.
func PrintPodInterfaces(w io.Writer, f Format, pods []PodInterface) error {
	if pods == nil {
		pods = []PodInterface{}
	}
	if ok, err := printData(w, f, pods); ok {
		return err
	}
	return table(w, "NODE\tNAMESPACE\tNAME\tINTERFACE\tIPS\tMAC\tPORT-UUID\tOF-PORT\tCONTAINER-ID", func(tw io.Writer) {
		for _, p := range pods {
			cid := p.ContainerID
			if len(cid) > 13 {
				cid = cid[:13]
			}
			port := strconv.Itoa(p.OFPort)
			if p.Error != "" {
				port = "error: " + p.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(p.Node), p.Namespace, p.Pod, p.Interface,
				joinOrDash(p.IPs), dash(p.MAC), dash(p.PortUUID), port, dash(cid))
		}
	})
}

// PrintFlows prints flows with their counters.
func PrintFlows(w io.Writer, f Format, flows []Flow) error {
	if flows == nil {
		flows = []Flow{}
	}
	if ok, err := printData(w, f, flows); ok {
		return err
	}
	return table(w, "NODE\tTABLE\tPRIORITY\tPACKETS\tBYTES\tMATCH\tACTIONS", func(tw io.Writer) {
		for _, fl := range flows {
			t := strconv.Itoa(fl.Table)
			if fl.TableName != "" {
				t += ":" + fl.TableName
			}
			match := fl.Match
			if match == "" {
				match = "*"
			}
			if fl.Cookie != 0 {
				match = fmt.Sprintf("cookie=%#x,%s", uint64(fl.Cookie), match)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", dash(fl.Node), t, fl.Priority, fl.Packets, fl.Bytes, match, fl.Actions)
		}
	})
}

// PrintAgentInfos prints node agents' state; ages are relative to now.
func PrintAgentInfos(w io.Writer, f Format, infos []AgentInfo, now time.Time) error {
	if infos == nil {
		infos = []AgentInfo{}
	}
	if ok, err := printData(w, f, infos); ok {
		return err
	}
	return table(w, "NODE\tHEALTH\tBRIDGE\tDATAPATH\tOVS\tPODCIDRS\tPODS\tFLOWS\tFLOWS-PER-TABLE\tPOLICIES\tLAST-SYNC\tSYNC-TIME\tMESSAGE",
		func(tw io.Writer) {
			for _, in := range infos {
				var per []string
				for _, t := range in.FlowsPerTable {
					per = append(per, fmt.Sprintf("%d:%d", t.Table, t.Flows))
				}
				last := "never"
				if in.LastFlowSync != nil {
					last = duration.HumanDuration(now.Sub(*in.LastFlowSync)) + " ago"
				}
				policies := "not enforced"
				if in.PolicyEnforcement {
					policies = strconv.Itoa(in.PolicyCount)
				}
				msg := "-"
				if len(in.Errors) > 0 {
					msg = in.Errors[0]
					if len(in.Errors) > 1 {
						msg += fmt.Sprintf(" (and %d more)", len(in.Errors)-1)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", in.Node, in.Health, dash(in.Bridge),
					dash(in.DatapathType), dash(in.OVSVersion), joinOrDash(in.PodCIDRs), in.PodCount, in.Flows,
					joinOrDash(per), policies, last, in.LastFlowSyncDuration.Duration().Round(time.Millisecond), msg)
			}
		})
}

// PrintPolicies prints the policies each node enforces; a node that
// enforces none says so in words.
func PrintPolicies(w io.Writer, f Format, lists []PolicyList) error {
	if lists == nil {
		lists = []PolicyList{}
	}
	if ok, err := printData(w, f, lists); ok {
		return err
	}
	var items []NetworkPolicy
	for _, l := range lists {
		if !l.Enforced {
			fmt.Fprintf(w, "%s: %s\n", l.Node, NotEnforcedMessage)
			continue
		}
		items = append(items, l.Items...)
	}
	if len(items) == 0 {
		return nil
	}
	return table(w, "NODE\tNAMESPACE\tNAME\tKIND\tAPPLIED-TO\tRULES\tFLOWS", func(tw io.Writer) {
		for _, p := range items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", p.Node, dash(p.Namespace), p.Name, p.Kind, joinOrDash(p.AppliedTo), p.Rules, p.Flows)
		}
	})
}
