package builder

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Every package of the node image is pinned: an exact version and the
// SHA-256 of its file, once each.
func TestNodeDebsArePinned(t *testing.T) {
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for _, d := range nodeDebs {
		if d.Version == "" || !hex64.MatchString(d.SHA256) {
			t.Errorf("%s: version %q, SHA256 %q: pin both", d.Package, d.Version, d.SHA256)
		}
		if seen[d.Package] {
			t.Errorf("%s pinned twice", d.Package)
		}
		seen[d.Package] = true
	}
}

func TestCheckPins(t *testing.T) {
	pins := []Deb{{Package: "dash", Version: "0.5.12-2", SHA256: strings.Repeat("a", 64)},
		{Package: "zlib1g", Version: "1:1.2.13.dfsg-1", SHA256: strings.Repeat("b", 64)}}
	out := "'http://deb.example/dash_0.5.12-2_amd64.deb' dash_0.5.12-2_amd64.deb 91848 SHA256:" + strings.Repeat("a", 64) + "\n" +
		"'http://deb.example/zlib1g_1.2.13.dfsg-1_amd64.deb' zlib1g_1%3a1.2.13.dfsg-1_amd64.deb 86684 SHA256:" + strings.Repeat("b", 64) + "\n"
	if err := checkPins(pins, parsePrintURIs([]byte(out))); err != nil {
		t.Fatalf("the pinned files: %v", err)
	}
	cases := []struct {
		name, out string
		want      []string
	}{
		{"a newer version", strings.Replace(out, "dash_0.5.12-2_amd64", "dash_0.5.12-3_amd64", -1),
			[]string{"dash: pinned 0.5.12-2, apt offers 0.5.12-3", "--print-deb-pins"}},
		{"other content under the pinned version", strings.Replace(out, "SHA256:"+strings.Repeat("b", 64), "SHA256:"+strings.Repeat("c", 64), 1),
			[]string{"zlib1g=1:1.2.13.dfsg-1: pinned SHA256 " + strings.Repeat("b", 64) + ", apt's index says " + strings.Repeat("c", 64)}},
		{"not offered", strings.SplitAfter(out, "\n")[0], []string{"zlib1g=1:1.2.13.dfsg-1: apt offers no file"}},
		{"offered, not pinned", out + "'http://deb.example/libc6_2.36_amd64.deb' libc6_2.36_amd64.deb 1 SHA256:" + strings.Repeat("d", 64) + "\n",
			[]string{"libc6=2.36: offered but not pinned"}},
	}
	for _, tc := range cases {
		err := checkPins(pins, parsePrintURIs([]byte(tc.out)))
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
}

// With this machine's apt sources: a pin whose SHA-256 differs from the
// index is refused before anything is downloaded; the pinned file is
// downloaded and verified.
func TestFetchDebsHoldsToThePins(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not found: the node image is built on Debian")
	}
	var dash Deb
	for _, d := range nodeDebs {
		if d.Package == "dash" {
			dash = d
		}
	}
	dir := t.TempDir()
	bad := dash
	bad.SHA256 = strings.Repeat("0", 64)
	_, err := FetchDebs(context.Background(), dir, []Deb{bad})
	if err == nil || !strings.Contains(err.Error(), "dash=0.5.12-2: pinned SHA256 "+bad.SHA256) {
		t.Fatalf("a wrong pin: %v", err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("downloaded despite the wrong pin: %v", files)
	}
	fetched, err := FetchDebs(context.Background(), dir, []Deb{dash})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := sha256Is(fetched[0].File, dash.SHA256); !ok {
		t.Fatalf("%s does not match its pin: %v", fetched[0].File, err)
	}
}

// A pinned version the apt sources no longer offer (Debian replaced it)
// stops the build with apt's own line and how to update the pins.
func TestFetchDebsNamesAVersionNoLongerOffered(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not found: the node image is built on Debian")
	}
	gone := Deb{Package: "dash", Version: "0.5.11-0", SHA256: strings.Repeat("0", 64)}
	_, err := FetchDebs(context.Background(), t.TempDir(), []Deb{gone})
	if err == nil || !strings.Contains(err.Error(), "E: Version '0.5.11-0' for 'dash' was not found") || !strings.Contains(err.Error(), "--print-deb-pins") {
		t.Fatalf("a version no longer offered: %v", err)
	}
	// As root the index is refreshed first (a fresh machine's may be older
	// than the pins), and the error says so: the version really is gone.
	if os.Geteuid() == 0 && !strings.Contains(err.Error(), "the package index was refreshed") {
		t.Fatalf("as root, the error does not say the index was refreshed: %v", err)
	}
}

func TestAPTIndexMayBeStale(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{"E: Version '3.0.22-1~deb12u2' for 'libssl3' was not found\n", true},
		{"Reading package lists...\nE: Unable to locate package libfoo\n", true},
		{"E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)\n", false},
		{"'http://deb.debian.org/debian/pool/main/d/dash/dash_0.5.12-2_amd64.deb' dash_0.5.12-2_amd64.deb 94076 SHA256:abc\n", false},
	} {
		if got := aptIndexMayBeStale([]byte(tc.out)); got != tc.want {
			t.Errorf("aptIndexMayBeStale(%q) = %v, want %v", tc.out, got, tc.want)
		}
	}
}

// Test images take what apt offers now, still verified against its index.
func TestFetchOfferedDebs(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not found: the images are built on Debian")
	}
	offered, err := OfferedPins(context.Background(), []Deb{{Package: "dash"}})
	if err != nil || len(offered) != 1 {
		t.Fatalf("offered: %v %v", offered, err)
	}
	fetched, err := FetchOfferedDebs(context.Background(), t.TempDir(), []string{"dash"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := sha256Is(fetched[0].File, offered[0].SHA256); !ok || fetched[0].Version != offered[0].Version {
		t.Fatalf("%+v does not match apt's index %+v: %v", fetched[0], offered[0], err)
	}
}
