package preflight

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// Rule is one migration lint rule: what breaks, and the expand/contract
// way to reach the same schema without breaking the version still serving.
type Rule struct {
	ID   string `json:"id"`
	What string `json:"what"`
	Fix  string `json:"fix"`
}

// Rules are the migration lint's rules, by id. Each finding of the lint
// names one of them.
var Rules = []Rule{
	{"drop-column", "drops a column the version still serving reads and writes",
		"contract in a later release: stop using the column in this release, drop it in the next one (after the old version is retired; a post_retire hook is the place)"},
	{"drop-table", "drops a table the version still serving uses",
		"stop using the table in this release; drop it in a later release, once no running version reads it"},
	{"rename-column", "renames a column: the version still serving looks for the old name",
		"expand/contract: add the new column, write both, backfill, switch reads to the new one, drop the old one in a later release"},
	{"rename-table", "renames a table: the version still serving looks for the old name",
		"create the new table (or a view with the new name over the old table), move readers and writers over, drop the old name in a later release"},
	{"alter-column-type", "changes a column's type: old writes may not fit, and the table is rewritten under an exclusive lock",
		"add a column of the new type, write both, backfill in batches, switch reads, drop the old column in a later release"},
	{"set-not-null", "makes a column NOT NULL: inserts of the version still serving that leave it out fail, and the table is scanned under an exclusive lock",
		"add CHECK (col IS NOT NULL) NOT VALID, backfill, VALIDATE CONSTRAINT, and set NOT NULL in a later release once every running version writes the column"},
	{"add-column-not-null", "adds a NOT NULL column without a DEFAULT: inserts of the version still serving do not set it and fail",
		"add the column nullable (or with a DEFAULT), backfill, and make it NOT NULL in a later release"},
	{"drop-default", "drops a column default the version still serving relies on when it leaves the column out",
		"keep the default until no running version omits the column; drop it in a later release"},
	{"add-constraint", "adds a constraint that writes of the version still serving may violate, validated under a lock that blocks writes",
		"add CHECK and FOREIGN KEY constraints NOT VALID, then VALIDATE CONSTRAINT in a separate statement; for UNIQUE, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX"},
	{"create-index", "builds or drops an index without CONCURRENTLY: writes to the table block until it is done",
		"CREATE INDEX CONCURRENTLY (outside a transaction), and DROP INDEX CONCURRENTLY"},
	{"table-rewrite", "rewrites the whole table under an ACCESS EXCLUSIVE lock (volatile default, SET TABLESPACE, SET LOGGED/UNLOGGED, VACUUM FULL, CLUSTER)",
		"add the column without a default and backfill in batches; use pg_repack or a new table for a reorganisation"},
	{"lock-table", "takes an explicit table lock: requests of the version still serving queue behind it",
		"avoid LOCK TABLE in migrations; batch the work in short transactions, with a lock_timeout"},
	{"reindex", "rebuilds an index without CONCURRENTLY, blocking writes",
		"REINDEX ... CONCURRENTLY"},
}

// rule returns the rule with id.
func rule(id string) Rule {
	for _, r := range Rules {
		if r.ID == id {
			return r
		}
	}
	panic("preflight: no rule " + id)
}

// finding builds a lint finding of rule id about msg.
func finding(id, format string, args ...any) Finding {
	r := rule(id)
	return Finding{Rule: id, Message: fmt.Sprintf(format, args...) + ": " + r.What, Fix: r.Fix}
}

// checkStatement applies every rule to one statement. created holds the
// tables created by earlier statements of the same migration set; a
// CREATE TABLE adds to it.
func checkStatement(st statement, created map[string]bool) []Finding {
	switch n := st.node.GetNode().(type) {
	case *pg.Node_CreateStmt:
		created[relName(n.CreateStmt.Relation)] = true
	case *pg.Node_AlterTableStmt:
		return alterTable(n.AlterTableStmt, created)
	case *pg.Node_DropStmt:
		return drop(n.DropStmt, created)
	case *pg.Node_RenameStmt:
		return rename(n.RenameStmt, created)
	case *pg.Node_IndexStmt:
		ix := n.IndexStmt
		if !ix.Concurrent && !created[relName(ix.Relation)] {
			return []Finding{finding("create-index", "CREATE INDEX %s ON %s without CONCURRENTLY", ix.Idxname, relName(ix.Relation))}
		}
	case *pg.Node_VacuumStmt:
		for _, o := range n.VacuumStmt.Options {
			if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, "full") {
				return []Finding{finding("table-rewrite", "VACUUM FULL")}
			}
		}
	case *pg.Node_ClusterStmt:
		return []Finding{finding("table-rewrite", "CLUSTER %s", relName(n.ClusterStmt.Relation))}
	case *pg.Node_LockStmt:
		var names []string
		for _, r := range n.LockStmt.Relations {
			names = append(names, relName(r.GetRangeVar()))
		}
		return []Finding{finding("lock-table", "LOCK TABLE %s", strings.Join(names, ", "))}
	case *pg.Node_ReindexStmt:
		if !hasOption(n.ReindexStmt.Params, "concurrently") {
			return []Finding{finding("reindex", "REINDEX without CONCURRENTLY")}
		}
	case *pg.Node_TransactionStmt:
	}
	return nil
}

