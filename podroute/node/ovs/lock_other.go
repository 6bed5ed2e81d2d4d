//go:build !unix

package ovs

import "fmt"

// LockFile needs flock(2): the datapath runs on Linux nodes only.
func LockFile(path string) (func(), error) {
	return nil, fmt.Errorf("lock %s: %w", path, errNotLinux)
}

func fileLocked(string) bool { return false }
