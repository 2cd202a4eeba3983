package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cutover/cutover/internal/testsupport"
)

// These tests run on a real PostgreSQL (its own cluster in a temporary
// directory, max_connections 200, superuser_reserved_connections 3), with
// real connections held open as "live" uses them; they fail when
// PostgreSQL cannot start.

// appDB starts PostgreSQL with a database and login role "app" and
// returns the server and the app's URL.
func appDB(t *testing.T) (*testsupport.Postgres, string) {
	t.Helper()
	pg := testsupport.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE ROLE app LOGIN")
	pg.SQL(t, "postgres", "CREATE DATABASE app OWNER app")
	return pg, fmt.Sprintf("postgres://app@127.0.0.1:%d/app?sslmode=disable", pg.Port)
}

// freeTCPPort is a loopback port nothing listens on a moment later.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// hold opens n connections as url's role and keeps them until the test ends.
func hold(t *testing.T, dsn string, n int) {
	t.Helper()
	for range n {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatalf("hold a connection: %v", err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
	}
}

func checker(dsn string, instances int, db DatabaseOptions) *Checker {
	db.URLEnv = "DATABASE_URL"
	return New(Options{Service: "web", Instances: instances, Database: &db,
		Env: func(map[string]string) (map[string]string, error) {
			return map[string]string{"DATABASE_URL": dsn, "DATABASE_MAX_CONNS": "30"}, nil
		}})
}

func TestHeadroomWithRealConnections(t *testing.T) {
	_, dsn := appDB(t)
	hold(t, dsn, 25)
	// usable 200-3 = 197; reserve 10% = ceil(19.7) = 20; budget 177;
	// in use 25.
	cases := []struct {
		name      string
		instances int
		db        DatabaseOptions
		fits      bool
		after     int
		reserve   int
	}{
		{"fits", 2, DatabaseOptions{PerInstance: 20, ReservePercent: 0.10}, true, 65, 20},
		{"does not fit", 2, DatabaseOptions{PerInstance: 80, ReservePercent: 0.10}, false, 185, 20},
		// 25 + 150 = 175 fits in 197 - 20 = 177 ...
		{"fits beside the reserve", 3, DatabaseOptions{PerInstance: 50, ReservePercent: 0.10}, true, 175, 20},
		// ... but not with 30 kept free: 197 - 30 = 167.
		{"the reserve refuses it", 3, DatabaseOptions{PerInstance: 50, ReserveAbsolute: 30}, false, 175, 30},
		{"pool size from the app's variable", 4, DatabaseOptions{PoolEnv: "DATABASE_MAX_CONNS", ReservePercent: 0.10}, true, 145, 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, err := checker(dsn, c.instances, c.db).Run(context.Background(), Request{Version: "v2"})
			if err != nil {
				t.Fatal(err)
			}
			h := rep.Database
			if h == nil {
				t.Fatalf("no headroom report; findings %v", rep.Findings)
			}
			if h.Max != 200 || h.Reserved != 3 || h.Usable != 197 || h.ReserveKept != c.reserve {
				t.Errorf("limits = max %d reserved %d usable %d reserve %d", h.Max, h.Reserved, h.Usable, h.ReserveKept)
			}
			if h.InUse != 25 || len(h.ByClient) != 1 || h.ByClient[0] != (ClientUsage{"app", "app", 25}) {
				t.Errorf("in use %d by %+v, want the 25 held by app/app", h.InUse, h.ByClient)
			}
			if h.After != c.after || h.Fits != c.fits {
				t.Errorf("after %d fits %v, want %d %v\n%s", h.After, h.Fits, c.after, c.fits, strings.Join(h.Arithmetic, "\n"))
			}
			failed := rep.Failed()
			if c.fits != (len(failed) == 0) {
				t.Errorf("findings %v with fits %v", failed, c.fits)
			}
			if !c.fits && (failed[0].Rule != "headroom" || !strings.Contains(failed[0].Message, fmt.Sprint(c.after))) {
				t.Errorf("finding %+v does not give the arithmetic", failed[0])
			}
			text := rep.Text()
			for _, want := range []string{"max_connections", "200", "in use now", "app/app 25", fmt.Sprintf("= after the candidate starts      %5d", c.after)} {
				if !strings.Contains(text, want) {
					t.Errorf("report lacks %q:\n%s", want, text)
				}
			}
			t.Logf("%s\n%s", c.name, strings.Join(h.Arithmetic, "\n"))
		})
	}
}

