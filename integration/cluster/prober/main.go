// Command prober is the container of a pod that must never reach an
// address (the management network, which the guard denies): from its first
// instant it opens TCP connections to --target from --parallel loops, each
// one every --interval, and prints every one that succeeds ("CONNECTED
// <time>"), and a count every 5 s. Tests read its log. It runs as PID 1 and
// ends on SIGTERM.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	target := flag.String("target", "", "host:port that must stay unreachable")
	interval := flag.Duration("interval", 10*time.Millisecond, "time between attempts")
	timeout := flag.Duration("timeout", 100*time.Millisecond, "connect timeout")
	parallel := flag.Int("parallel", 4, "concurrent loops (a dropped SYN blocks its loop for --timeout)")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "prober: --target host:port is required")
		os.Exit(2)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	start := time.Now()
	fmt.Printf("PROBING %s from %s\n", *target, start.UTC().Format(time.RFC3339Nano))
	var attempts, connected atomic.Int64
	for range *parallel {
		go func() {
			for {
				attempts.Add(1)
				c, err := net.DialTimeout("tcp", *target, *timeout)
				if err == nil {
					connected.Add(1)
					fmt.Printf("CONNECTED %s\n", time.Now().UTC().Format(time.RFC3339Nano))
					c.Close()
				}
				time.Sleep(*interval)
			}
		}()
	}
	report := time.NewTicker(5 * time.Second)
	defer report.Stop()
	for {
		select {
		case <-stop:
			fmt.Printf("COUNT attempts=%d connected=%d\n", attempts.Load(), connected.Load())
			return
		case <-report.C:
			fmt.Printf("COUNT attempts=%d connected=%d\n", attempts.Load(), connected.Load())
		}
	}
}
