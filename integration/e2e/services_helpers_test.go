//go:build integration && e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// The Service test's servers and clients are this test binary, re-executed
// inside the namespaces with one of these variables set.
const (
	// "NAME[@HOST]": answer every TCP connection and UDP datagram on port
	// 8080 (of HOST; default every address of both families) with "NAME
	// <the caller's address as seen>", and log each one ("seen tcp|udp ADDR").
	envWhoServe = "T1ROUTE_SVC_SERVE"
	// JSON dialRequest: print one JSON dialResult per try.
	envWhoDial = "T1ROUTE_SVC_DIAL"
)

func whoServe(spec string, out io.Writer) error {
	name, host, _ := strings.Cut(spec, "@")
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "8080"))
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "8080"))
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			logf("seen tcp %s", c.RemoteAddr())
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute)) //nolint:errcheck
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					fmt.Fprintf(c, "%s %s\n", name, c.RemoteAddr())
				}
			}()
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			logf("seen udp %s", from)
			pc.WriteTo([]byte(fmt.Sprintf("%s %s\n", name, from)), from) //nolint:errcheck
		}
	}()
	logf("serving %s", name)
	select {}
}

// dialRequest asks for Count tries to Addr ("host:port"), Interval apart:
// a new TCP connection each, or a UDP datagram each, from a new socket
// unless LocalPort fixes the source port: then one unconnected socket
// sends every try and takes the first datagram that comes back from
// anyone (From says who sent it).
type dialRequest struct {
	Proto     string        `json:"proto"`
	Addr      string        `json:"addr"`
	Count     int           `json:"count"`
	Interval  time.Duration `json:"interval"`
	Timeout   time.Duration `json:"timeout"`
	LocalPort int           `json:"localPort,omitempty"`
}

type dialResult struct {
	OK     bool   `json:"ok"`
	Answer string `json:"answer,omitempty"` // "NAME ADDR"
	From   string `json:"from,omitempty"`   // the sender of a datagram (fixed-port UDP)
	Err    string `json:"err,omitempty"`
}

func whoDial(spec string, out io.Writer) error {
	var req dialRequest
	if err := json.Unmarshal([]byte(spec), &req); err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	var pc net.PacketConn
	var to net.Addr
	if req.Proto == "udp" && req.LocalPort != 0 {
		var err error
		if to, err = net.ResolveUDPAddr("udp", req.Addr); err != nil {
			return err
		}
		if pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", req.LocalPort)); err != nil {
			return err
		}
		defer pc.Close()
	}
	for i := range req.Count {
		if i > 0 {
			time.Sleep(req.Interval)
		}
		var r dialResult
		var err error
		if pc != nil {
			r, err = sendFrom(pc, to, req.Timeout)
		} else {
			r.Answer, err = dialOnce(req)
		}
		r.OK = err == nil
		if err != nil {
			r.Err = err.Error()
		}
		enc.Encode(r) //nolint:errcheck
	}
	return nil
}

// sendFrom sends one datagram from pc and takes the first that comes back.
func sendFrom(pc net.PacketConn, to net.Addr, timeout time.Duration) (dialResult, error) {
	if _, err := pc.WriteTo([]byte("who\n"), to); err != nil {
		return dialResult{}, err
	}
	pc.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck
	buf := make([]byte, 200)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		return dialResult{}, err
	}
	return dialResult{Answer: strings.TrimSpace(string(buf[:n])), From: from.String()}, nil
}

func dialOnce(req dialRequest) (string, error) {
	c, err := net.DialTimeout(req.Proto, req.Addr, req.Timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(req.Timeout)) //nolint:errcheck
	if _, err := c.Write([]byte("who\n")); err != nil {
		return "", err
	}
	if req.Proto == "udp" {
		buf := make([]byte, 200)
		n, err := c.Read(buf)
		return strings.TrimSpace(string(buf[:n])), err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
