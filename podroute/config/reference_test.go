package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// referenceDoc is the configuration reference users read.
var referenceDoc = filepath.Join("..", "..", "docs", "configuration.md")

// The reference in docs/ is the variable table's: with T1ROUTE_UPDATE_DOCS=1
// (make docs) this test writes it, otherwise (make check) it fails when the
// table changed and the doc did not.
func TestConfigurationReferenceIsCurrent(t *testing.T) {
	old, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatalf("reading the configuration reference: %v", err)
	}
	doc, err := ReplaceReference(string(old))
	if err != nil {
		t.Fatalf("%s: %v", referenceDoc, err)
	}
	if doc == string(old) {
		return
	}
	if os.Getenv("T1ROUTE_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(referenceDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", referenceDoc)
		return
	}
	t.Errorf("%s is not current with podroute/config's variable table: run `make docs` and commit it", referenceDoc)
}

func TestReferenceListsEveryVariable(t *testing.T) {
	var b strings.Builder
	if err := WriteReference(&b); err != nil {
		t.Fatal(err)
	}
	ref := b.String()
	lines := strings.Split(strings.TrimSpace(ref), "\n")
	if got, want := len(lines), 2+len(Variables()); got != want {
		t.Fatalf("reference has %d lines, want a header, a rule and one row per variable (%d)", got, want)
	}
	for i, v := range Variables() {
		row := lines[2+i]
		if !strings.HasPrefix(row, "| `"+v.Env+"` | `--"+v.Flag+"` |") {
			t.Errorf("row %d is %q, want %s and --%s first", i, row, v.Env, v.Flag)
		}
		if strings.Count(row, " | ") != 4 {
			t.Errorf("row of %s has %d cell separators, want 4 (is a | in its help unescaped?): %q", v.Env, strings.Count(row, " | "), row)
		}
		if v.Secret && !strings.Contains(row, "secret") {
			t.Errorf("row of secret %s does not say it is secret: %q", v.Env, row)
		}
	}
}

func TestReplaceReference(t *testing.T) {
	var b strings.Builder
	if err := WriteReference(&b); err != nil {
		t.Fatal(err)
	}
	doc := "# Configuration\n\nprose\n\n" + ReferenceBegin + "\nstale table\n" + ReferenceEnd + "\n\nmore prose\n"
	got, err := ReplaceReference(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Configuration\n\nprose\n\n" + ReferenceBegin + "\n\n" + b.String() + "\n" + ReferenceEnd + "\n\nmore prose\n"
	if got != want {
		t.Errorf("ReplaceReference:\n%s\nwant:\n%s", got, want)
	}
	again, err := ReplaceReference(got)
	if err != nil || again != got {
		t.Errorf("a second replacement changed the doc (err %v)", err)
	}
	for _, bad := range []string{"no markers", ReferenceEnd + "\n" + ReferenceBegin, ReferenceBegin + " only"} {
		if _, err := ReplaceReference(bad); err == nil {
			t.Errorf("ReplaceReference(%q): no error", bad)
		}
	}
}
