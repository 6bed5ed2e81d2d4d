package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Focus selects the specs a network plugin is judged by: every
// [sig-network] conformance spec (Services, Networking Granular Checks,
// DNS, Proxy, HostPort, EndpointSlices, …) and the NetworkPolicy suite.
const Focus = `\[sig-network\].*\[Conformance\]|\[sig-network\] Netpol`

// CISubset is what `make test` runs (make conformance-ci): the
// NetworkPolicy suite and the Services conformance specs.
const CISubset = `\[sig-network\] Netpol|\[sig-network\] Services.*\[Conformance\]`

// Skip is a group of selected specs not run here, and why.
type Skip struct {
	Pattern string // a regular expression on the spec's full text
	Reason  string
}

// Skips are the selected specs that cannot run on make cluster, each with
// its reason. Everything else selected runs; a spec that skips itself at
// run time is reported with the suite's own reason.
var Skips = []Skip{
	// Only the specs that send SCTP: the Netpol specs that merely name SCTP in
	// a policy ("even if the plugin doesn't support SCTP") run.
	{`\[Feature:SCTPConnectivity\]`, "this machine's kernel has no SCTP (CONFIG_IP_SCTP is not set): an SCTP socket answers 'protocol not supported'"},
	{`\[Disruptive\]`, "disrupts the cluster (restarts or kills its components); make cluster is not run for that"},
	{`\[Feature:(IPv6DualStack|Networking-IPv6)\]|IPv6`, "make cluster is IPv4 only"},
}

// SkipPattern is the --skip expression for ginkgo: any of skips.
func SkipPattern(skips []Skip) string {
	var p []string
	for _, s := range skips {
		p = append(p, s.Pattern)
	}
	return strings.Join(p, "|")
}

// State is a spec's outcome.
type State string

// The outcomes a spec of the selection can have.
const (
	Passed  State = "passed"
	Failed  State = "failed"
	Skipped State = "skipped"
)

// Result is one selected spec's outcome.
type Result struct {
	Name   string // the spec's full text, as --focus sees it
	State  State
	Reason string // for skips: why; for failures: the failure message's first line and its location
	Took   float64
}

// ginkgoReport is the part of ginkgo v2's --json-report (types.Report)
// read here: the run's specs.
type ginkgoReport struct {
	SuiteDescription string
	SpecReports      []struct {
		ContainerHierarchyTexts  []string
		ContainerHierarchyLabels [][]string
		LeafNodeType             string
		LeafNodeText             string
		LeafNodeLabels           []string
		State                    string
		RunTime                  int64 // nanoseconds
		Failure                  *struct {
			Message  string
			Location struct {
				FileName   string
				LineNumber int
			}
		}
	}
}

// fullText is a spec's text as ginkgo's --focus matches it: its
// containers' texts and its own, joined by spaces, and its labels in
// brackets as the Kubernetes framework writes them into the text.
func fullText(containers []string, leaf string) string {
	return strings.TrimSpace(strings.Join(append(append([]string(nil), containers...), leaf), " "))
}

// ParseReport reads ginkgo's JSON report (one suite) and returns the
// outcome of every spec whose full text focus matches: passed, failed, or
// skipped with the reason (the skip table's, or the spec's own).
func ParseReport(r io.Reader, focus *regexp.Regexp, skips []Skip) ([]Result, error) {
	var reports []ginkgoReport
	if err := json.NewDecoder(r).Decode(&reports); err != nil {
		return nil, fmt.Errorf("ginkgo's JSON report: %w", err)
	}
	var out []Result
	for _, rep := range reports {
		for _, s := range rep.SpecReports {
			if s.LeafNodeType != "It" {
				continue // suite setup and teardown nodes
			}
			name := fullText(s.ContainerHierarchyTexts, s.LeafNodeText)
			if !focus.MatchString(name) {
				continue
			}
			res := Result{Name: name, Took: float64(s.RunTime) / 1e9}
			msg := ""
			if s.Failure != nil {
				msg = firstLine(s.Failure.Message)
				if s.Failure.Location.FileName != "" {
					msg += fmt.Sprintf(" (%s:%d)", trimPath(s.Failure.Location.FileName), s.Failure.Location.LineNumber)
				}
			}
			switch s.State {
			case "passed":
				res.State = Passed
			case "skipped", "pending":
				res.State, res.Reason = Skipped, msg
				for _, sk := range skips {
					if regexp.MustCompile(sk.Pattern).MatchString(name) {
						res.Reason = sk.Reason
						break
					}
				}
				if res.Reason == "" {
					// A spec that skips itself says why; one ginkgo skipped
					// without a reason never ran (an interrupt, the suite's timeout).
					res.State, res.Reason = Failed, "not run: ginkgo skipped it without a reason (the run was interrupted or timed out first)"
				}
			default: // failed, panicked, interrupted, aborted, timedout
				res.State, res.Reason = Failed, s.State+": "+msg
			}
			out = append(out, res)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Count returns how many results are in each state.
func Count(rs []Result) (passed, failed, skipped int) {
	for _, r := range rs {
		switch r.State {
		case Passed:
			passed++
		case Failed:
			failed++
		case Skipped:
			skipped++
		}
	}
	return
}

// Summary writes every failure and every skip with its reason, then the
// line `conformance: N passed, M failed, S skipped`.
func Summary(w io.Writer, label string, rs []Result) {
	for _, st := range []State{Failed, Skipped} {
		for _, r := range rs {
			if r.State == st {
				fmt.Fprintf(w, "%s: %s\n    %s\n", strings.ToUpper(string(st)), r.Name, r.Reason)
			}
		}
	}
	p, f, s := Count(rs)
	fmt.Fprintf(w, "%s: %d passed, %d failed, %d skipped\n", label, p, f, s)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// trimPath shortens a source path to its part from k8s.io/ on.
func trimPath(p string) string {
	if i := strings.Index(p, "k8s.io/"); i >= 0 {
		return p[i:]
	}
	return p
}

// Merge gives every listed spec (a dry run's selection) its outcome in
// ran (the run's report): a spec the run did not report is skipped with
// the skip table's reason when it matches one, and failed otherwise (the
// run ended before it).
func Merge(listed, ran []Result, skips []Skip) []Result {
	byName := map[string]Result{}
	for _, r := range ran {
		byName[r.Name] = r
	}
	var out []Result
	for _, l := range listed {
		if r, ok := byName[l.Name]; ok {
			out = append(out, r)
			continue
		}
		r := Result{Name: l.Name, State: Failed, Reason: "no result: the run ended before this spec (its timeout, or ginkgo interrupted)"}
		for _, sk := range skips {
			if regexp.MustCompile(sk.Pattern).MatchString(l.Name) {
				r.State, r.Reason = Skipped, sk.Reason
				break
			}
		}
		out = append(out, r)
	}
	return out
}
