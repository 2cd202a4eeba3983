package cli_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/cli"
)

// gen-man writes a page for cutover and for every command that help
// lists, dated by SOURCE_DATE_EPOCH, and nothing for hidden commands.
func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man", "man1")            // created as needed
	env := map[string]string{"SOURCE_DATE_EPOCH": "1772582400"} // 2026-03-04
	var stdout, stderr bytes.Buffer
	code := cli.MainWith(context.Background(), []string{"gen-man", dir}, func(k string) string { return env[k] },
		strings.NewReader(""), &stdout, &stderr, cli.Commands{})
	if code != 0 {
		t.Fatalf("gen-man: exit %d: %s", code, stderr.String())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	for _, e := range entries {
		pages = append(pages, e.Name())
	}
	for _, want := range []string{"cutover.1", "cutover-deploy.1", "cutover-logs.1", "cutover-completion.1", "cutover-demo.1"} {
		if !slices.Contains(pages, want) {
			t.Errorf("no %s among %v", want, pages)
		}
	}
	for _, hidden := range []string{"cutover-demo-app.1", "cutover-gen-man.1", "cutover-help.1"} {
		if slices.Contains(pages, hidden) {
			t.Errorf("a page for the hidden %s", hidden)
		}
	}
	deploy, err := os.ReadFile(filepath.Join(dir, "cutover-deploy.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`.TH "CUTOVER-DEPLOY" 1 "March 2026"`, "SERVICE VERSION", `\fB\-\-wait\fR`, `\fB\-\-strategy\fR \fIstring\fR`, `\fBcutover\fR(1)`} {
		if !strings.Contains(string(deploy), want) {
			t.Errorf("cutover-deploy.1 lacks %q:\n%s", want, deploy)
		}
	}
	logs, _ := os.ReadFile(filepath.Join(dir, "cutover-logs.1"))
	if !strings.Contains(string(logs), `\fB\-f\fR, \fB\-\-follow\fR`) {
		t.Errorf("cutover-logs.1 does not give -f and --follow as one flag:\n%s", logs)
	}

	// Where groff is installed, every page must format without a warning.
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("no groff to check the pages with")
	}
	for _, p := range pages {
		out, err := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", filepath.Join(dir, p)).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff %s: %v\n%s", p, err, out)
		}
	}
}

func TestManPagesBadDate(t *testing.T) {
	env := map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}
	var stdout, stderr bytes.Buffer
	code := cli.MainWith(context.Background(), []string{"gen-man", t.TempDir()}, func(k string) string { return env[k] },
		strings.NewReader(""), &stdout, &stderr, cli.Commands{})
	if code != 1 || !strings.Contains(stderr.String(), "SOURCE_DATE_EPOCH") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
