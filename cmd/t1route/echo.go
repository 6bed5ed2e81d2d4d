package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// EchoReply is what `t1route echo` answers: the caller's address as the
// server saw it. A NAT on the way shows as a source that is not the caller's.
type EchoReply struct {
	RemoteAddr string `json:"remoteAddr"` // ip:port
	RemoteIP   string `json:"remoteIP"`
	LocalAddr  string `json:"localAddr"` // the address the caller reached
	Hostname   string `json:"hostname,omitempty"`
}

func newEchoCommand(stdout io.Writer) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Serve HTTP answering with the caller's source address as seen here",
		Long: `echo answers every HTTP request with JSON naming the caller's source address
as this server saw it (remoteIP) and the address it was reached at. Run it in a
pod (the probe image) and curl it from outside: remoteIP must be the caller's
own address when nothing on the way translates it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			fmt.Fprintf(stdout, "echo: serving on %s\n", ln.Addr())
			srv := &http.Server{Handler: echoHandler(), ReadHeaderTimeout: 5 * time.Second,
				ConnContext: func(ctx context.Context, c net.Conn) context.Context {
					return context.WithValue(ctx, localAddrKey{}, c.LocalAddr().String())
				}}
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address to serve on")
	return cmd
}

type localAddrKey struct{}

func echoHandler() http.Handler {
	host, _ := os.Hostname()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		local, _ := r.Context().Value(localAddrKey{}).(string)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(EchoReply{RemoteAddr: r.RemoteAddr, RemoteIP: ip, LocalAddr: local, Hostname: host}) //nolint:errcheck
	})
}
