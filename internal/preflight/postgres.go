package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// postgres is a Database on one pgx connection.
type postgres struct {
	conn *pgx.Conn
}

// connectPostgres opens one connection. Its errors never carry the URL
// (which holds the password): only the server's answer or the cause.
func connectPostgres(ctx context.Context, dsn string) (Database, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("the URL is not a valid PostgreSQL connection string")
	}
	cfg.RuntimeParams["application_name"] = "cutover-preflight"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, connectError(err)
	}
	return &postgres{conn: conn}, nil
}

// connectError keeps what the server said and drops the rest of pgx's
// message, which names host and user.
func connectError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code == "53300" || pe.Code == "53000" {
			return fmt.Errorf("%w (%s %s)", ErrRefused, pe.Code, pe.Message)
		}
		return fmt.Errorf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	// pgx's dial errors name the address and host name ("127.0.0.1:5432
	// (db.internal): dial error: dial tcp ..."): keep only the cause.
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("connect: timed out")
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return errors.New("connect: the host name does not resolve")
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) {
		return fmt.Errorf("connect: %v", sys.Err)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return fmt.Errorf("connect: %s failed", op.Op)
	}
	return errors.New("connect failed")
}

func (p *postgres) Close(ctx context.Context) error { return p.conn.Close(ctx) }

// Usage reads the limit, the reserved slots and the client backends by
// database and role. Background workers (autovacuum, WAL writer, ...)
// have slots of their own and are not counted; nor are the checks' own
// short connections (application_name cutover-preflight), which a
// server may still list for a moment after they closed.
func (p *postgres) Usage(ctx context.Context) (Usage, error) {
	var u Usage
	var reserved int
	err := p.conn.QueryRow(ctx, `SELECT current_setting('max_connections')::int,
		current_setting('superuser_reserved_connections')::int,
		coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int`).Scan(&u.Max, &u.Reserved, &reserved)
	if err != nil {
		return u, err
	}
	u.Reserved += reserved
	// The database's and the role's own limits; superusers are exempt
	// from both.
	err = p.conn.QueryRow(ctx, `SELECT current_database(), current_user,
		CASE WHEN r.rolsuper THEN -1 ELSE d.datconnlimit END,
		CASE WHEN r.rolsuper THEN -1 ELSE r.rolconnlimit END
		FROM pg_database d, pg_roles r
		WHERE d.datname = current_database() AND r.rolname = current_user`).Scan(&u.Database, &u.Role, &u.DatabaseLimit, &u.RoleLimit)
	if err != nil {
		return u, err
	}
	rows, err := p.conn.Query(ctx, `SELECT coalesce(datname, ''), coalesce(usename, ''), count(*)::int
		FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
			AND coalesce(application_name, '') <> 'cutover-preflight'
		GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2`)
	if err != nil {
		return u, err
	}
	defer rows.Close()
	for rows.Next() {
		var c ClientUsage
		if err := rows.Scan(&c.Database, &c.Role, &c.Count); err != nil {
			return u, err
		}
		u.InUse += c.Count
		u.ByClient = append(u.ByClient, c)
	}
	return u, rows.Err()
}
