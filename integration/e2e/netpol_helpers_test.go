//go:build integration && e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The network-policy test runs its servers and probers as this test binary
// itself, re-executed inside the namespaces with one of these variables set
// (no image, no extra build).
const (
	envServe = "T1ROUTE_NETPOL_SERVE" // "tcp:ADDR:PORT,udp:ADDR:PORT,...": echo servers
	envProbe = "T1ROUTE_NETPOL_PROBE" // JSON probeRequest: probe concurrently, print JSON results
	envHold  = "T1ROUTE_NETPOL_HOLD"  // "ADDR:PORT": one TCP connection, a byte every 100 ms, "ok"/"stall" lines
)

func init() {
	var err error
	switch {
	case os.Getenv(envServe) != "":
		err = serveEcho(os.Getenv(envServe))
	case os.Getenv(envProbe) != "":
		err = probeAll(os.Getenv(envProbe), os.Stdout)
	case os.Getenv(envHold) != "":
		err = holdConnection(os.Getenv(envHold), os.Stdout)
	case os.Getenv(envWhoServe) != "": // services_helpers_test.go
		err = whoServe(os.Getenv(envWhoServe), os.Stdout)
	case os.Getenv(envWhoDial) != "":
		err = whoDial(os.Getenv(envWhoDial), os.Stdout)
	default:
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveEcho echoes on every listed TCP and UDP address until killed.
func serveEcho(spec string) error {
	for _, item := range strings.Split(spec, ",") {
		proto, addr, _ := strings.Cut(item, ":")
		switch proto {
		case "tcp":
			ln, err := net.Listen("tcp4", addr)
			if err != nil {
				return err
			}
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { defer c.Close(); io.Copy(c, c) }() //nolint:errcheck
				}
			}()
		case "udp":
			pc, err := net.ListenPacket("udp4", addr)
			if err != nil {
				return err
			}
			go func() {
				buf := make([]byte, 1500)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					pc.WriteTo(buf[:n], from) //nolint:errcheck
				}
			}()
		default:
			return fmt.Errorf("serve %q: want tcp:ADDR:PORT or udp:ADDR:PORT", item)
		}
	}
	fmt.Println("serving")
	select {}
}

type probeTarget struct {
	Addr  string `json:"addr"`
	Proto string `json:"proto"` // tcp or udp
	Port  int    `json:"port"`
}

type probeRequest struct {
	Bind    string        `json:"bind,omitempty"` // source address ("" : the kernel's choice)
	Timeout time.Duration `json:"timeout"`
	Targets []probeTarget `json:"targets"`
}

// probeAll probes every target at once: TCP connects and has a byte
// echoed; UDP has a datagram echoed (sent twice, in case one is lost).
func probeAll(spec string, out io.Writer) error {
	var req probeRequest
	if err := json.Unmarshal([]byte(spec), &req); err != nil {
		return err
	}
	results := make([]bool, len(req.Targets))
	var wg sync.WaitGroup
	for i, tg := range req.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = probeOne(req.Bind, tg, req.Timeout)
		}()
	}
	wg.Wait()
	return json.NewEncoder(out).Encode(results)
}

func probeOne(bind string, tg probeTarget, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline}
	target := net.JoinHostPort(tg.Addr, strconv.Itoa(tg.Port))
	if bind != "" {
		if tg.Proto == "tcp" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(bind)}
		} else {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(bind)}
		}
	}
	c, err := d.Dial(tg.Proto+"4", target)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(deadline) //nolint:errcheck
	msg := []byte("t1route")
	buf := make([]byte, len(msg))
	if tg.Proto == "udp" {
		for try := 0; try < 2; try++ {
			c.Write(msg)                                                         //nolint:errcheck
			c.SetReadDeadline(time.Now().Add(timeout / 2).Add(time.Millisecond)) //nolint:errcheck
			if n, err := c.Read(buf); err == nil && n == len(msg) {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
		}
		return false
	}
	if _, err := c.Write(msg); err != nil {
		return false
	}
	_, err = io.ReadFull(c, buf)
	return err == nil
}

// holdConnection keeps one TCP connection and reports, every 100 ms,
// whether the last byte sent came back ("ok") or not yet ("stall").
func holdConnection(addr string, out io.Writer) error {
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	echoed := make(chan struct{}, 1024)
	go func() {
		r := bufio.NewReader(c)
		for {
			if _, err := r.ReadByte(); err != nil {
				close(echoed)
				return
			}
			echoed <- struct{}{}
		}
	}()
	sent, got := 0, 0
	for t := time.NewTicker(100 * time.Millisecond); ; <-t.C {
		if _, err := c.Write([]byte{'x'}); err != nil {
			return err
		}
		sent++
	drain:
		for {
			select {
			case _, ok := <-echoed:
				if !ok {
					return fmt.Errorf("connection closed")
				}
				got++
			default:
				break drain
			}
		}
		state := "stall"
		if got >= sent-1 { // the byte just sent may still be on its way
			state = "ok"
		}
		fmt.Fprintf(out, "%s %d %d\n", state, sent, got)
	}
}
