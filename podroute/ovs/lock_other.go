//go:build !unix

package ovs

import "fmt"

// lockFile needs flock(2): the datapath runs on Linux nodes only.
func lockFile(path string) (func(), error) {
	return nil, fmt.Errorf("lock %s: %w", path, errNotLinux)
}
