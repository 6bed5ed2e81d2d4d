//go:build tools

// Package tools pins carvel.dev/kapp, which make package-tools builds into .cache/tools.
package tools

import _ "carvel.dev/kapp/cmd/kapp"
