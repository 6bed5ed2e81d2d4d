package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/t1route/t1route/nsx/nsxsim"
)

// benchNSX is the simulator as the bench sees it: in this process, or the
// nsxsim binary in its own (so peak RSS is the controller's alone).
type benchNSX interface {
	url() string
	caPEM() []byte
	user() (string, string)
	routeCount() (int, error)
	nextHop(routeID string) (string, bool)
	stats() (nsxsim.StatsSnapshot, error)
	resetStats() error
	close()
}

type inProcessNSX struct {
	sim    *nsxsim.Simulator
	router string // the router's policy path
}

func startInProcessNSX(f benchFlags) (benchNSX, error) {
	sim, err := nsxsim.New(nsxsim.Options{Latency: f.latency, LatencyPerChild: f.latencyChild, RealizeDelay: f.realizeDelay, SearchLag: f.searchLag,
		Routers: []string{f.routerPath}})
	if err != nil {
		return nil, err
	}
	return &inProcessNSX{sim, f.routerPath}, sim.Start()
}

func (s *inProcessNSX) url() string                          { return s.sim.URL() }
func (s *inProcessNSX) caPEM() []byte                        { return s.sim.CACertPEM() }
func (s *inProcessNSX) user() (string, string)               { return s.sim.User() }
func (s *inProcessNSX) routeCount() (int, error)             { return s.sim.RouteCount(s.router), nil }
func (s *inProcessNSX) stats() (nsxsim.StatsSnapshot, error) { return s.sim.Stats(), nil }
func (s *inProcessNSX) resetStats() error                    { s.sim.ResetStats(); return nil }
func (s *inProcessNSX) close()                               { s.sim.Close() }
func (s *inProcessNSX) nextHop(id string) (string, bool) {
	r, ok := s.sim.Route(s.router, id)
	if !ok || len(r.NextHops) == 0 {
		return "", false
	}
	return r.NextHops[0].IPAddress, true
}

// externalNSX runs the nsxsim binary (next to this one, or on PATH) and
// reads its state through the test API.
type externalNSX struct {
	cmd      *exec.Cmd
	base     string
	pool     *x509.CertPool
	ca       []byte
	username string
	password string
	http     *http.Client
	router   string // the router's policy path
}

func startExternalNSX(f benchFlags) (benchNSX, error) {
	bin := f.nsxsim
	if bin == "" {
		bin = "nsxsim"
		if p := "bin/nsxsim"; fileExists(p) {
			bin = p
		}
		if self, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(self), "nsxsim"); fileExists(p) {
				bin = p
			}
		}
	}
	cmd := exec.Command(bin, "--latency", f.latency.String(), "--latency-per-child", f.latencyChild.String(),
		"--realize-delay", f.realizeDelay.String(), "--search-lag", f.searchLag.String(), "--router", f.routerPath)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("--external-nsxsim: starting %s: %w (build it with make build, or give --nsxsim)", bin, err)
	}
	e := &externalNSX{cmd: cmd, router: f.routerPath}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		v = strings.Trim(v, "'")
		switch k {
		case "NSXT_MANAGER_HOST":
			e.base = "https://" + v
		case "NSXT_USERNAME":
			e.username = v
		case "NSXT_PASSWORD":
			e.password = v
		case "NSXT_ROOT_CA_DATA_B64":
			pem, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				e.close()
				return nil, err
			}
			e.ca, e.pool = pem, x509.NewCertPool()
			e.pool.AppendCertsFromPEM(pem)
		}
		if e.pool != nil {
			break
		}
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck
	if e.base == "" || e.pool == nil {
		e.close()
		return nil, fmt.Errorf("--external-nsxsim: %s did not print its address and CA", bin)
	}
	e.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}}
	return e, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (e *externalNSX) url() string            { return e.base }
func (e *externalNSX) caPEM() []byte          { return e.ca }
func (e *externalNSX) user() (string, string) { return e.username, e.password }
func (e *externalNSX) close() {
	e.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	e.cmd.Wait()                          //nolint:errcheck
}

func (e *externalNSX) get(path string, v any) (bool, error) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, e.base+path, nil)
	resp, err := e.http.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return true, json.NewDecoder(resp.Body).Decode(v)
}

// routeCount asks for the count alone: fetching every route each poll
// weighed on the bench process's RSS and on both processes' CPU.
func (e *externalNSX) routeCount() (int, error) {
	var c nsxsim.RouteCount
	_, err := e.get("/nsxsim/api/route-count?router="+url.QueryEscape(e.router), &c)
	return c.Count, err
}

func (e *externalNSX) nextHop(id string) (string, bool) {
	var r nsxsim.StaticRoute
	ok, err := e.get("/nsxsim/api/routes/"+url.PathEscape(id)+"?router="+url.QueryEscape(e.router), &r)
	if !ok || err != nil || len(r.NextHops) == 0 {
		return "", false
	}
	return r.NextHops[0].IPAddress, true
}

func (e *externalNSX) stats() (nsxsim.StatsSnapshot, error) {
	var s nsxsim.StatsSnapshot
	_, err := e.get("/nsxsim/api/stats", &s)
	return s, err
}

func (e *externalNSX) resetStats() error {
	req, _ := http.NewRequest(http.MethodDelete, e.base+"/nsxsim/api/stats", nil)
	resp, err := e.http.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}
