package preflight

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// DatabaseOptions are preflight.database.
type DatabaseOptions struct {
	// Dialect is "postgres" (the default); Connect knows which it can open.
	Dialect string
	// URLEnv names the environment variable holding the database URL.
	URLEnv string
	// PerInstance is how many connections one instance opens
	// (connections_per_instance); 0 reads PoolEnv, then the URL's
	// pool_max_conns parameter.
	PerInstance int
	// PoolEnv names the app's pool size variable (pool_env).
	PoolEnv string
	// Reserve is the headroom kept free: ReservePercent of the usable
	// connections (0.1 for 10%) or ReserveAbsolute connections.
	ReservePercent  float64
	ReserveAbsolute int
}

// Usage is what a database reports about its connections.
type Usage struct {
	// Max is the server's connection limit (max_connections).
	Max int `json:"max_connections"`
	// Reserved are the slots ordinary roles cannot use
	// (superuser_reserved_connections, plus reserved_connections).
	Reserved int `json:"reserved_connections"`
	// InUse counts the client connections open now, the checker's own
	// excepted; ByClient breaks them down by database and role.
	InUse    int           `json:"in_use"`
	ByClient []ClientUsage `json:"by_client"`
	// Database and Role are the database and role the URL connects to;
	// DatabaseLimit and RoleLimit are their CONNECTION LIMITs (-1: none;
	// a superuser is subject to neither, and gets -1 for both).
	Database      string `json:"database,omitempty"`
	Role          string `json:"role,omitempty"`
	DatabaseLimit int    `json:"database_connection_limit"`
	RoleLimit     int    `json:"role_connection_limit"`
}

// count is the connections in use of database db (any role) or of role
// (any database), for the per-database and per-role limits.
func (u Usage) count(db, role string) int {
	n := 0
	for _, c := range u.ByClient {
		if (db != "" && c.Database == db) || (role != "" && c.Role == role) {
			n += c.Count
		}
	}
	return n
}

// ClientUsage is the connections of one database and role.
type ClientUsage struct {
	Database string `json:"database"`
	Role     string `json:"role"`
	Count    int    `json:"count"`
}

// Database is a connection to a database server that can report its
// connection usage. PostgreSQL implements it; a MySQL one would read
// max_connections and SHOW PROCESSLIST by db and user.
type Database interface {
	Usage(ctx context.Context) (Usage, error)
	Close(ctx context.Context) error
}

// ErrRefused is wrapped by Connect's error when the server refused the
// connection because its slots are taken (PostgreSQL's 53300).
var ErrRefused = errors.New("the server refused the connection: too many connections")

// Connect opens a Database of dialect at url.
func Connect(ctx context.Context, dialect, url string) (Database, error) {
	switch dialect {
	case "", "postgres", "postgresql":
		return connectPostgres(ctx, url)
	}
	return nil, fmt.Errorf("database dialect %q is not supported (postgres is)", dialect)
}

// HeadroomReport is the headroom arithmetic, every figure of it.
type HeadroomReport struct {
	Usage
	Usable int `json:"usable"` // Max - Reserved
	// ReserveKept is the headroom the configuration keeps free, in
	// connections; Budget = Usable - ReserveKept.
	ReserveKept int `json:"reserve"`
	Budget      int `json:"budget"`
	Instances   int `json:"instances"`
	PerInstance int `json:"connections_per_instance"`
	// PerInstanceFrom says where PerInstance came from.
	PerInstanceFrom string `json:"connections_per_instance_from"`
	Candidate       int    `json:"candidate"` // Instances x PerInstance
	After           int    `json:"after"`     // InUse + Candidate
	// Fits is true when the candidate fits within the server's budget
	// and within the database's and the role's connection limits.
	Fits bool `json:"fits"`
	// DatabaseAfter and RoleAfter are the database's and the role's
	// connections once the candidate starts (set when the limit is).
	DatabaseAfter int `json:"database_after,omitempty"`
	RoleAfter     int `json:"role_after,omitempty"`
	// Arithmetic is the calculation as lines a person reads.
	Arithmetic []string `json:"arithmetic"`
	// Sum is the calculation in one sentence, for history.
	Sum string `json:"summary"`
}