// The URL holds the password: it never reaches a finding, even when the
// connection fails.
func TestHeadroomNeverShowsTheURL(t *testing.T) {
	pg, _ := appDB(t)
	pg.SQL(t, "postgres", "CREATE ROLE secretive LOGIN PASSWORD 'hunter2-xyz'")
	// pg's cluster trusts every local login, so a wrong database is the
	// failure here.
	dsn := fmt.Sprintf("postgres://secretive:hunter2-xyz@127.0.0.1:%d/nosuchdb?sslmode=disable", pg.Port)
	rep, err := checker(dsn, 1, DatabaseOptions{PerInstance: 1}).Run(context.Background(), Request{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	failed := rep.Failed()
	if len(failed) != 1 || failed[0].Rule != "unreachable" || !strings.Contains(failed[0].Message, "nosuchdb") && !strings.Contains(failed[0].Message, "does not exist") {
		t.Fatalf("findings = %+v, want one unreachable naming the server's answer", failed)
	}
	u, _ := url.Parse(dsn)
	for _, secret := range []string{"hunter2-xyz", u.Redacted(), dsn} {
		if strings.Contains(rep.Text(), secret) {
			t.Fatalf("the report shows %q:\n%s", secret, rep.Text())
		}
	}
	// Nothing listens: the dial error, still without the password or user.
	free := freeTCPPort(t)
	closed := fmt.Sprintf("postgres://secretive:hunter2-xyz@127.0.0.1:%d/app?sslmode=disable&connect_timeout=2", free)
	rep, err = checker(closed, 1, DatabaseOptions{PerInstance: 1}).Run(context.Background(), Request{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(free)
	if f := rep.Failed(); len(f) != 1 || f[0].Rule != "unreachable" || strings.Contains(rep.Text(), "hunter2") || strings.Contains(rep.Text(), "secretive") ||
		strings.Contains(rep.Text(), "127.0.0.1") || strings.Contains(rep.Text(), port) || !strings.Contains(f[0].Message, "connection refused") {
		t.Fatalf("unreachable database reported as %+v\n%s", f, rep.Text())
	}
	t.Logf("unreachable: %s", rep.Failed()[0].Message)
}

// The watch reads the live connection count, and a refused connection
// (the role's limit reached, SQLSTATE 53300 as for max_connections) is
// counted and marks the sample over.
func TestWatchCountsAndRefusals(t *testing.T) {
	pg, dsn := appDB(t)
	hold(t, dsn, 7)
	c := checker(dsn, 2, DatabaseOptions{PerInstance: 5, ReserveAbsolute: 10})
	s := c.Watch(0).Sample(context.Background())
	if s.Err != "" || s.Connections != 8 || s.Budget != 187 || s.Max != 200 || s.Over || s.Refused != 0 {
		t.Fatalf("sample = %+v, want 8 connections (7 held and its own) of budget 187", s)
	}
	over := checker(dsn, 2, DatabaseOptions{PerInstance: 5, ReserveAbsolute: 190})
	if s := over.Watch(0).Sample(context.Background()); !s.Over || !strings.Contains(s.Reason, "over the budget of 7") {
		t.Fatalf("sample over a budget of 7 = %+v", s)
	}
	pg.SQL(t, "postgres", "ALTER ROLE app CONNECTION LIMIT 7")
	w := c.Watch(0)
	for i := 1; i <= 2; i++ {
		s := w.Sample(context.Background())
		if !s.Over || s.Refused != uint64(i) || !strings.Contains(s.Reason, "refused") {
			t.Fatalf("sample %d at the role's limit = %+v, want refused %d", i, s, i)
		}
	}
	_, err := connectPostgres(context.Background(), dsn)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("connect at the limit: %v, want ErrRefused", err)
	}
}

// A role's or a database's CONNECTION LIMIT refuses the candidate long
// before max_connections does: the server has room for 2 x 20 on top of
// 25, but the role app may open 50 and the database app 60.
func TestHeadroomRoleAndDatabaseLimits(t *testing.T) {
	pg, dsn := appDB(t)
	hold(t, dsn, 25)
	check := func(wantFits bool, wantMsg string) *HeadroomReport {
		t.Helper()
		rep, err := checker(dsn, 2, DatabaseOptions{PerInstance: 20, ReservePercent: 0.10}).Run(context.Background(), Request{Version: "v2"})
		if err != nil {
			t.Fatal(err)
		}
		h, failed := rep.Database, rep.Failed()
		if h == nil || h.Fits != wantFits || (len(failed) == 0) != wantFits {
			t.Fatalf("fits %v findings %v, want fits %v\n%s", h != nil && h.Fits, failed, wantFits, rep.Text())
		}
		if wantMsg != "" && (failed[0].Rule != "headroom" || !strings.Contains(failed[0].Message, wantMsg)) {
			t.Fatalf("finding %+v, want one saying %q", failed[0], wantMsg)
		}
		t.Logf("%s", strings.Join(h.Arithmetic, "\n"))
		return h
	}
	if h := check(true, ""); h.RoleLimit != -1 || h.DatabaseLimit != -1 || h.Role != "app" || h.Database != "app" {
		t.Fatalf("limits without CONNECTION LIMIT = %+v", h.Usage)
	}
	pg.SQL(t, "postgres", "ALTER ROLE app CONNECTION LIMIT 50")
	if h := check(false, "of role app needs 65, over its CONNECTION LIMIT of 50"); h.RoleAfter != 65 || h.After != 65 || h.After > h.Budget {
		t.Fatalf("role limit arithmetic = %+v", h)
	}
	pg.SQL(t, "postgres", "ALTER ROLE app CONNECTION LIMIT 65")
	check(true, "")
	pg.SQL(t, "postgres", "ALTER DATABASE app CONNECTION LIMIT 60")
	if h := check(false, "of database app needs 65, over its CONNECTION LIMIT of 60"); h.DatabaseAfter != 65 {
		t.Fatalf("database limit arithmetic = %+v", h)
	}
}
