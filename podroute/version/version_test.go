package version

import (
	"os"
	"regexp"
	"testing"
)

// latestReleased returns the version of the first "## [x.y.z]" heading of a
// Keep a Changelog file (the newest release; "## [Unreleased]" is not one).
func latestReleased(changelog string) string {
	m := regexp.MustCompile(`(?m)^## \[v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\]`).FindStringSubmatch(changelog)
	if m == nil {
		return ""
	}
	return m[1]
}

// The tree says one version: the one CHANGELOG.md released last.
func TestChangelogNamesThisVersion(t *testing.T) {
	b, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	got := latestReleased(string(b))
	if got == "" {
		t.Fatalf("CHANGELOG.md has no released version (a \"## [x.y.z] - date\" heading); podroute/version says %s", Version)
	}
	if got != Version {
		t.Fatalf("CHANGELOG.md's newest release is %s, podroute/version says %s: bump one to match the other", got, Version)
	}
}

func TestLatestReleased(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"# Changelog\n\n## [Unreleased]\n### Added\n- x\n\n## [0.2.0] - 2026-12-01\n## [0.1.0] - 2026-11-01\n", "0.2.0"},
		{"## [Unreleased]\n", ""},
		{"## [v1.2.3-rc.1] - 2026-01-01\n", "1.2.3-rc.1"},
		{"text ## [9.9.9]\n## [1.0.0]\n", "1.0.0"},
	} {
		if got := latestReleased(c.in); got != c.want {
			t.Errorf("latestReleased(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestStringAndTag(t *testing.T) {
	v, c := Version, Commit
	defer func() { Version, Commit = v, c }()
	Version, Commit = "1.2.3", ""
	if String() != "1.2.3" || Tag() != "v1.2.3" {
		t.Errorf("String %q Tag %q", String(), Tag())
	}
	Commit = "abc1234"
	if String() != "1.2.3 (commit abc1234)" {
		t.Errorf("String %q", String())
	}
}
