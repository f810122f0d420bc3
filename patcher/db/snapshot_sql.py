"""The catalog query behind a schema snapshot (SPEC section 13): one row per object,
``(kind, object, parent, def)``, normalized on the server so it can ride in the statement that
writes the history row (``snapshot_store.py``) and be read again live by ``drift``.

Normalized: objects are named, never numbered (no OIDs, no column numbers); statistics and
sequence values are not read; the owner appears only as ``"runner"`` when it is the session's
role (ownership when the runner is not the owner varies between databases and is left out);
privileges are ``grantee:PRIVILEGE`` pairs without the grantor, the owner's own left out, a
NULL ACL read as its default (every schema and relation has its row, empty or not, so a
revoked last grant reads as a change; columns, functions and types only when they have
grants). Objects that belong to an extension are covered by the extension's version.
``%(own)s`` (a text[] of ``schema.table``) leaves out the runner's own history, audit and
snapshot tables. The query is split in parts (``PARTS``): a role that cannot read one catalog
table loses only the kinds of that part (``unreadable``), not the rest.

Joins, not correlated subqueries, where a part has a row per table or column: the planner
prices a subquery in a row's expression for every row it expects (even in a CASE arm that never
runs), and a plan priced over ``jit_above_cost`` (100,000 by default) is JIT-compiled before it
runs, 0.1-0.25 s at 2,000 tables. Parts with few rows (types) keep their subqueries: joins cost
planning time on every read. The body must stay byte for byte what earlier versions stored
(``tests/fixtures/snapshot_sql_v1.py`` is the oracle): reorder nothing that reaches it.
"""

from __future__ import annotations

from typing import Final

# Membership (deptype 'e') always references the extension: ``refclassid`` says nothing new
# but lets the planner read pg_depend's reference index (the few rows that reference
# extensions) instead of every row of the catalog.
_NOT_MEMBER = (
    "NOT EXISTS (SELECT FROM pg_depend d WHERE d.refclassid = 'pg_extension'::regclass AND "
    "d.classid = '{cat}'::regclass AND d.objid = {oid} AND d.deptype = 'e')"
)
_NS = (
    "SELECT n.oid, n.nspname FROM pg_namespace n WHERE n.nspname <> 'information_schema' "
    "AND n.nspname !~ '^pg_' AND " + _NOT_MEMBER.format(cat="pg_namespace", oid="n.oid")
)
_OWNER = "CASE WHEN pg_get_userbyid({col}) = current_user THEN 'runner' END"
_REL = (
    "SELECT c.oid, c.relname, c.relkind, c.relowner, c.relacl, c.reloptions, c.relpersistence, "
    "c.relrowsecurity, c.relforcerowsecurity, c.relispartition, c.relpartbound, ns.nspname, "
    "ns.nspname || '.' || c.relname AS qname FROM pg_class c JOIN ns ON ns.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND "
    + _NOT_MEMBER.format(cat="pg_class", oid="c.oid")
    + " AND ns.nspname || '.' || c.relname <> ALL (%(own)s::text[])"
)
_GRANTS = (
    "(SELECT jsonb_agg(g ORDER BY g) FROM (SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE "
    "pg_get_userbyid(a.grantee) END || ':' || a.privilege_type || CASE WHEN a.is_grantable "
    "THEN '*' ELSE '' END AS g FROM aclexplode({acl}) a WHERE a.grantee <> {owner}) x)"
)


def _grants(acl: str, default: str, owner: str) -> str:
    """The grants of an ACL column, a NULL one read as the default for its kind of object."""
    acl = f'coalesce({acl}, acldefault({default}::"char", {owner}))'
    return _GRANTS.format(acl=acl, owner=owner)


# The types the snapshot lists: enums, domains, ranges and standalone composite types (found
# from their pg_class row, so the planner prices the per-type subqueries on a few rows, not on
# every table's row type).
_TYPE_COLUMNS = (
    "t.oid, t.typname, t.typnamespace, t.typtype, t.typowner, t.typbasetype, t.typtypmod, "
    "t.typnotnull, t.typdefault, t.typrelid"
)
_TYPES = (
    f"SELECT {_TYPE_COLUMNS} FROM pg_type t WHERE t.typtype IN ('e', 'd', 'r') UNION ALL "
    f"SELECT {_TYPE_COLUMNS} FROM pg_class k JOIN pg_type t ON t.oid = k.reltype AND "
    "t.typrelid = k.oid AND t.typtype = 'c' WHERE k.relkind = 'c'"
)

