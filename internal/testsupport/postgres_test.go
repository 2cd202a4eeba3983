package testsupport

import "testing"

// The harness starts a real server that answers queries on its port.
func TestStartPostgres(t *testing.T) {
	pg := StartPostgres(t)
	pg.CreateDatabase(t, "app")
	if got := pg.SQL(t, "app", "SELECT 40 + 2"); got != "42" {
		t.Fatalf("SELECT 40 + 2 = %q", got)
	}
}
