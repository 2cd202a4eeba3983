package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lintOne writes src to a file and lints it.
func lintOne(t *testing.T, src string) ([]Finding, int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "0001.sql")
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return LintFiles([]string{f}, nil)
}

// Files no migration tool would run are a parse-error at their line,
// never a panic and never a silent pass.
func TestLintBadInput(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		msg       string
	}{
		// PostgreSQL counts the error position in characters: the
		// accents before it must not move the line.
		{"a syntax error after multi-byte text", "-- é é é é é é é é é é é é\n-- éééééééééééééééééééééééééééééééééééé\nSELECT 1;\nSELEC 2;\n", 4, `near "SELEC"`},
		// The parser reads a C string: a NUL would hide the DROP after it.
		{"a NUL byte", "SELECT 1;\nALTER TABLE t ADD COLUMN c int;\x00\nDROP TABLE users;", 2, "NUL byte"},
		{"Latin-1, not UTF-8", "SELECT 1;\n\nALTER TABLE t ADD COLUMN n text DEFAULT 'caf\xe9';\nDROP TABLE users;", 3, "not valid UTF-8"},
		{"an unterminated string", "SELECT 1;\nSELECT 'abc", 2, "unterminated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, _ := lintOne(t, c.src)
			if len(fs) != 1 || fs[0].Rule != "parse-error" || fs[0].Line != c.line || !strings.Contains(fs[0].Message, c.msg) {
				t.Fatalf("findings %+v, want one parse-error at line %d saying %q", fs, c.line, c.msg)
			}
		})
	}
	for _, src := range []string{"", "-- only a comment\n/* and another */\n", "\n\n"} {
		if fs, n := lintOne(t, src); len(fs) != 0 || n != 0 {
			t.Errorf("%q: %d statements, findings %v", src, n, fs)
		}
	}
}

// A large generated migration (20,000 statements) lints, the last
// statement at its line; the line index that replaced rescanning the
// file per statement agrees with a plain count at every offset.
func TestLintHugeFile(t *testing.T) {
	const n = 20000
	src := strings.Repeat("ALTER TABLE t ADD COLUMN c int;\n", n-1) + "ALTER TABLE t DROP COLUMN c;\n"
	start := time.Now()
	fs, stmts := lintOne(t, src)
	took := time.Since(start)
	if stmts != n || len(fs) != 1 || fs[0].Rule != "drop-column" || fs[0].Line != n {
		t.Fatalf("%d statements, findings %+v; want %d and one drop-column at line %d", stmts, fs, n, n)
	}
	small := "a\nbb\n\nccc\n"
	ix := newLineIndex(small)
	for off := 0; off <= len(small)+1; off++ {
		if ix.at(off) != lineAt(small, off) {
			t.Fatalf("line of offset %d: index %d, count %d", off, ix.at(off), lineAt(small, off))
		}
	}
	t.Logf("%d statements (%d bytes) in %v", n, len(src), took)
}

// ALTER COLUMN ... TYPE stays a finding (the lint cannot see the old
// type), but to varchar or text it says that a widening is safe and how
// to accept it.
func TestLintAlterTypeWideningHint(t *testing.T) {
	fs, _ := lintOne(t, "ALTER TABLE users ALTER COLUMN name TYPE varchar(200);\nALTER TABLE users ALTER COLUMN age TYPE bigint;\n")
	if len(fs) != 2 || fs[0].Rule != "alter-column-type" || fs[1].Rule != "alter-column-type" {
		t.Fatalf("findings %+v", fs)
	}
	if !strings.Contains(fs[0].Message, "only widens a varchar") || strings.Contains(fs[1].Message, "widens") {
		t.Fatalf("messages %q / %q", fs[0].Message, fs[1].Message)
	}
}

// The transaction state is per file: a BEGIN left open in one file does
// not make the next file's CONCURRENTLY a finding.
func TestLintTransactionPerFile(t *testing.T) {
	d := t.TempDir()
	a, b := filepath.Join(d, "1.sql"), filepath.Join(d, "2.sql")
	os.WriteFile(a, []byte("BEGIN;\nALTER TABLE t ADD COLUMN c int;\n"), 0o644)
	os.WriteFile(b, []byte("CREATE INDEX CONCURRENTLY t_c ON t (c);\n"), 0o644)
	if fs, _ := LintFiles([]string{a, b}, nil); len(fs) != 0 {
		t.Fatalf("findings %+v", fs)
	}
}

// A CHECK (col IS NOT NULL) added validated, named or not, spares the
// later SET NOT NULL its scan (PostgreSQL 12+); the CHECK itself is the
// add-constraint finding.
func TestLintSetNotNullAfterValidatedCheck(t *testing.T) {
	fs, _ := lintOne(t, "ALTER TABLE users ADD CHECK (email IS NOT NULL);\nALTER TABLE users ALTER COLUMN email SET NOT NULL;\nALTER TABLE users ALTER COLUMN name SET NOT NULL;\n")
	var rules []string
	for _, f := range fs {
		rules = append(rules, fmt.Sprintf("%d %s", f.Line, f.Rule))
	}
	if strings.Join(rules, ",") != "1 add-constraint,3 set-not-null" {
		t.Fatalf("findings %v, want the CHECK and name's SET NOT NULL", rules)
	}
}
