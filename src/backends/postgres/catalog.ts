import type { PgClient } from './connection.js';
import { qualified } from './connection.js';
import type { TablePattern } from './table-patterns.js';

/**
 * Catalog queries shared by the backup (inside its snapshot) and the restore checks (on the target). "User" objects
 * are those outside pg_catalog, information_schema, pg_toast and the temp schemas; tables that belong to an
 * extension are left to the extension, as pg_dump does.
 */
const USER_SCHEMA = `n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'`;

export interface TableRef {
  schema: string;
  name: string;
  /** r: ordinary table (holds rows); p: partitioned table (its rows live in its partitions). */
  kind: 'r' | 'p';
}

export const tableKey = (t: { schema: string; name: string }): string => `${t.schema}.${t.name}`;

/** Ordinary and partitioned tables of the user schemas, sorted by schema and name. */
export async function listTables(db: PgClient): Promise<TableRef[]> {
  const { rows } = await db.query<{ schema: string; name: string; kind: 'r' | 'p' }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA}
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 1, 2`,
  );
  return rows;
}

/** Tables (of `tables`) whose schema and name match a pattern, matched by the server's regex engine as pg_dump does. */
export async function matchTables(db: PgClient, patterns: TablePattern[], tables: TableRef[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (patterns.length === 0 || tables.length === 0) return out;
  const { rows } = await db.query<{ schema: string; name: string }>(
    `SELECT t.schema, t.name
       FROM unnest($1::text[], $2::text[]) AS t(schema, name), unnest($3::text[], $4::text[]) AS p(schema_re, table_re)
      WHERE t.name ~ p.table_re AND (p.schema_re IS NULL OR t.schema ~ p.schema_re)`,
    [tables.map((t) => t.schema), tables.map((t) => t.name), patterns.map((p) => p.schema), patterns.map((p) => p.table)],
  );
  for (const r of rows) out.add(tableKey(r));
  return out;
}

/** Index names per relation ("schema.table" -> sorted names), for every table and materialized view of the user schemas. */
export async function listIndexes(db: PgClient): Promise<Record<string, string[]>> {
  const { rows } = await db.query<{ schema: string; tbl: string; idx: string }>(
    `SELECT schemaname AS schema, tablename AS tbl, indexname AS idx FROM pg_indexes n
      WHERE n.schemaname !~ '^pg_' AND n.schemaname <> 'information_schema' ORDER BY 1, 2, 3`,
  );
  const out: Record<string, string[]> = {};
  for (const r of rows) (out[`${r.schema}.${r.tbl}`] ??= []).push(r.idx);
  return out;
}

/**
 * Roles the dump names: owners of user schemas, relations, functions and types, grantees of their privileges, and
 * roles with default privileges. Built-in pg_* roles are left out (every server has them).
 */
export async function referencedRoles(db: PgClient): Promise<string[]> {
  const { rows } = await db.query<{ r: string }>(
    `SELECT DISTINCT r FROM (
        SELECT pg_get_userbyid(n.nspowner) AS r FROM pg_namespace n WHERE ${USER_SCHEMA}
        UNION SELECT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_SCHEMA}
        UNION SELECT pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${USER_SCHEMA}
        UNION SELECT pg_get_userbyid(t.typowner) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE ${USER_SCHEMA}
        UNION SELECT pg_get_userbyid(a.grantee) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
              aclexplode(c.relacl) a WHERE ${USER_SCHEMA} AND a.grantee <> 0
        UNION SELECT pg_get_userbyid(a.grantee) FROM pg_namespace n, aclexplode(n.nspacl) a WHERE ${USER_SCHEMA} AND a.grantee <> 0
        UNION SELECT pg_get_userbyid(d.defaclrole) FROM pg_default_acl d
     ) x WHERE r !~ '^pg_' ORDER BY 1`,
  );
  return rows.map((x) => x.r);
}

/** Exact row count of one table's own rows (ONLY: an inheritance parent's children are counted on their own). */
export async function countRows(db: PgClient, t: { schema: string; name: string }): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ONLY ${qualified(t.schema, t.name)}`);
  return Number(rows[0]?.n ?? NaN);
}

export interface InsertStats {
  oid: string;
  /** Cumulative since the table was created (aborted inserts included); never overwritten by VACUUM or ANALYZE. */
  inserted: number;
  deleted: number;
  /** Live rows as the statistics hold them (ANALYZE and VACUUM may replace it with an estimate). */
  live: number;
}

/**
 * The cumulative statistics of every ordinary table of the user schemas, with its oid ("schema.table" -> stats), or
 * null before PostgreSQL 15 (whose statistics collector may drop messages) and when track_counts is off. What a
 * backend has not flushed yet is not in them.
 */
export async function insertStats(db: PgClient): Promise<Map<string, InsertStats> | null> {
  const { rows } = await db.query<{ schema: string; name: string; oid: string; ins: string; del: string; live: string; v: number; tc: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.oid::text AS oid, pg_stat_get_tuples_inserted(c.oid)::text AS ins,
            pg_stat_get_tuples_deleted(c.oid)::text AS del, pg_stat_get_live_tuples(c.oid)::text AS live,
            current_setting('server_version_num')::int AS v, current_setting('track_counts') AS tc
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND ${USER_SCHEMA}`,
  );
  if (rows.length > 0 && (rows[0]!.v < 150000 || rows[0]!.tc !== 'on')) return null;
  return new Map(rows.map((r) => [tableKey(r), { oid: r.oid, inserted: Number(r.ins), deleted: Number(r.del), live: Number(r.live) }]));
}

/** The server's version: text as "15.18" and server_version_num. */
export async function serverVersion(db: PgClient): Promise<{ text: string; num: number }> {
  const { rows } = await db.query<{ v: string; n: string }>(`SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n`);
  return { text: (rows[0]?.v ?? '').split(' ')[0]!, num: Number(rows[0]?.n) };
}
