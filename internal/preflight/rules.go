package preflight

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
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
	{"concurrently-in-transaction", "runs CONCURRENTLY inside a transaction block (BEGIN ... COMMIT), which PostgreSQL refuses: the migration fails there",
		"put the CONCURRENTLY statement in a file (or a step of the migration tool) of its own, outside BEGIN ... COMMIT"},
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

// lintState is what the rules remember across the statements of one
// migration set.
type lintState struct {
	// created holds the tables created by earlier statements of the
	// same migration set; a CREATE TABLE adds to it.
	created map[string]bool
	// inTx is true between an explicit BEGIN and its COMMIT or ROLLBACK
	// in the current file.
	inTx bool
	// txNotValid holds "table.constraint" added NOT VALID in the current
	// transaction: validating it in the same one holds the ADD's lock
	// through the whole scan.
	txNotValid map[string]bool
	// notNullCheck maps "table.constraint" to the column of a
	// CHECK (col IS NOT NULL); notNullValid holds "table.col" once such a
	// check is validated. PostgreSQL 12+ then sets NOT NULL without a
	// scan, and the check already refuses the rows it would.
	notNullCheck map[string]string
	notNullValid map[string]bool
}

func newLintState() *lintState {
	return &lintState{created: map[string]bool{}, txNotValid: map[string]bool{},
		notNullCheck: map[string]string{}, notNullValid: map[string]bool{}}
}

