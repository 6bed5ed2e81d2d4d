package daemon

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// NewRegistry is a Prometheus registry holding the Go runtime's and the
// process's collectors; a command adds its own metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ServeHealth serves /metrics from reg, /healthz, and /readyz, which answers
// 503 with ready's error until it returns nil, over plain HTTP to anyone
// who reaches addr (the agent binds it to 127.0.0.1). It returns once
// listening; Shutdown or Close the server to stop it.
func ServeHealth(addr string, reg *prometheus.Registry, ready func() error, log *zap.Logger) (*http.Server, error) {
	return serve(addr, reg, ready, nil, nil, log)
}

// ServeHealthTLS is ServeHealth over HTTPS, with /metrics only for what
// auth lets through; /healthz and /readyz stay open (the kubelet's probes
// carry no token).
func ServeHealthTLS(addr string, reg *prometheus.Registry, ready func() error, tlsConfig *tls.Config, auth *KubeAuth, log *zap.Logger) (*http.Server, error) {
	return serve(addr, reg, ready, tlsConfig, auth, log)
}

func serve(addr string, reg *prometheus.Registry, ready func() error, tlsConfig *tls.Config, auth *KubeAuth, log *zap.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if auth != nil {
		metrics = auth.Wrap(metrics)
	}
	mux.Handle("/metrics", metrics)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }) //nolint:errcheck
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n") //nolint:errcheck
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, TLSConfig: tlsConfig}
	what := "serving metrics and health"
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
		what = "serving metrics and health over HTTPS"
		if auth != nil {
			what += ", /metrics for authorized tokens only"
		}
	}
	go srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
	log.Info(what, zap.String("address", ln.Addr().String()))
	return srv, nil
}