# What the snapshot reads (and the kinds each part yields): part name -> (kinds, SELECT).
_PARTS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "schemas": (
        ("schema", "privilege"),
        "SELECT 'schema', n.nspname, NULL, jsonb_build_object('owner', "
        + _OWNER.format(col="n.nspowner")
        + ") FROM ns JOIN pg_namespace n ON n.oid = ns.oid UNION ALL SELECT 'privilege', "
        "n.nspname, NULL, jsonb_build_object('grants', coalesce(g, '[]')) FROM ns JOIN "
        "pg_namespace n ON n.oid = ns.oid CROSS JOIN LATERAL (SELECT "
        + _grants("n.nspacl", "'n'", "n.nspowner")
        + " AS g) z",
    ),
    # A relation's NULL ACL is read as no grants without aclexplode: its default grants only
    # the owner, who is left out.
    "relations": (
        ("table", "view", "materialized view", "sequence", "privilege"),
        "SELECT CASE r.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' "
        "WHEN 'S' THEN 'sequence' ELSE 'table' END, r.qname, NULL, jsonb_build_object("
        "'owner', " + _OWNER.format(col="r.relowner") + ", 'options', to_jsonb(r.reloptions), "
        "'unlogged', CASE WHEN r.relpersistence = 'u' THEN true END, "
        "'foreign', CASE WHEN r.relkind = 'f' THEN true END, "
        "'partition_key', CASE WHEN r.relkind = 'p' THEN pg_get_partkeydef(r.oid) END, "
        "'partition_of', p.relnamespace::regnamespace::text || '.' || p.relname || ' ' || "
        "pg_get_expr(r.relpartbound, r.oid), "
        "'rls', CASE WHEN r.relkind IN ('r', 'p') THEN r.relrowsecurity END, "
        "'force_rls', CASE WHEN r.relforcerowsecurity THEN true END, "
        "'definition', CASE WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid, true) END, "
        "'sequence', CASE WHEN s.seqrelid IS NOT NULL THEN jsonb_build_object('type', "
        "format_type(s.seqtypid, NULL), 'start', s.seqstart, 'increment', s.seqincrement, "
        "'min', s.seqmin, 'max', s.seqmax, 'cache', s.seqcache, 'cycle', s.seqcycle) END) "
        "FROM (SELECT * FROM rel WHERE relkind <> 'S' UNION ALL SELECT * FROM rel q WHERE "
        "q.relkind = 'S' AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = "
        "'pg_class'::regclass AND d.objid = q.oid AND d.deptype = 'i')) r "
        "LEFT JOIN pg_inherits i ON r.relispartition AND i.inhrelid = r.oid "
        "LEFT JOIN pg_class p ON p.oid = i.inhparent LEFT JOIN pg_sequence s ON s.seqrelid = r.oid "
        "AND r.relkind = 'S' UNION ALL SELECT 'privilege', r.qname, r.qname, "
        "jsonb_build_object('grants', coalesce(CASE WHEN r.relacl IS NOT NULL THEN "
        + _GRANTS.format(acl="r.relacl", owner="r.relowner")
        + " END, '[]')) FROM rel r",
    ),
    "columns": (
        ("column", "privilege"),
        "SELECT 'column', r.qname || '.' || a.attname, r.qname, jsonb_build_object('type', "
        "format_type(a.atttypid, a.atttypmod), 'not_null', a.attnotnull, 'default', "
        "CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END, "
        "'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END, "
        "'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END, "
        "'collation', co.collname) FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND "
        "a.attnum > 0 AND NOT a.attisdropped JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN "
        "pg_collation co ON co.oid = a.attcollation AND a.attcollation <> t.typcollation "
        "LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
        "WHERE r.relkind IN ('r', 'p', 'f') UNION ALL SELECT 'privilege', r.qname || '.' || "
        "a.attname, r.qname, jsonb_build_object('grants', g) FROM rel r JOIN pg_attribute a ON "
        "a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL "
        "CROSS JOIN LATERAL (SELECT "
        + _GRANTS.format(acl="a.attacl", owner="r.relowner")
        + " AS g) z WHERE g IS NOT NULL",
    ),
    "constraints": (
        ("constraint",),
        "SELECT 'constraint', r.qname || '.' || c.conname, r.qname, jsonb_build_object("
        "'definition', pg_get_constraintdef(c.oid), 'validated', c.convalidated) FROM rel r "
        "JOIN pg_constraint c ON c.conrelid = r.oid WHERE c.contype <> 'n'",
    ),
    "indexes": (
        ("index",),
        "SELECT 'index', r.nspname || '.' || ic.relname, r.qname, jsonb_build_object("
        "'definition', pg_get_indexdef(i.indexrelid), 'valid', i.indisvalid) FROM rel r "
        "JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid",
    ),
    "triggers": (
        ("trigger",),
        "SELECT 'trigger', r.qname || '.' || t.tgname, r.qname, jsonb_build_object("
        "'definition', pg_get_triggerdef(t.oid), 'enabled', CASE t.tgenabled WHEN 'O' THEN "
        "'origin' WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica' ELSE 'always' END) FROM rel r "
        "JOIN pg_trigger t ON t.tgrelid = r.oid WHERE NOT t.tgisinternal",
    ),
    "policies": (
        ("policy",),
        "SELECT 'policy', r.qname || '.' || p.polname, r.qname, jsonb_build_object('command', "
        "p.polcmd::text, 'permissive', p.polpermissive, 'roles', (SELECT jsonb_agg(CASE WHEN "
        "x = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x) END ORDER BY 1) FROM unnest(p.polroles) x), "
        "'using', pg_get_expr(p.polqual, p.polrelid), 'check', pg_get_expr(p.polwithcheck, "
        "p.polrelid)) FROM rel r JOIN pg_policy p ON p.polrelid = r.oid",
    ),
    "functions": (
        ("function", "procedure", "privilege"),
        "SELECT CASE WHEN p.prokind = 'p' THEN 'procedure' ELSE 'function' END, f.sig, NULL, "
        "jsonb_build_object('owner', " + _OWNER.format(col="p.proowner") + ", 'definition', "
        "CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END, 'aggregate', CASE WHEN "
        "p.prokind = 'a' THEN pg_get_function_result(p.oid) END) FROM f JOIN pg_proc p ON "
        "p.oid = f.oid UNION ALL SELECT 'privilege', f.sig, NULL, jsonb_build_object('grants', "
        "g) FROM f JOIN pg_proc p ON p.oid = f.oid CROSS JOIN LATERAL (SELECT "
        + _grants("p.proacl", "'f'", "p.proowner")
        + " AS g) z WHERE g IS NOT NULL",
    ),
    "types": (
        ("type", "enum", "domain", "privilege"),
        "SELECT CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' ELSE 'type' END, "
        "ns.nspname || '.' || t.typname, NULL, jsonb_build_object('owner', "
        + _OWNER.format(col="t.typowner")
        + ", 'labels', CASE WHEN t.typtype = 'e' THEN (SELECT jsonb_agg(e.enumlabel ORDER BY "
        "e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END, 'base', CASE WHEN "
        "t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END, 'not_null', CASE WHEN "
        "t.typnotnull THEN true END, 'default', t.typdefault, 'constraints', CASE WHEN t.typtype "
        "= 'd' THEN (SELECT jsonb_object_agg(c.conname, pg_get_constraintdef(c.oid)) FROM "
        "pg_constraint c WHERE c.contypid = t.oid AND c.contype <> 'n') END, 'range_of', "
        "(SELECT format_type(g.rngsubtype, NULL) FROM pg_range g WHERE g.rngtypid = t.oid), "
        "'attributes', CASE WHEN t.typtype = 'c' THEN (SELECT jsonb_agg(a.attname || ' ' || "
        "format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FROM pg_attribute a WHERE "
        "a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END) FROM ("
        + _TYPES
        + ") t JOIN ns ON ns.oid = t.typnamespace WHERE "
        + _NOT_MEMBER.format(cat="pg_type", oid="t.oid")
        + " UNION ALL SELECT 'privilege', ns.nspname || '.' || t.typname, NULL, "
        "jsonb_build_object('grants', g) FROM pg_type t JOIN ns ON ns.oid = t.typnamespace "
        "CROSS JOIN LATERAL (SELECT "
        + _GRANTS.format(acl="t.typacl", owner="t.typowner")
        + " AS g) z WHERE t.typacl IS NOT NULL AND t.typtype IN ('e', 'd', 'r', 'c') AND "
        + _NOT_MEMBER.format(cat="pg_type", oid="t.oid")
        + " AND g IS NOT NULL",
    ),
    "extensions": (
        ("extension",),
        "SELECT 'extension', e.extname, NULL, jsonb_build_object('version', e.extversion, "
        "'schema', e.extnamespace::regnamespace::text) FROM pg_extension e",
    ),
}
_FUNCS = (
    "SELECT p.oid, ns.nspname || '.' || p.proname || '(' || "
    "pg_get_function_identity_arguments(p.oid) || ')' AS sig FROM pg_proc p JOIN ns ON "
    "ns.oid = p.pronamespace WHERE " + _NOT_MEMBER.format(cat="pg_proc", oid="p.oid")
)
_WITH = f"WITH ns AS ({_NS}), rel AS ({_REL}), f AS ({_FUNCS}) "

PARTS: Final[tuple[str, ...]] = tuple(_PARTS)


def kinds_of(part: str) -> tuple[str, ...]:
    """The object kinds one part yields."""
    return _PARTS[part][0]


def objects_sql(parts: tuple[str, ...] = PARTS) -> str:
    """``SELECT kind, object, parent, def`` over the given parts (default: all of them)."""
    body = " UNION ALL ".join(f"({_PARTS[p][1]})" for p in parts)
    return f"{_WITH}SELECT o.* FROM ({body}) AS o(kind, object, parent, def)"


def aggregate_sql() -> str:
    """One row: the object count and the snapshot body (JSON text, sorted) of every part."""
    return (
        "SELECT count(*)::integer AS objects, coalesce(json_agg(json_build_array(kind, object, "
        "parent, jsonb_strip_nulls(def)) ORDER BY kind, object), '[]')::text AS body "
        f"FROM ({objects_sql()}) AS s"
    )
