//go:build tools

// Package tools pins carvel.dev/ytt, which make package-tools builds into .cache/tools.
package tools

import _ "carvel.dev/ytt/cmd/ytt"