// Compute fills in the arithmetic from u and the configuration.
func Compute(u Usage, o DatabaseOptions, instances, perInstance int, from string) *HeadroomReport {
	h := &HeadroomReport{Usage: u, Instances: instances, PerInstance: perInstance, PerInstanceFrom: from}
	h.Usable = u.Max - u.Reserved
	reserveText := fmt.Sprintf("%d", o.ReserveAbsolute)
	h.ReserveKept = o.ReserveAbsolute
	if o.ReservePercent > 0 {
		h.ReserveKept = int(math.Ceil(o.ReservePercent * float64(h.Usable)))
		reserveText = fmt.Sprintf("%g%% of %d", o.ReservePercent*100, h.Usable)
	}
	h.Budget = h.Usable - h.ReserveKept
	h.Candidate = instances * perInstance
	h.After = u.InUse + h.Candidate
	h.Fits = h.After <= h.Budget
	verdict := fmt.Sprintf("fits, %d to spare", h.Budget-h.After)
	if !h.Fits {
		verdict = fmt.Sprintf("does NOT fit: %d over", h.After-h.Budget)
	}
	h.Arithmetic = []string{
		fmt.Sprintf("  max_connections                 %5d", u.Max),
		fmt.Sprintf("- reserved for superusers         %5d", u.Reserved),
		fmt.Sprintf("= usable                          %5d", h.Usable),
		fmt.Sprintf("- reserve (%s)%s%5d", reserveText, pad(20-len(reserveText)), h.ReserveKept),
		fmt.Sprintf("= budget                          %5d", h.Budget),
		fmt.Sprintf("  in use now                      %5d%s", u.InUse, byClient(u.ByClient)),
		fmt.Sprintf("+ candidate %d x %d (%s)%s%5d", instances, perInstance, from, pad(15-len(from)-digits(instances)-digits(perInstance)), h.Candidate),
		fmt.Sprintf("= after the candidate starts      %5d  %s", h.After, verdict),
	}
	// A database's or a role's CONNECTION LIMIT refuses connections
	// before max_connections does.
	limit := func(kind, name string, lim, inUse int) (int, bool) {
		after := inUse + h.Candidate
		v := fmt.Sprintf("fits, %d to spare", lim-after)
		if after > lim {
			v = fmt.Sprintf("does NOT fit: %d over", after-lim)
		}
		h.Arithmetic = append(h.Arithmetic, fmt.Sprintf("  %s %s: %d in use + candidate %d = %d of its connection limit %d  %s", kind, name, inUse, h.Candidate, after, lim, v))
		return after, after <= lim
	}
	if u.DatabaseLimit >= 0 && u.Database != "" {
		after, ok := limit("database", u.Database, u.DatabaseLimit, u.count(u.Database, ""))
		h.DatabaseAfter, h.Fits = after, h.Fits && ok
	}
	if u.RoleLimit >= 0 && u.Role != "" {
		after, ok := limit("role", u.Role, u.RoleLimit, u.count("", u.Role))
		h.RoleAfter, h.Fits = after, h.Fits && ok
	}
	h.Sum = fmt.Sprintf("database: %d in use + candidate %dx%d = %d of budget %d (max_connections %d - reserved %d - reserve %d): %s",
		u.InUse, instances, perInstance, h.After, h.Budget, u.Max, u.Reserved, h.ReserveKept, verdict)
	return h
}

func pad(n int) string { return strings.Repeat(" ", max(n, 1)) }

func digits(n int) int { return len(strconv.Itoa(n)) }

func byClient(cs []ClientUsage) string {
	if len(cs) == 0 {
		return ""
	}
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%s/%s %d", c.Database, c.Role, c.Count))
	}
	return "  (" + strings.Join(parts, ", ") + ")"
}

