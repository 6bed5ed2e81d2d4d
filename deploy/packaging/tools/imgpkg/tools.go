//go:build tools

// Package tools pins carvel.dev/imgpkg, which make package-tools builds into .cache/tools.
package tools

import _ "carvel.dev/imgpkg/cmd/imgpkg"
