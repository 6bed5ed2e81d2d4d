package introspect

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/t1route/t1route/podroute/node/ovs"
)

// DefaultPriority is OpenFlow's priority of a flow added without one;
// dump-flows leaves it out.
const DefaultPriority = 32768

// ParseFlows reads the output of `ovs-ofctl -O OpenFlow13 --no-names
// dump-flows` (with statistics). Each flow line is
//
//	cookie=C, duration=Ds, table=T, n_packets=P, n_bytes=B, [idle_timeout=I, ][hard_timeout=H, ][flags ]priority=N,MATCH actions=ACTIONS
//
// Header lines (OFPST_FLOW reply …) and blank lines are skipped. A line that
// cannot be read is an error naming its number and content: a half-read dump
// would show counts that are wrong without saying so.
func ParseFlows(dump string) ([]Flow, error) {
	var flows []Flow
	sc := bufio.NewScanner(strings.NewReader(dump))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024) // a flow with many actions is long
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "OFPST_FLOW") || strings.HasPrefix(line, "NXST_FLOW") {
			continue
		}
		f, err := parseFlowLine(line)
		if err != nil {
			return nil, fmt.Errorf("dump-flows line %d %q: %w", n, truncate(line, 120), err)
		}
		flows = append(flows, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read dump-flows output: %w", err)
	}
	return flows, nil
}

// Flag words dump-flows may print before the match.
var flowFlags = map[string]bool{
	"send_flow_rem": true, "reset_counts": true, "no_packet_counts": true, "no_byte_counts": true,
	"check_overlap": true, "no_readonly_table": true,
}

func parseFlowLine(line string) (Flow, error) {
	f := Flow{Priority: DefaultPriority}
	i := strings.Index(line, "actions=")
	if i < 0 || (i > 0 && line[i-1] != ' ' && line[i-1] != ',') {
		return f, fmt.Errorf("no actions")
	}
	f.Actions = strings.TrimSpace(line[i+len("actions="):])
	// Statistics are separated by ", ", flags and the match by spaces; the
	// match itself never contains a space.
	var flags []string
	var match string
	seenCookie := false
	for _, tok := range strings.FieldsFunc(line[:i], func(r rune) bool { return r == ' ' }) {
		tok = strings.TrimSuffix(tok, ",")
		if tok == "" {
			continue
		}
		key, val, hasVal := strings.Cut(tok, "=")
		if flowFlags[tok] {
			flags = append(flags, tok)
			continue
		}
		var err error
		switch {
		case !hasVal || match != "":
			err = setMatch(&match, tok)
		case key == "cookie":
			var c uint64
			c, err = strconv.ParseUint(val, 0, 64)
			f.Cookie, seenCookie = Cookie(c), true
		case key == "duration":
			var d float64
			d, err = strconv.ParseFloat(strings.TrimSuffix(val, "s"), 64)
			f.Duration = Seconds(d)
		case key == "table":
			f.Table, err = strconv.Atoi(val)
			if err != nil {
				err = fmt.Errorf("table %q is not a number (dump with --no-names)", val)
			}
		case key == "n_packets":
			f.Packets, err = strconv.ParseUint(val, 10, 64)
		case key == "n_bytes":
			f.Bytes, err = strconv.ParseUint(val, 10, 64)
		case key == "idle_timeout":
			f.IdleTimeout, err = strconv.Atoi(val)
		case key == "hard_timeout":
			f.HardTimeout, err = strconv.Atoi(val)
		case key == "idle_age" || key == "hard_age" || key == "importance":
			// ages change on every dump; importance is an OpenFlow 1.4 hint
		default:
			err = setMatch(&match, tok)
		}
		if err != nil {
			return f, err
		}
	}
	if !seenCookie {
		return f, fmt.Errorf("no cookie: not a dump-flows line with statistics")
	}
	f.Flags = strings.Join(flags, ",")
	// The match starts with priority=N unless the flow has the default priority.
	if rest, ok := strings.CutPrefix(match, "priority="); ok {
		num, after, _ := strings.Cut(rest, ",")
		p, err := strconv.Atoi(num)
		if err != nil {
			return f, fmt.Errorf("priority %q: %w", num, err)
		}
		f.Priority, match = p, after
	}
	f.Match = match
	return f, nil
}

func setMatch(match *string, tok string) error {
	if *match != "" {
		return fmt.Errorf("unexpected %q after the match %q", tok, *match)
	}
	*match = tok
	return nil
}

// ParseOVSVersion reads the software version from `ovs-ofctl dump-desc`
// output (the running ovs-vswitchd's, not the client's).
func ParseOVSVersion(desc string) (string, error) {
	for _, line := range strings.Split(desc, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Software:"); ok {
			if v = strings.TrimSpace(v); v != "" {
				return v, nil
			}
		}
	}
	return "", fmt.Errorf("no Software line in dump-desc output %q", truncate(desc, 200))
}

// Field is one key=value of a match or one action, split at the top level.
type Field struct{ Key, Value string }

// MatchFields splits a match into fields; a protocol shorthand such as ip
// or arp is a field with an empty value.
func MatchFields(match string) []Field {
	var out []Field
	for _, part := range ovs.SplitTop(match) {
		k, v, _ := strings.Cut(part, "=")
		out = append(out, Field{Key: k, Value: v})
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
