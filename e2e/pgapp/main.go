// Command pgapp is the end-to-end tests' stand-in for a real web
// application on PostgreSQL, with the habits that trip releases up:
//
//   - with RUN_MIGRATIONS=1 it migrates the shared schema at start, the
//     way many apps do: it reads the schema version, then applies the
//     missing steps without a lock, so two instances starting at once race
//     and one fails (a duplicate type or column error), as the real ones do;
//   - without it, it refuses to start on a schema older than its version
//     needs ("schema is at 1, v2 needs 2");
//   - with CREATE_ADMIN=1 it creates its admin user, once: a second
//     creation fails on the unique name;
//   - it needs a secret (APP_SECRET, which cutover's secrets give it from
//     a file) and shows only its hash;
//   - GET / answers with its version, colour and the rows it sees; GET
//     /healthz pings the database;
//   - `pgapp migrate` migrates the schema to VERSION and exits: the
//     release step a pre_provision hook runs once, before any instance.
//
// The version is "vN": N is the schema version it needs. Migration 1
// creates the items and users tables, 2 adds a nullable items.language
// column (an expand step: v1 keeps working), 3 drops items.legacy (a
// contract step: only safe once no v1 or v2 runs).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema steps, each a list of statements; migration
// i+1 is migrations[i].
var migrations = [][]string{
	{`CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, legacy text)`,
		`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL UNIQUE)`},
	{`ALTER TABLE items ADD COLUMN language text`},
	{`ALTER TABLE items DROP COLUMN legacy`},
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pgapp:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		return migrateOnly()
	}
	version := os.Getenv("VERSION")
	need, err := strconv.Atoi(strings.TrimPrefix(version, "v"))
	if err != nil || need < 1 || need > len(migrations) {
		return fmt.Errorf("version %q: want v1..v%d", version, len(migrations))
	}
	secret := os.Getenv("APP_SECRET")
	if secret == "" {
		return errors.New("APP_SECRET is not set")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer db.Close()
	if os.Getenv("RUN_MIGRATIONS") == "1" {
		if err := migrate(ctx, db, need); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	have, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if have < need {
		return fmt.Errorf("schema is at %d, %s needs %d: run the migrations first", have, version, need)
	}
	if os.Getenv("CREATE_ADMIN") == "1" {
		if _, err := db.Exec(ctx, `INSERT INTO users (name) VALUES ('admin')`); err != nil {
			return fmt.Errorf("create admin: %w", err)
		}
	}
	sum := sha256.Sum256([]byte(secret))
	a := &app{db: db, version: version, color: os.Getenv("COLOR"), secret: hex.EncodeToString(sum[:8])}
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("pgapp %s listening on %s (schema %d)\n", version, srv.Addr, have)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// migrateOnly is `pgapp migrate`: the schema to VERSION, then exit.
func migrateOnly() error {
	need, err := strconv.Atoi(strings.TrimPrefix(os.Getenv("VERSION"), "v"))
	if err != nil || need < 1 || need > len(migrations) {
		return fmt.Errorf("migrate: version %q: want v1..v%d", os.Getenv("VERSION"), len(migrations))
	}
	ctx := context.Background()
	db, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer db.Close()
	return migrate(ctx, db, need)
}

// migrate applies the missing steps up to need, like an app that checks
// then acts: no advisory lock, so concurrent starts race.
func migrate(ctx context.Context, db *pgxpool.Pool, need int) error {
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (v int NOT NULL)`); err != nil {
		return err
	}
	have, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	for v := have + 1; v <= need; v++ {
		time.Sleep(50 * time.Millisecond) // the window in which a second instance starts the same step
		for _, stmt := range migrations[v-1] {
			if _, err := db.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("step %d: %w", v, err)
			}
		}
		if _, err := db.Exec(ctx, `DELETE FROM schema_version`); err != nil {
			return fmt.Errorf("step %d: %w", v, err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO schema_version VALUES ($1)`, v); err != nil {
			return fmt.Errorf("step %d: %w", v, err)
		}
		fmt.Printf("pgapp: migrated the schema to %d\n", v)
	}
	return nil
}

func schemaVersion(ctx context.Context, db *pgxpool.Pool) (int, error) {
	var v int
	err := db.QueryRow(ctx, `SELECT coalesce(max(v), 0) FROM schema_version`).Scan(&v)
	if err != nil && strings.Contains(err.Error(), "does not exist") {
		return 0, nil
	}
	return v, err
}

type app struct {
	db                     *pgxpool.Pool
	version, color, secret string
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.db.Ping(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var items int
		if err := a.db.QueryRow(r.Context(), `SELECT count(*) FROM items`).Scan(&items); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if r.Method == http.MethodPost {
			if _, err := a.db.Exec(r.Context(), `INSERT INTO items (name) VALUES ($1)`, "from "+a.version); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("X-Version", a.version)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"version": a.version, "color": a.color, "items": items, "secret_sha": a.secret})
	})
	return mux
}
