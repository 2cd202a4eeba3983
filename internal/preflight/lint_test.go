package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// wantMarker is how a corpus file says what the lint must find: a
// "-- want RULE" line before the statement (the next line that is not a
// comment or blank).
var wantMarker = regexp.MustCompile(`^\s*--\s*want\s+([a-z-]+)\s*$`)

// wants reads a corpus file's expectations as "line rule" strings.
func wants(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []string
	for i, l := range lines {
		m := wantMarker.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		j := i + 1
		for j < len(lines) && (strings.TrimSpace(lines[j]) == "" || strings.HasPrefix(strings.TrimSpace(lines[j]), "--")) {
			j++
		}
		out = append(out, fmt.Sprintf("%d %s", j+1, m[1]))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// got lints one file and returns its failing findings as "line rule".
func got(t *testing.T, path string, allow ...string) ([]string, []Finding) {
	t.Helper()
	fs, _ := LintFiles([]string{path}, allow)
	var out []string
	for _, f := range fs {
		if f.File != path {
			t.Errorf("finding names file %q, want %q", f.File, path)
		}
		if f.Allowed == "" {
			out = append(out, fmt.Sprintf("%d %s", f.Line, f.Rule))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), fs
}

// Every rule has an unsafe case that the lint finds, at its line, and a
// safe case (the expand/contract way to the same schema) that it passes.
func TestLintCorpusEveryRule(t *testing.T) {
	for _, r := range Rules {
		t.Run(r.ID, func(t *testing.T) {
			unsafe := filepath.Join("testdata", "lint", "unsafe", r.ID+".sql")
			want := wants(t, unsafe)
			if len(want) == 0 {
				t.Fatalf("%s marks no finding", unsafe)
			}
			g, fs := got(t, unsafe)
			if !slices.Equal(g, want) {
				t.Errorf("%s: found %v, want %v\n%v", unsafe, g, want, fs)
			}
			for _, f := range fs {
				if f.Rule == r.ID && (f.Fix != r.Fix || !strings.Contains(f.Message, r.What) || f.Statement == "") {
					t.Errorf("finding %+v lacks the rule's fix, explanation or statement", f)
				}
			}
			safe := filepath.Join("testdata", "lint", "safe", r.ID+".sql")
			if g, fs := got(t, safe); len(g) != 0 {
				t.Errorf("%s: found %v in the safe form\n%v", safe, g, fs)
			}
		})
	}
}

// Migrations as projects write them: transactions, functions with
// dollar-quoted bodies, statements over several lines, comments and
// strings that mention DROP, several findings in one statement, an
// allow comment at the end of a line, a syntax error.
func TestLintRealWorldMigrations(t *testing.T) {
	files, err := MigrationFiles(filepath.Join("testdata", "lint", "realworld"), "v2")
	if err != nil || len(files) != 5 {
		t.Fatalf("MigrationFiles = %v, %v", files, err)
	}
	total := 0
	for _, f := range files {
		want := wants(t, f)
		g, fs := got(t, f)
		total += len(g)
		if !slices.Equal(g, want) {
			t.Errorf("%s: found %v, want %v\n%v", f, g, want, fs)
		}
	}
	if total == 0 {
		t.Fatal("the real-world corpus produced no finding at all")
	}
	// The contract step's allow comment accepts its own statement only.
	_, fs := got(t, filepath.Join("testdata", "lint", "realworld", "0004_contract.sql"))
	var allowed []Finding
	for _, f := range fs {
		if f.Allowed != "" {
			allowed = append(allowed, f)
		}
	}
	if len(allowed) != 1 || allowed[0].Rule != "drop-column" || allowed[0].Line != 3 {
		t.Fatalf("allowed findings = %+v, want drop-column at line 3", allowed)
	}
}

// The service's allow list accepts a rule everywhere; the statement count
// covers every file.
func TestLintAllowList(t *testing.T) {
	f := filepath.Join("testdata", "lint", "realworld", "0003_rename_total.sql")
	g, fs := got(t, f, "rename-column", "create-index")
	want := []string{"13 set-not-null", "13 drop-column", "7 alter-column-type"}
	slices.Sort(want)
	if !slices.Equal(g, want) {
		t.Fatalf("with allow: found %v, want %v", g, want)
	}
	n := 0
	for _, x := range fs {
		if x.Allowed == "preflight.migrations.allow" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d findings allowed by the list, want 2: %+v", n, fs)
	}
	_, stmts := LintFiles([]string{f}, nil)
	if stmts != 7 {
		t.Fatalf("%d statements, want 7 (BEGIN, 5, COMMIT)", stmts)
	}
}

// ${VERSION} picks the release's directory; a missing one is no migration.
func TestMigrationFilesVersionDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b.sql", "a.sql", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, "v2", name), []byte("SELECT 1;"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := MigrationFiles(filepath.Join(dir, "${VERSION}"), "v2")
	if err != nil || len(files) != 2 || filepath.Base(files[0]) != "a.sql" {
		t.Fatalf("files = %v, %v", files, err)
	}
	if files, err := MigrationFiles(filepath.Join(dir, "${VERSION}"), "v3"); err != nil || len(files) != 0 {
		t.Fatalf("v3: files = %v, %v", files, err)
	}
	if files, _ := MigrationFiles(filepath.Join(dir, "*", "b.sql"), "v2"); len(files) != 1 {
		t.Fatalf("glob: files = %v", files)
	}
}
