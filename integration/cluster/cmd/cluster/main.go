//go:build linux

// Command cluster starts and removes the local cluster of real nodes that
// make cluster and make cluster-down run (package integration/cluster):
//
//	cluster up   [--dir D] [--nodes 2] [--images .cache/image/oci] [--smoke-cni] [--hide-host-ovs]
//	cluster down [--dir D]
//
// up starts the cluster in a background process (it serves the registry
// and the loopback forwards) and returns once it runs, printing what to
// source; down stops that process, removes every namespace, mount,
// cgroup and process of the cluster, shows that nothing is left, and
// deletes the directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/t1route/t1route/integration/cluster"
)

// defaultDir is make cluster's CLUSTER_DIR unless set.
const defaultDir = "/tmp/t1route-cluster"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cluster up|down [--dir DIR] (see -h of each)")
		os.Exit(2)
	}
	fl := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fl.String("dir", defaultDir, "the cluster's directory: everything it writes goes there")
	nodes := fl.Int("nodes", 2, "number of nodes")
	images := fl.String("images", "", "OCI image layout whose images are pushed to the cluster's registry (make image writes .cache/image/oci)")
	hideOVS := fl.Bool("hide-host-ovs", false, "make this machine's Open vSwitch programs unusable inside the nodes, as on nodes without OVS")
	root := fl.String("root", ".", "the t1route repository (t1route, nsxsim and the pause image are built from it)")
	smoke := fl.Bool("smoke-cni", false, "install a minimal CNI (ptp + host-local) so nodes turn Ready without t1route")
	fl.Parse(os.Args[2:]) //nolint:errcheck // ExitOnError
	abs, err := filepath.Abs(*dir)
	if err == nil {
		*dir = abs
	}
	if r, err := filepath.Abs(*root); err == nil {
		*root = r
	}
	switch os.Args[1] {
	case "up":
		err = up(*dir, os.Args[2:])
	case "serve":
		err = serve(*dir, cluster.Config{Dir: *dir, Root: *root, KubeBin: filepath.Join(*root, ".cache", "bin"), Nodes: *nodes, ImageLayout: *images, HideHostOVS: *hideOVS}, *smoke)
	case "down":
		err = down(*dir)
	default:
		err = fmt.Errorf("unknown command %q: use up or down", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// up runs serve in the background and waits until the cluster runs.
func up(dir string, args []string) error {
	if s, err := cluster.LoadState(dir); err == nil {
		if alive(s.Supervisor) {
			fmt.Printf("a cluster already runs in %s (pid %d)\n", dir, s.Supervisor)
			return printUsage(dir)
		}
		return fmt.Errorf("%s holds a cluster whose process is gone: run make cluster-down first", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "cluster.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(exe, append([]string{"serve"}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives make
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Printf("starting a cluster in %s (log: %s)...\n", dir, logPath)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("the cluster did not start (%v):\n%s\nmake cluster-down removes what is left", err, b)
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			b, _ := os.ReadFile(logPath)
			fmt.Print(string(b))
			fmt.Printf("up in %.1f s\n", time.Since(start).Seconds())
			return printUsage(dir)
		}
	}
}

func printUsage(dir string) error {
	env, err := os.ReadFile(filepath.Join(dir, "cluster.env"))
	if err != nil {
		return err
	}
	dirFlag := ""
	if dir != defaultDir {
		dirFlag = " CLUSTER_DIR=" + dir
	}
	fmt.Printf(`
%s
Use it (as root):
  source %s/cluster.env; set -a; source %s/nsx.env; set +a
  kubectl get nodes -o wide
  t1route render --image $T1ROUTE_IMAGE --datapath-type netdev | kubectl apply -f -
  # from the external host, which reaches the API server, NSX Manager and the pods through the Tier-1:
  ip netns exec $T1ROUTE_EXTERNAL_NETNS t1route check --kubeconfig $T1ROUTE_EXTERNAL_KUBECONFIG --probe <pod IP>
  ip -n $T1ROUTE_ROUTER_NETNS route                        # the Tier-1's static routes, realized
Remove it: make cluster-down%s
`, env, dir, dir, dirFlag)
	return nil
}

// serve runs the cluster in the foreground until SIGTERM or SIGINT.
func serve(dir string, cfg cluster.Config, smoke bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Logf = func(format string, args ...any) { fmt.Printf("  "+format+"\n", args...) }
	start := time.Now()
	c, err := cluster.Up(ctx, cfg)
	if err != nil {
		return err
	}
	if err := c.State().SetSupervisor(os.Getpid()); err != nil {
		c.Down() //nolint:errcheck
		return err
	}
	if smoke {
		t := time.Now()
		err := c.InstallSmokeCNI(ctx)
		if err == nil {
			err = c.WaitNodes(ctx, 2*time.Minute, true)
		}
		if err != nil {
			c.Down() //nolint:errcheck
			return err
		}
		fmt.Printf("  smoke CNI installed, nodes Ready: %.1f s\n", time.Since(t).Seconds())
	}
	if _, err := c.WriteEnv(); err != nil {
		c.Down() //nolint:errcheck
		return err
	}
	fmt.Printf("cluster up in %.1f s: %d nodes, API server %s, registry %s\n", time.Since(start).Seconds(), len(c.Nodes), c.APIServer, c.Registry)
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		c.Down() //nolint:errcheck
		return err
	}
	<-ctx.Done()
	fmt.Println("stopping")
	return c.Down()
}

// down stops the serving process, cleans up from the saved state and shows
// that nothing is left.
func down(dir string) error {
	s, err := cluster.LoadState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(dir); err == nil {
			fmt.Printf("%s holds no cluster state; removing it\n", dir)
			return os.RemoveAll(dir)
		}
		fmt.Printf("no cluster in %s\n", dir)
		return nil
	}
	if err != nil {
		return err
	}
	start := time.Now()
	if alive(s.Supervisor) {
		syscall.Kill(s.Supervisor, syscall.SIGTERM) //nolint:errcheck
		for deadline := time.Now().Add(2 * time.Minute); alive(s.Supervisor) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Its parent (init, since up returned) reaps it.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(s.Supervisor)); err != nil {
			break
		}
	}
	// Whatever the serving process did or did not remove (it may have died).
	cleanupErr := cluster.Cleanup(s)
	left := cluster.Leftovers(s)
	if len(left) > 0 || cleanupErr != nil {
		return fmt.Errorf("left behind (%v):\n  %s", cleanupErr, strings.Join(left, "\n  "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Printf("cluster %s removed in %.1f s: no network namespace %s-*, no process, mount or cgroup of it, no KUBE-/CNI- chain here, none of %s; %s deleted\n",
		s.Prefix, time.Since(start).Seconds(), s.Prefix, strings.Join(s.HostPathsAbsent, " "), dir)
	return nil
}

// alive reports whether pid is a running cluster serve process.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), "serve")
}
