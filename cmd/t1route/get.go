package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/t1route/t1route/podroute/connect"
	"github.com/t1route/t1route/podroute/node/introspect"
)

func newGetCommand(stdout, stderr io.Writer) *cobra.Command {
	var q introspect.Query
	var output, kubeconfig, socket, raw, agentNS string
	cmd := &cobra.Command{
		Use:   "get KIND [POD]",
		Short: "Show a node's datapath: podinterface, ovsflows, agentinfo, networkpolicy",
		Long: `get shows what the node datapath does, in the style of antctl:

  t1route get podinterface [POD] [-n NS]        pods attached to the bridge
  t1route get ovsflows [-p POD -n NS] [-T TABLE] flows with counters (a pod's, a table's)
  t1route get agentinfo [--node NODE]            each agent's health, bridge, OVS, flows per table
  t1route get networkpolicy [-n NS]              the policies each node enforces

Beside an agent (in its pod) it asks the agent's socket. Elsewhere it goes
through the API server with your credentials: --node N (or -p POD, whose node
it looks up) runs it in that node's agent pod (pods/exec); without, agentinfo
reads every node's published T1RouteAgentInfo and lists ask every agent.`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runGet(cmd, args, q, output, kubeconfig, socket, raw, agentNS, stdout, stderr)
			if err != nil {
				if _, ok := err.(exitError); !ok {
					fmt.Fprintln(stderr, "error:", err)
					return exitError{1}
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&q.Namespace, "namespace", "n", "", "the pods' namespace (default: every namespace; with a pod, default)")
	fl.StringVarP(&q.Pod, "pod", "p", "", "ovsflows: the flows that carry this pod")
	fl.StringVarP(&q.Table, "table", "T", "", "ovsflows: one table, by number or name (L3Forwarding)")
	fl.StringVar(&q.NetworkPolicy, "networkpolicy", "", "ovsflows: the flows this policy produced")
	fl.StringVar(&q.Node, "node", "", "ask this node's agent through the API server")
	fl.StringVarP(&output, "output", "o", "table", "table, json or yaml")
	fl.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster, then $KUBECONFIG)")
	fl.StringVar(&socket, "socket", introspect.DefaultSocket, "the local agent's introspection socket")
	fl.StringVar(&agentNS, "agent-namespace", introspect.DefaultAgentNamespace, "namespace of the agent DaemonSet")
	fl.StringVar(&raw, "raw", "", "GET this path of the local agent's API and print the answer (exit 1 on an error answer)")
	return cmd
}

func runGet(cmd *cobra.Command, args []string, q introspect.Query, output, kubeconfig, socket, raw, agentNS string, stdout, stderr io.Writer) error {
	ctx := cmd.Context()
	if raw != "" {
		status, body, err := introspect.SocketTransport{Path: socket}.Raw(ctx, raw)
		if err != nil {
			return err
		}
		stdout.Write(body) //nolint:errcheck
		if status/100 != 2 {
			return exitError{1}
		}
		return nil
	}
	if len(args) == 0 {
		return fmt.Errorf("which kind? podinterface, ovsflows, agentinfo or networkpolicy")
	}
	kind, err := introspect.ParseKind(args[0])
	if err != nil {
		return err
	}
	q.Kind = kind
	if len(args) == 2 {
		if kind != introspect.KindPodInterface && kind != introspect.KindOVSFlows {
			return fmt.Errorf("%s takes no name", kind)
		}
		q.Pod = args[1]
	}
	f, err := introspect.ParseFormat(output)
	if err != nil {
		return err
	}
	src := introspect.Source{LocalHint: "no agent socket at " + socket}
	if _, err := os.Stat(socket); err == nil {
		src.Local = introspect.SocketTransport{Path: socket}
	}
	if src.Local == nil || q.Node != "" {
		rc, err := connect.KubeConfig(kubeconfig, userAgent())
		if err == nil {
			kube, kerr := kubernetes.NewForConfig(rc)
			dyn, derr := dynamic.NewForConfig(rc)
			if kerr != nil || derr != nil {
				return fmt.Errorf("a client for the API server: %v %v", kerr, derr)
			}
			src.Agents = &introspect.Agents{Kube: kube, Exec: introspect.KubeExecutor{Config: rc, Kube: kube}, Namespace: agentNS}
			src.Dynamic = dyn
		} else if q.Node != "" {
			return err
		}
	}
	return introspect.Get(ctx, src, q, f, stdout, stderr)
}
