package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/cutover/cutover/"

// deps lists the cutover packages pkg imports, directly or not.
func deps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	set := map[string]bool{}
	for _, line := range strings.Fields(string(out)) {
		if p, ok := strings.CutPrefix(line, module); ok && p != pkg {
			set[p] = true
		}
	}
	return set
}

// The dependency direction of DESIGN.md: the data plane's leaves import
// nothing of cutover's, the controller knows the router and runtimes only
// through its own interfaces, the CLI talks to the daemon only through the
// API client, and test helpers never reach the binary.
func TestDependencyDirection(t *testing.T) {
	forbidden := map[string][]string{
		"internal/route":   {"internal/"},
		"internal/health":  {"internal/"},
		"internal/metrics": {"internal/"},
		"internal/config":  {"internal/"}, // except the leaf internal/envfile (allowed below)
		"internal/store":   {"internal/"},
		"internal/deploy":  {"internal/proxy", "internal/runtime/process", "internal/runtime/static", "internal/store", "internal/api", "internal/daemon"},
		"internal/cli":     {"internal/proxy", "internal/runtime/process", "internal/runtime/static", "internal/store", "internal/daemon"},
		"internal/envfile": {"internal/"},
		"cmd/cutover":      {"internal/testsupport", "internal/runtime/runtimetest", "internal/api/apitest"},
	}
	allowed := map[string]string{"internal/config": "internal/envfile"}
	for pkg, bad := range forbidden {
		for dep := range deps(t, pkg) {
			for _, b := range bad {
				if strings.HasPrefix(dep, b) && dep != allowed[pkg] {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}

// Nothing below the daemon imports the configuration file's types: each
// layer has options of its own with its own defaults, and the daemon maps
// the configuration to them in one place (internal/daemon/settings.go).
func TestOnlyTheDaemonImportsConfig(t *testing.T) {
	// owed are the known exceptions, each with what removes it. The test
	// fails once one is gone, so that the list only shrinks.
	owed := map[string]string{}
	for _, pkg := range []string{
		"internal/proxy", "internal/health", "internal/route", "internal/metrics",
		"internal/deploy", "internal/runtime", "internal/runtime/process", "internal/runtime/static",
		"internal/analysis", "internal/store", "internal/api",
	} {
		imports, why := deps(t, pkg)["internal/config"], owed[pkg]
		switch {
		case imports && why != "":
			t.Logf("%s still imports internal/config (%s)", pkg, why)
		case imports:
			t.Errorf("%s imports internal/config; give it options of its own, filled in internal/daemon/settings.go", pkg)
		case why != "":
			t.Errorf("%s no longer imports internal/config: remove it from owed", pkg)
		}
	}
}
