//go:build !linux

package ovs

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
)

// The datapath runs on Linux nodes only; elsewhere (an operator's laptop
// running doctor or render) these say so instead of failing to build.

var errNotLinux = fmt.Errorf("the t1route datapath needs Linux, not %s: %w", runtime.GOOS, errors.ErrUnsupported)

// ConfigureHost is Linux-only.
func ConfigureHost(string, []netip.Prefix) error { return errNotLinux }

// DisableTxChecksum is Linux-only.
func DisableTxChecksum(string) error { return errNotLinux }

// IsolateHostPort is Linux-only.
func IsolateHostPort(string) error { return errNotLinux }
