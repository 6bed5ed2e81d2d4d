package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"

	"github.com/t1route/t1route/podroute/daemon"
	"github.com/t1route/t1route/podroute/node/ovs"
	"github.com/t1route/t1route/podroute/node/pipeline"
)

func newOVSCommand(stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	var d ovs.Daemons
	var logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   "ovs [-- ovs-vswitchd arguments]",
		Short: "Run Open vSwitch for the agent pod's ovs container, keeping flows across its restarts",
		Long: `ovs runs ovsdb-server and ovs-vswitchd (the agent pod's ovs container runs it
through start-ovs) and keeps the node forwarding across their restarts: each
daemon that exits is started again at once; ovs-vswitchd starts with
flow-restore-wait and gets back the flow table the agent last installed before
it forwards a packet; during a surge upgrade it waits for the old pod's Open
vSwitch to stop, copying its flows meanwhile. SIGTERM stops both daemons.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if d.SystemID == "" {
				d.SystemID, _ = getenv("NODE_NAME")
			}
			if len(d.OtherConfig) == 0 {
				if v, ok := getenv("OVS_OTHER_CONFIG"); ok {
					d.OtherConfig = strings.Fields(v)
				}
			}
			if d.FlowLock == "" {
				d.FlowLock = pipeline.FlowLockFile(d.RunDir)
			}
			d.VswitchdArgs = args
			log, err := daemon.NewLogger(stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck
			d.Log = zapr.NewLogger(log)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return d.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&d.RunDir, "run-dir", ovs.DefaultRunDir, "Open vSwitch run directory (sockets, pid files, saved flows)")
	fl.StringVar(&d.DBDir, "db-dir", "/etc/openvswitch", "where conf.db is kept (a host directory: it survives restarts)")
	fl.StringVar(&d.LogDir, "log-dir", "/var/log/openvswitch", "ovsdb-server's log file")
	fl.StringVar(&d.SystemID, "system-id", "", "this node's name for OVS tooling (default: $NODE_NAME)")
	fl.StringSliceVar(&d.OtherConfig, "other-config", nil, "key=value of Open_vSwitch other_config, set before ovs-vswitchd starts (default: $OVS_OTHER_CONFIG, space-separated)")
	fl.StringVar(&d.FlowLock, "flow-lock", "", "lock file of the flow writers (default: the agent's, in --run-dir)")
	fl.StringVar(&logFormat, "log-format", "json", "json or console")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