// headroom runs the database check.
func (c *Checker) headroom(ctx context.Context, req Request) (*HeadroomReport, []Finding) {
	o := *c.opts.Database
	fail := func(rule, format string, args ...any) (*HeadroomReport, []Finding) {
		return nil, []Finding{{Check: CheckDatabase, Rule: rule, Message: fmt.Sprintf(format, args...)}}
	}
	env, err := c.env(req.Env)
	if err != nil {
		return fail("no-url", "read the service's environment: %v", err)
	}
	dsn := env[o.URLEnv]
	if dsn == "" {
		return fail("no-url", "%s is not set in the service's env, env_file or secrets", o.URLEnv)
	}
	per, from, err := perInstance(o, env, dsn)
	if err != nil {
		return fail("pool-size", "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	db, err := c.opts.Open(ctx, o.Dialect, dsn)
	if err != nil {
		rule := "unreachable"
		if errors.Is(err, ErrRefused) {
			rule = "refused"
		}
		return fail(rule, "connect to the database of %s: %v", o.URLEnv, err)
	}
	defer db.Close(context.WithoutCancel(ctx))
	u, err := db.Usage(ctx)
	if err != nil {
		return fail("unreachable", "read connection usage from the database of %s: %v", o.URLEnv, err)
	}
	h := Compute(u, o, c.opts.Instances, per, from)
	var out []Finding
	if h.After > h.Budget {
		out = append(out, Finding{Check: CheckDatabase, Rule: "headroom",
			Message: fmt.Sprintf("starting %d instances x %d connections on top of the %d in use needs %d, over the budget of %d (max_connections %d - %d reserved - reserve %d)",
				h.Instances, h.PerInstance, h.InUse, h.After, h.Budget, h.Max, h.Reserved, h.ReserveKept),
			Fix: "lower the pool size per instance, run fewer instances, raise max_connections, or put a connection pooler (PgBouncer) in front"})
	}
	if u.DatabaseLimit >= 0 && h.DatabaseAfter > u.DatabaseLimit {
		out = append(out, Finding{Check: CheckDatabase, Rule: "headroom",
			Message: fmt.Sprintf("starting %d instances x %d connections on top of the %d in use of database %s needs %d, over its CONNECTION LIMIT of %d",
				h.Instances, h.PerInstance, u.count(u.Database, ""), u.Database, h.DatabaseAfter, u.DatabaseLimit),
			Fix: "lower the pool size per instance, run fewer instances, or raise the limit (ALTER DATABASE ... CONNECTION LIMIT)"})
	}
	if u.RoleLimit >= 0 && h.RoleAfter > u.RoleLimit {
		out = append(out, Finding{Check: CheckDatabase, Rule: "headroom",
			Message: fmt.Sprintf("starting %d instances x %d connections on top of the %d in use of role %s needs %d, over its CONNECTION LIMIT of %d",
				h.Instances, h.PerInstance, u.count("", u.Role), u.Role, h.RoleAfter, u.RoleLimit),
			Fix: "lower the pool size per instance, run fewer instances, or raise the limit (ALTER ROLE ... CONNECTION LIMIT)"})
	}
	return h, out
}

// perInstance is the candidate's pool size per instance and where it came
// from: the configuration, the app's pool variable, or the URL's
// pool_max_conns (pgx's pool parameter).
func perInstance(o DatabaseOptions, env map[string]string, dsn string) (int, string, error) {
	if o.PerInstance > 0 {
		return o.PerInstance, "connections_per_instance", nil
	}
	if o.PoolEnv != "" {
		v, ok := env[o.PoolEnv]
		if !ok {
			return 0, "", fmt.Errorf("pool_env %s is not set in the service's environment", o.PoolEnv)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return 0, "", fmt.Errorf("pool_env %s is %q, not a positive number", o.PoolEnv, v)
		}
		return n, o.PoolEnv, nil
	}
	if u, err := url.Parse(dsn); err == nil {
		if v := u.Query().Get("pool_max_conns"); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return n, "pool_max_conns", nil
			}
		}
	}
	return 0, "", errors.New("connections per instance unknown: set connections_per_instance or pool_env")
}

func (c *Checker) env(release map[string]string) (map[string]string, error) {
	if c.opts.Env == nil {
		return release, nil
	}
	return c.opts.Env(release)
}
