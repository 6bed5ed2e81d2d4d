package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/t1route/t1route/podroute/config"
)

func newValidateConfigCommand(stdout, stderr io.Writer, getenv func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate-config",
		Short: "Check the NSXT_* configuration and print it with secrets redacted",
		Long: `validate-config reads the configuration exactly as the controller would and
prints the effective values, every secret shown as <redacted>, and the way of
authenticating chosen and why. Exit 0 if valid; exit 2 with one line per
problem (the variable, what is wrong, an example of a right value) if not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, s, err := loadConfig(cmd, getenv, stderr)
			if err != nil {
				return err
			}
			config.Describe(stdout, cfg, s)
			return nil
		},
	}
	config.AddFlags(cmd.Flags())
	return cmd
}
