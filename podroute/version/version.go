// Package version is t1route's release version: the one place it is
// written. The Makefile reads it from here (make build, make image), `t1route
// version` prints it, images are tagged with it and rendered manifests
// name it; CHANGELOG.md's newest released section must name it too
// (TestChangelogNamesThisVersion).
package version

import "strings"

// Version is the release this tree builds, in semantic versioning without
// a "v". Bump it in the commit that releases; -ldflags "-X" can stamp another
// value for tests that need two versions of one tree, never for a release.
var Version = "0.1.0"

// Commit is the source revision, stamped at build time with
// -ldflags "-X github.com/t1route/t1route/podroute/version.Commit=<sha>";
// empty when the build did not say.
var Commit = ""

// Tag is the image tag of this version: "v" and Version.
func Tag() string { return "v" + strings.TrimPrefix(Version, "v") }

// String is what `t1route version` prints after the program's name:
// the version and, when known, the commit.
func String() string {
	if Commit == "" {
		return Version
	}
	return Version + " (commit " + Commit + ")"
}