// checkStatement applies every rule to one statement.
func checkStatement(st statement, ls *lintState) []Finding {
	created := ls.created
	switch n := st.node.GetNode().(type) {
	case *pg.Node_CreateStmt:
		created[relName(n.CreateStmt.Relation)] = true
	case *pg.Node_ViewStmt:
		created[relName(n.ViewStmt.View)] = true
	case *pg.Node_AlterTableStmt:
		return alterTable(n.AlterTableStmt, ls)
	case *pg.Node_DropStmt:
		out := drop(n.DropStmt, created)
		if n.DropStmt.Concurrent && ls.inTx {
			out = append(out, finding("concurrently-in-transaction", "DROP INDEX CONCURRENTLY inside BEGIN ... COMMIT"))
		}
		return out
	case *pg.Node_RenameStmt:
		return rename(n.RenameStmt, created)
	case *pg.Node_AlterObjectSchemaStmt:
		a := n.AlterObjectSchemaStmt
		if (a.ObjectType == pg.ObjectType_OBJECT_TABLE || a.ObjectType == pg.ObjectType_OBJECT_VIEW) && !created[relName(a.Relation)] {
			return []Finding{finding("rename-table", "ALTER TABLE %s SET SCHEMA %s moves the table", relName(a.Relation), a.Newschema)}
		}
	case *pg.Node_IndexStmt:
		ix := n.IndexStmt
		if ix.Concurrent && ls.inTx {
			return []Finding{finding("concurrently-in-transaction", "CREATE INDEX CONCURRENTLY %s inside BEGIN ... COMMIT", ix.Idxname)}
		}
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
	case *pg.Node_TruncateStmt:
		var names []string
		for _, r := range n.TruncateStmt.Relations {
			if name := relName(r.GetRangeVar()); !created[name] {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			return []Finding{finding("lock-table", "TRUNCATE %s empties the table under an ACCESS EXCLUSIVE lock", strings.Join(names, ", "))}
		}
	case *pg.Node_ReindexStmt:
		if !hasOption(n.ReindexStmt.Params, "concurrently") {
			return []Finding{finding("reindex", "REINDEX without CONCURRENTLY")}
		}
		if ls.inTx {
			return []Finding{finding("concurrently-in-transaction", "REINDEX CONCURRENTLY inside BEGIN ... COMMIT")}
		}
	case *pg.Node_TransactionStmt:
		switch n.TransactionStmt.Kind {
		case pg.TransactionStmtKind_TRANS_STMT_BEGIN, pg.TransactionStmtKind_TRANS_STMT_START:
			ls.inTx = true
		case pg.TransactionStmtKind_TRANS_STMT_COMMIT, pg.TransactionStmtKind_TRANS_STMT_ROLLBACK,
			pg.TransactionStmtKind_TRANS_STMT_PREPARE:
			ls.inTx = false
			clear(ls.txNotValid)
		}
	}
	return nil
}

func alterTable(a *pg.AlterTableStmt, ls *lintState) []Finding {
	table := relName(a.Relation)
	if ls.created[table] || a.Objtype != pg.ObjectType_OBJECT_TABLE {
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
			typ := typeName(cmd.Def.GetColumnDef().GetTypeName())
			f := finding("alter-column-type", "ALTER TABLE %s ALTER COLUMN %s TYPE %s", table, cmd.Name, typ)
			if typ == "varchar" || typ == "text" {
				// Only the old type tells a rewrite from a widening, and
				// the lint sees only this release's SQL.
				f.Message += " (if it only widens a varchar, or makes it text, PostgreSQL rewrites nothing and old writes still fit: accept it with -- cutover:allow alter-column-type)"
			}
			out = append(out, f)
		case pg.AlterTableType_AT_SetNotNull:
			if !ls.notNullValid[table+"."+cmd.Name] {
				out = append(out, finding("set-not-null", "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", table, cmd.Name))
			}
		case pg.AlterTableType_AT_ValidateConstraint:
			key := table + "." + cmd.Name
			if ls.inTx && ls.txNotValid[key] {
				out = append(out, finding("add-constraint", "ALTER TABLE %s VALIDATE CONSTRAINT %s in the transaction that added it NOT VALID holds the ADD's lock through the validation", table, cmd.Name))
			}
			if col, ok := ls.notNullCheck[key]; ok {
				ls.notNullValid[table+"."+col] = true
			}
		case pg.AlterTableType_AT_ColumnDefault:
			if cmd.Def == nil {
				out = append(out, finding("drop-default", "ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT", table, cmd.Name))
			}
		case pg.AlterTableType_AT_AddColumn:
			out = append(out, addColumn(table, cmd.Def.GetColumnDef())...)
		case pg.AlterTableType_AT_AddConstraint:
			c := cmd.Def.GetConstraint()
			if f, ok := addConstraint(table, c); ok {
				out = append(out, f)
			}
			if c != nil && c.SkipValidation && ls.inTx {
				ls.txNotValid[table+"."+c.Conname] = true
			}
			if col := notNullColumn(c); col != "" {
				if c.Conname != "" {
					ls.notNullCheck[table+"."+c.Conname] = col
				}
				if !c.SkipValidation {
					ls.notNullValid[table+"."+col] = true
				}
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
	case notNull && (def == nil || def.GetAConst().GetIsnull()):
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
	locks := ""
	if c.Contype == pg.ConstrType_CONSTR_FOREIGN && c.Pktable != nil {
		locks = fmt.Sprintf(" (its validation also locks %s against writes)", relName(c.Pktable))
	}
	return finding("add-constraint", "ALTER TABLE %s ADD CONSTRAINT%s %s %s%s", table, name, kind, how, locks), true
}

// notNullColumn is col of a CHECK (col IS NOT NULL) constraint, else "".
func notNullColumn(c *pg.Constraint) string {
	if c == nil || c.Contype != pg.ConstrType_CONSTR_CHECK {
		return ""
	}
	nt := c.RawExpr.GetNullTest()
	if nt == nil || nt.Nulltesttype != pg.NullTestType_IS_NOT_NULL {
		return ""
	}
	fields := nt.Arg.GetColumnRef().GetFields()
	if len(fields) != 1 {
		return ""
	}
	return fields[0].GetString_().GetSval()
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
		case pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW:
			// The old version may read through a view as through a table.
			if !created[name] {
				out = append(out, finding("drop-table", "DROP VIEW %s", name))
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
	case pg.ObjectType_OBJECT_VIEW, pg.ObjectType_OBJECT_MATVIEW:
		return []Finding{finding("rename-table", "ALTER VIEW %s RENAME TO %s", table, r.Newname)}
	}
	return nil
}

// volatileFuncs are the functions whose default makes ADD COLUMN rewrite
// the table (PostgreSQL 11+ stores a non-volatile default without one).
var volatileFuncs = map[string]bool{
	"random": true, "gen_random_uuid": true, "uuid_generate_v1": true, "uuid_generate_v4": true,
	"clock_timestamp": true, "timeofday": true, "nextval": true, "txid_current": true, "random_normal": true,
	"uuidv4": true, "uuidv7": true, "uuid_generate_v1mc": true, "gen_random_bytes": true, "currval": true, "setval": true,
}

// volatile reports whether an expression calls a volatile function,
// anywhere in it (CASE, COALESCE, casts, operators, sub-expressions):
// the walk goes over every field of the parse tree.
func volatile(n *pg.Node) bool {
	found := false
	var walk func(protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if found || !m.IsValid() {
			return
		}
		if fc, ok := m.Interface().(*pg.FuncCall); ok && len(fc.Funcname) > 0 {
			last := fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval()
			if volatileFuncs[strings.ToLower(last)] {
				found = true
				return
			}
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
				l := v.List()
				for i := 0; i < l.Len() && !found; i++ {
					walk(l.Get(i).Message())
				}
			case !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind:
				walk(v.Message())
			}
			return !found
		})
	}
	if n != nil {
		walk(n.ProtoReflect())
	}
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
