// Package envfile reads env files: KEY=VALUE lines, as the process
// runtime's env_file and `cutover deploy --env-file` take them. Its errors
// name the file and the line and never repeat the line's text, which may
// hold a secret. It imports nothing of cutover's.
package envfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Error is one problem in an env file. It names the file and the
// line, and never repeats the line's text: the value may be a secret.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Read reads and parses the env file at path (see Parse).
// A file that cannot be read gives the read error, which names the file.
func Read(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses data, the content of the env file named file, into
// variables. The format is the common one of .env files:
//
//   - one KEY=VALUE per line; KEY is letters, digits and '_', not starting
//     with a digit; a line may start with "export ";
//   - blank lines, and lines whose first non-blank character is '#', are
//     ignored;
//   - an unquoted VALUE is the rest of the line with surrounding blanks
//     removed, up to a '#' that follows a blank (a comment);
//   - 'single quotes' keep everything inside as written; "double quotes"
//     understand \n, \t, \r, \", \\ and \$; after the closing quote only
//     blanks and a comment may follow;
//   - a KEY set twice is an error, as in the config file.
//
// Values are taken literally: ${VAR} is not expanded. The error (one
// *Error per bad line, joined) never holds a line's text.
func Parse(file string, data []byte) (map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	vars := make(map[string]string)
	first := make(map[string]int)
	var errs []error
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		key, value, ok, msg := parseEnvLine(strings.TrimSuffix(raw, "\r"))
		switch {
		case msg != "":
			errs = append(errs, &Error{File: file, Line: line, Msg: msg})
		case !ok:
		case first[key] != 0:
			errs = append(errs, &Error{File: file, Line: line,
				Msg: fmt.Sprintf("%s set twice (first on line %d)", key, first[key])})
		default:
			first[key] = line
			vars[key] = value
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return vars, nil
}

// parseEnvLine parses one line: ok is false for a blank or comment line;
// msg says what is wrong with a bad one, without quoting it.
func parseEnvLine(s string) (key, value string, ok bool, msg string) {
	s = strings.TrimLeft(s, " \t")
	if s == "" || s[0] == '#' {
		return "", "", false, ""
	}
	if rest, found := strings.CutPrefix(s, "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		s = strings.TrimLeft(rest, " \t")
	}
	key, rest, found := strings.Cut(s, "=")
	if !found {
		return "", "", false, "expected KEY=VALUE"
	}
	key = strings.TrimRight(key, " \t")
	if !ValidName(key) {
		return "", "", false, "the name before '=' must be letters, digits and '_', not starting with a digit"
	}
	value, msg = parseEnvValue(strings.TrimLeft(rest, " \t"))
	if msg != "" {
		return "", "", false, key + ": " + msg
	}
	if strings.IndexByte(value, 0) >= 0 {
		return "", "", false, key + ": the value holds a NUL byte, which no environment variable can"
	}
	return key, value, true, ""
}

// parseEnvValue parses what follows '=' (leading blanks removed).
func parseEnvValue(s string) (string, string) {
	if s == "" {
		return "", ""
	}
	switch s[0] {
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", "the single quote is not closed (values span one line)"
		}
		return s[1 : 1+end], trailing(s[2+end:])
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '"':
				return b.String(), trailing(s[i+1:])
			case c == '\\' && i+1 < len(s):
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '"', '\\', '$':
					b.WriteByte(s[i])
				default: // an unknown escape stays as written
					b.WriteByte('\\')
					b.WriteByte(s[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", "the double quote is not closed (values span one line; write \\n for a newline)"
	}
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			s = s[:i]
			break
		}
	}
	return strings.TrimRight(s, " \t"), ""
}

// trailing checks what follows a closing quote: blanks, then a comment.
func trailing(s string) string {
	s = strings.TrimLeft(s, " \t")
	if s == "" || s[0] == '#' {
		return ""
	}
	return "only a comment may follow the closing quote"
}

// ValidName reports whether name is a portable environment variable
// name: letters, digits and '_', not starting with a digit.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
