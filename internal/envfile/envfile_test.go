package envfile

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		data string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"comments and blanks", "# a comment\n\n   \n  # indented comment\nA=1\n", map[string]string{"A": "1"}},
		{"export prefix", "export A=1\nexport\tB=2\nexportC=3\n", map[string]string{"A": "1", "B": "2", "exportC": "3"}},
		{"blanks around", "  A = 1  \n", map[string]string{"A": "1"}},
		{"empty value", "A=\nB=''\nC=\"\"\n", map[string]string{"A": "", "B": "", "C": ""}},
		{"equals in value", "URL=postgres://u:p@h/db?sslmode=require&x=1\n", map[string]string{"URL": "postgres://u:p@h/db?sslmode=require&x=1"}},
		{"inline comment", "A=1 # one\nB=x#y\nC=pa ss # word\n", map[string]string{"A": "1", "B": "x#y", "C": "pa ss"}},
		{"single quotes are literal", `A='a "b" \n $X # c'` + "\n", map[string]string{"A": `a "b" \n $X # c`}},
		{"double quotes with escapes", `A="line1\nline2\t\"q\" \\ \$X \z" # comment` + "\n", map[string]string{"A": "line1\nline2\t\"q\" \\ $X \\z"}},
		{"no expansion", "A=${HOME}\n", map[string]string{"A": "${HOME}"}},
		{"CRLF and BOM", "\ufeffA=1\r\nB='2'\r\n", map[string]string{"A": "1", "B": "2"}},
		{"no final newline", "A=1", map[string]string{"A": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("web.env", []byte(tt.data))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// Every bad line is reported with file:line, and no message repeats the
// line's text, which may hold a secret.
func TestParseErrors(t *testing.T) {
	const data = "A=1\n" +
		"hunter2\n" +
		"9X=hunter2\n" +
		"B='hunter2\n" +
		"C=\"hunter2\n" +
		"D='x' hunter2\n" +
		"A=hunter2\n" +
		"E=\"a\x00hunter2\"\n" +
		"bad-name=hunter2\n"
	_, err := Parse("web.env", []byte(data))
	want := []string{
		"web.env:2: expected KEY=VALUE",
		"web.env:3: the name before '=' must be letters, digits and '_', not starting with a digit",
		"web.env:4: B: the single quote is not closed (values span one line)",
		`web.env:5: C: the double quote is not closed (values span one line; write \n for a newline)`,
		"web.env:6: D: only a comment may follow the closing quote",
		"web.env:7: A set twice (first on line 1)",
		"web.env:8: E: the value holds a NUL byte, which no environment variable can",
		"web.env:9: the name before '=' must be letters, digits and '_', not starting with a digit",
	}
	if err == nil {
		t.Fatal("no error")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	var ef *Error
	if !errors.As(err, &ef) || ef.File != "web.env" || ef.Line != 2 {
		t.Errorf("first error %+v, want an *Error for web.env:2", ef)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("an error quotes the file's text: %v", err)
	}
}

// FuzzParse checks that any file either parses into valid names and
// values an environment can hold, or fails without repeating a value; and
// that every variable written in double quotes reads back as it was.
func FuzzParse(f *testing.F) {
	f.Add("A=1\nexport B='x y' # c\nC=\"a\\nb\"\n", "KEY", "va\"l\\ue\n#x")
	f.Fuzz(func(t *testing.T, data, key, value string) {
		if vars, err := Parse("f", []byte(data)); err == nil {
			for k, v := range vars {
				if !ValidName(k) || strings.ContainsRune(v, 0) {
					t.Fatalf("parsed %q=%q", k, v)
				}
			}
		}
		if !ValidName(key) || strings.ContainsRune(value, 0) || !utf8.ValidString(value) {
			return
		}
		quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "$", `\$`).Replace(value)
		got, err := Parse("f", []byte("# written\nexport "+key+"=\""+quoted+"\" # end\n"))
		if err != nil || !maps.Equal(got, map[string]string{key: value}) {
			t.Fatalf("%s=%q read back as %q, %v", key, value, got, err)
		}
	})
}
