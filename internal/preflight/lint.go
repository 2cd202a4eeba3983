package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// This file is the migration compatibility lint. Every file is parsed by
// PostgreSQL's own parser (libpg_query, PostgreSQL 17's grammar, through
// pg_query_go: cgo), and the rules look at the parse tree, never at the
// text: a column named "drop" or a DROP inside a string or a comment is
// not a finding.
//
// Why cgo and not the WebAssembly build of the same parser
// (github.com/wasilibs/go-pgquery, which resolves here): measured on this
// project's 2-core machine, each of its parser instances took 2.5 s to
// compile and 2 GB of heap without the race detector, and 35-60 s and
// over 4 GB under -race, where sync.Pool drops instances at random and so
// recompiles often; the package's tests were killed for memory. The C
// parser starts at once and parses a file in microseconds.

// AllowComment is the comment that accepts one statement on purpose:
// "-- cutover:allow RULE [RULE...]" inside the statement, on the line
// before it, or after it on its last line.
const AllowComment = "cutover:allow"

// Statement is one parsed migration statement, for the rules.
type statement struct {
	file  string
	line  int      // 1-based line of the statement's first token
	text  string   // the statement as written, for messages
	allow []string // rule ids its cutover:allow comments name
	node  *pg.Node
}

// LintFiles parses and checks files in order. created tracks tables that
// the files themselves create: nothing serves from those yet, so dropping,
// renaming, locking or constraining them breaks nobody. allow lists rule
// ids accepted for every statement. A file that cannot be read or parsed
// is a finding of rule "parse-error" (the release would not migrate).
func LintFiles(files []string, allow []string) ([]Finding, int) {
	var out []Finding
	ls := newLintState()
	n := 0
	for _, f := range files {
		ls.inTx = false // each file is run on its own
		clear(ls.txNotValid)
		stmts, line, err := parseFile(f)
		if err != nil {
			out = append(out, Finding{Check: CheckMigrations, Rule: "parse-error", File: f, Line: line,
				Message: err.Error(), Fix: "fix the SQL: PostgreSQL would refuse this migration"})
			continue
		}
		for _, st := range stmts {
			n++
			for _, fd := range checkStatement(st, ls) {
				fd.Check, fd.File, fd.Line, fd.Statement = CheckMigrations, st.file, st.line, oneLine(st.text)
				if slices.Contains(allow, fd.Rule) {
					fd.Allowed = "preflight.migrations.allow"
				} else if slices.Contains(st.allow, fd.Rule) || slices.Contains(st.allow, "all") {
					fd.Allowed = "-- " + AllowComment + " comment"
				}
				out = append(out, fd)
			}
		}
	}
	return out, n
}

// MigrationFiles expands dir (${VERSION} substituted; a directory means
// its *.sql files, anything else a glob) into the sorted files it names.
// A directory that does not exist names no file: the release runs no
// migration.
func MigrationFiles(dir, version string) ([]string, error) {
	pattern := strings.ReplaceAll(dir, "${VERSION}", version)
	if fi, err := os.Stat(pattern); err == nil && fi.IsDir() {
		pattern = filepath.Join(pattern, "*.sql")
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("migrations dir %q: %w", dir, err)
	}
	slices.Sort(files)
	return files, nil
}

// parseFile parses one file; on a syntax error it returns the line the
// parser stopped at.
func parseFile(path string) ([]statement, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	src := string(b)
	// The parser reads a C string (a NUL would silently end the file
	// there) and hands back UTF-8: say where either goes wrong.
	if i := strings.IndexByte(src, 0); i >= 0 {
		return nil, lineAt(src, i), errors.New("the file holds a NUL byte")
	}
	if !utf8.ValidString(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRuneInString(src[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, lineAt(src, i), errors.New("the file is not valid UTF-8")
	}
	tree, err := pg.Parse(src)
	if err != nil {
		line := 0
		var perr *parser.Error
		if errors.As(err, &perr) && perr.Cursorpos > 0 {
			// Cursorpos counts characters, not bytes.
			line = lineAt(src, runeOffset(src, perr.Cursorpos-1))
		}
		return nil, line, fmt.Errorf("syntax error: %w", err)
	}
	lines := newLineIndex(src)
	comments, err := allowComments(src)
	if err != nil {
		return nil, 0, fmt.Errorf("scan: %w", err)
	}
	var out []statement
	for _, raw := range tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(src)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		first := firstToken(src, start, end)
		st := statement{file: path, line: lines.at(first), text: strings.TrimSpace(src[first:end]), node: raw.Stmt}
		stmtLine := st.line
		lastLine := lines.at(end)
		for _, c := range comments {
			// The statement's own span (leading comments included), the
			// line just before it, or its last line after the semicolon.
			inside := c.pos >= start && c.pos < end
			before := c.line == stmtLine-1 && c.pos < first
			after := c.line == lastLine && c.pos >= end
			if inside || before || after {
				st.allow = append(st.allow, c.rules...)
			}
		}
		out = append(out, st)
	}
	return out, 0, nil
}

type allowNote struct {
	pos, line int
	rules     []string
}

// allowComments finds the cutover:allow comments with PostgreSQL's own
// scanner, so that the words inside a string literal are not a comment.
func allowComments(src string) ([]allowNote, error) {
	scan, err := pg.Scan(src)
	if err != nil {
		return nil, err
	}
	var out []allowNote
	lines := newLineIndex(src)
	for _, tok := range scan.Tokens {
		if tok.Token != pg.Token_SQL_COMMENT && tok.Token != pg.Token_C_COMMENT {
			continue
		}
		text := src[tok.Start:tok.End]
		text = strings.TrimPrefix(strings.TrimPrefix(text, "--"), "/*")
		text = strings.TrimSuffix(text, "*/")
		_, rest, ok := strings.Cut(text, AllowComment)
		if !ok {
			continue
		}
		rules := strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == ':' })
		out = append(out, allowNote{pos: int(tok.Start), line: lines.at(int(tok.Start)), rules: rules})
	}
	return out, nil
}

// firstToken skips whitespace and comments from start, returning the
// offset of the statement's first token.
func firstToken(src string, start, end int) int {
	i := start
	for i < end {
		switch {
		case src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r':
			i++
		case strings.HasPrefix(src[i:], "--"):
			nl := strings.IndexByte(src[i:], '\n')
			if nl < 0 {
				return end
			}
			i += nl + 1
		case strings.HasPrefix(src[i:], "/*"):
			cl := strings.Index(src[i+2:], "*/")
			if cl < 0 {
				return end
			}
			i += cl + 4
		default:
			return i
		}
	}
	return min(i, len(src))
}

func lineAt(src string, off int) int {
	return strings.Count(src[:min(off, len(src))], "\n") + 1
}

// lineIndex finds the line of an offset in O(log n), for files of many
// statements.
type lineIndex []int // offsets of the newlines

func newLineIndex(src string) lineIndex {
	var ix lineIndex
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			ix = append(ix, i)
		}
	}
	return ix
}

func (ix lineIndex) at(off int) int {
	n, _ := slices.BinarySearch(ix, off)
	return n + 1
}

// runeOffset is the byte offset of the n-th character of src.
func runeOffset(src string, n int) int {
	for i := range src {
		if n == 0 {
			return i
		}
		n--
	}
	return len(src)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
