//go:build tools

// Package tools pins carvel.dev/kbld, which make package-tools builds into .cache/tools.
package tools

import _ "carvel.dev/kbld/cmd/kbld"