func alterTable(a *pg.AlterTableStmt, created map[string]bool) []Finding {
	table := relName(a.Relation)
	if created[table] || a.Objtype != pg.ObjectType_OBJECT_TABLE {
		return nil
	}
	var out []Finding
	for _, c := range a.Cmds {
		cmd := c.GetAlterTableCmd()
		if cmd == nil {
			continue
		}
		switch cmd.Subtype {
		case pg.AlterTableType_AT_DropColumn:
			out = append(out, finding("drop-column", "ALTER TABLE %s DROP COLUMN %s", table, cmd.Name))
		case pg.AlterTableType_AT_AlterColumnType:
			out = append(out, finding("alter-column-type", "ALTER TABLE %s ALTER COLUMN %s TYPE %s", table, cmd.Name, typeName(cmd.Def.GetColumnDef().GetTypeName())))
		case pg.AlterTableType_AT_SetNotNull:
			out = append(out, finding("set-not-null", "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", table, cmd.Name))
		case pg.AlterTableType_AT_ColumnDefault:
			if cmd.Def == nil {
				out = append(out, finding("drop-default", "ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", table, cmd.Name))
			}
		case pg.AlterTableType_AT_AddColumn:
			out = append(out, addColumn(table, cmd.Def.GetColumnDef())...)
		case pg.AlterTableType_AT_AddConstraint:
			if f, ok := addConstraint(table, cmd.Def.GetConstraint()); ok {
				out = append(out, f)
			}
		case pg.AlterTableType_AT_SetTableSpace:
			out = append(out, finding("table-rewrite", "ALTER TABLE %s SET TABLESPACE %s", table, cmd.Name))
		case pg.AlterTableType_AT_SetLogged, pg.AlterTableType_AT_SetUnLogged:
			out = append(out, finding("table-rewrite", "ALTER TABLE %s SET LOGGED/UNLOGGED", table))
		}
	}
	return out
}

// addColumn: NOT NULL without a default fails old inserts; a volatile
// default (or a serial type) rewrites the table.
func addColumn(table string, col *pg.ColumnDef) []Finding {
	if col == nil {
		return nil
	}
	notNull, def, identity := col.IsNotNull, col.RawDefault, false
	var out []Finding
	for _, cn := range col.Constraints {
		c := cn.GetConstraint()
		if c == nil {
			continue
		}
		switch c.Contype {
		case pg.ConstrType_CONSTR_NOTNULL, pg.ConstrType_CONSTR_PRIMARY:
			notNull = true
		case pg.ConstrType_CONSTR_DEFAULT:
			def = c.RawExpr
		case pg.ConstrType_CONSTR_IDENTITY, pg.ConstrType_CONSTR_GENERATED:
			identity = true
		case pg.ConstrType_CONSTR_CHECK, pg.ConstrType_CONSTR_FOREIGN, pg.ConstrType_CONSTR_UNIQUE:
			if f, ok := addConstraint(table, c); ok {
				out = append(out, f)
			}
		}
	}
	typ := typeName(col.TypeName)
	serial := strings.Contains(typ, "serial")
	switch {
	case serial || identity:
		out = append(out, finding("table-rewrite", "ALTER TABLE %s ADD COLUMN %s %s fills every existing row from a sequence", table, col.Colname, typ))
	case def != nil && volatile(def):
		out = append(out, finding("table-rewrite", "ALTER TABLE %s ADD COLUMN %s with a volatile DEFAULT", table, col.Colname))
	case notNull && def == nil:
		out = append(out, finding("add-column-not-null", "ALTER TABLE %s ADD COLUMN %s %s NOT NULL without DEFAULT", table, col.Colname, typ))
	}
	return out
}

