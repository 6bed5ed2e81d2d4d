//go:build !linux

package neighbors

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// Link is the kernel neighbour table of a link: Linux only.
type Link struct{ Name string }

var errNotLinux = fmt.Errorf("neighbour tables need Linux, not %s: %w", runtime.GOOS, errors.ErrUnsupported)

// Permanent is Linux-only.
func (Link) Permanent(context.Context) ([]Entry, error) { return nil, errNotLinux }

// Set is Linux-only.
func (Link) Set(context.Context, Entry) error { return errNotLinux }

// Delete is Linux-only.
func (Link) Delete(context.Context, Entry) error { return errNotLinux }
