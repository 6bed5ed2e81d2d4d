package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/t1route/t1route/podroute/probe"
)

func newEchoCommand(stdout io.Writer) *cobra.Command {
	var listen string
	var udp bool
	cmd := &cobra.Command{
		Use:   "echo",
		Short: "Serve HTTP answering with the caller's source address as seen here",
		Long: `echo answers every HTTP request with JSON naming the caller's source address
as this server saw it (remoteIP) and the address it was reached at. Run it in a
pod (the probe image) and curl it from outside: remoteIP must be the caller's
own address when nothing on the way translates it. With --udp it also answers
each UDP datagram on the same address, with the same JSON and the datagram's
content as "data".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			fmt.Fprintf(stdout, "echo: serving on %s\n", ln.Addr())
			srv := probe.EchoServer()
			if udp {
				pc, err := net.ListenPacket("udp", listen)
				if err != nil {
					ln.Close()
					return fmt.Errorf("--listen %s (UDP): %w", listen, err)
				}
				fmt.Fprintf(stdout, "echo: serving UDP on %s\n", pc.LocalAddr())
				go func() { <-ctx.Done(); pc.Close() }()
				go probe.ServeUDP(pc) //nolint:errcheck // ends with pc
			}
			go func() { <-ctx.Done(); srv.Close() }()
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address to serve on")
	cmd.Flags().BoolVar(&udp, "udp", false, "also answer UDP datagrams on the same address")
	return cmd
}