// addConstraint reports a constraint old writes may violate, unless it is
// added NOT VALID (CHECK, FOREIGN KEY) or over an existing index (USING
// INDEX), which take no long lock and check only new rows.
func addConstraint(table string, c *pg.Constraint) (Finding, bool) {
	if c == nil {
		return Finding{}, false
	}
	kind := ""
	switch c.Contype {
	case pg.ConstrType_CONSTR_CHECK:
		kind = "CHECK"
	case pg.ConstrType_CONSTR_FOREIGN:
		kind = "FOREIGN KEY"
	case pg.ConstrType_CONSTR_UNIQUE:
		kind = "UNIQUE"
	case pg.ConstrType_CONSTR_PRIMARY:
		kind = "PRIMARY KEY"
	case pg.ConstrType_CONSTR_EXCLUSION:
		kind = "EXCLUDE"
	default:
		return Finding{}, false
	}
	if c.SkipValidation || c.Indexname != "" {
		return Finding{}, false
	}
	name := c.Conname
	if name != "" {
		name = " " + name
	}
	how := "without NOT VALID"
	if c.Contype != pg.ConstrType_CONSTR_CHECK && c.Contype != pg.ConstrType_CONSTR_FOREIGN {
		how = "built in place, not USING INDEX"
	}
	return finding("add-constraint", "ALTER TABLE %s ADD CONSTRAINT%s %s %s", table, name, kind, how), true
}

func drop(d *pg.DropStmt, created map[string]bool) []Finding {
	var out []Finding
	for _, obj := range d.Objects {
		name := qualified(obj)
		switch d.RemoveType {
		case pg.ObjectType_OBJECT_TABLE:
			if !created[name] {
				out = append(out, finding("drop-table", "DROP TABLE %s", name))
			}
		case pg.ObjectType_OBJECT_INDEX:
			if !d.Concurrent {
				out = append(out, finding("create-index", "DROP INDEX %s without CONCURRENTLY", name))
			}
		}
	}
	return out
}

func rename(r *pg.RenameStmt, created map[string]bool) []Finding {
	table := relName(r.Relation)
	if created[table] {
		return nil
	}
	switch r.RenameType {
	case pg.ObjectType_OBJECT_COLUMN:
		return []Finding{finding("rename-column", "ALTER TABLE %s RENAME COLUMN %s TO %s", table, r.Subname, r.Newname)}
	case pg.ObjectType_OBJECT_TABLE:
		return []Finding{finding("rename-table", "ALTER TABLE %s RENAME TO %s", table, r.Newname)}
	}
	return nil
}

// volatileFuncs are the functions whose default makes ADD COLUMN rewrite
// the table (PostgreSQL 11+ stores a non-volatile default without one).
var volatileFuncs = map[string]bool{
	"random": true, "gen_random_uuid": true, "uuid_generate_v1": true, "uuid_generate_v4": true,
	"clock_timestamp": true, "timeofday": true, "nextval": true, "txid_current": true, "random_normal": true,
}

// volatile reports whether an expression calls a volatile function.
func volatile(n *pg.Node) bool {
	found := false
	var walk func(*pg.Node)
	walk = func(n *pg.Node) {
		if n == nil || found {
			return
		}
		switch x := n.GetNode().(type) {
		case *pg.Node_FuncCall:
			if len(x.FuncCall.Funcname) > 0 {
				last := x.FuncCall.Funcname[len(x.FuncCall.Funcname)-1].GetString_().GetSval()
				if volatileFuncs[strings.ToLower(last)] {
					found = true
					return
				}
			}
			for _, a := range x.FuncCall.Args {
				walk(a)
			}
		case *pg.Node_TypeCast:
			walk(x.TypeCast.Arg)
		case *pg.Node_AExpr:
			walk(x.AExpr.Lexpr)
			walk(x.AExpr.Rexpr)
		case *pg.Node_CoalesceExpr:
			for _, a := range x.CoalesceExpr.Args {
				walk(a)
			}
		}
	}
	walk(n)
	return found
}

func hasOption(opts []*pg.Node, name string) bool {
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, name) {
			return true
		}
	}
	return false
}

func relName(r *pg.RangeVar) string {
	if r == nil {
		return ""
	}
	if r.Schemaname != "" {
		return r.Schemaname + "." + r.Relname
	}
	return r.Relname
}

// qualified renders a DROP's object name (a list of String nodes).
func qualified(obj *pg.Node) string {
	var parts []string
	for _, it := range obj.GetList().GetItems() {
		parts = append(parts, it.GetString_().GetSval())
	}
	if rv := obj.GetRangeVar(); rv != nil {
		return relName(rv)
	}
	return strings.Join(parts, ".")
}

func typeName(t *pg.TypeName) string {
	if t == nil {
		return ""
	}
	var parts []string
	for _, n := range t.Names {
		if s := n.GetString_().GetSval(); s != "pg_catalog" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ".")
}
