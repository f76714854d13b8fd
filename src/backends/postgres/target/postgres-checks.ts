import { countRows, insertStats, listIndexes, listTables, tableKey } from '../catalog.js';
import type { PgClient } from '../connection.js';
import type { DumpFacts } from './dump-facts.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { checkResult, guarded } from '../../../core/checks/result.js';
import { throwIfAborted } from '../../../core/util/abort.js';
import { formatCount } from '../../../core/duration.js';

/**
 * Checks that prove a PostgreSQL restore worked, against the facts the backup recorded inside its snapshot. Each
 * returns one CheckResult and never throws (except on abort): a check that cannot run fails with the reason.
 * Evidence names tables and indexes (schema, not data) and row counts; never a value.
 */

export interface TableEvidence {
  table: string;
  /** Rows in the snapshot; null for an excluded table (its data was never backed up) or a partitioned parent. */
  expected: number | null;
  /** Rows on the target; null when the table is missing. */
  actual: number | null;
  status: 'ok' | 'differs' | 'missing' | 'excluded' | 'partitioned' | 'extra';
  /** How `actual` was found: the server's statistics of a table this restore created, or count(*). */
  counted_by?: 'statistics' | 'count';
  note?: string;
}

const n = (x: number) => formatCount(x);

/**
 * database-counts: every table the backup counted holds exactly as many rows on the target (the restore replaced
 * the objects, so exact equality is right). Excluded (analytics) tables must exist; their data is not in the snapshot,
 * so their rows (kept from before the restore, or written since, e.g. by Pump) are reported, not checked. Tables on
 * the target that the snapshot does not have are listed as extra.
 *
 * With `before` (the tables' statistics, for their oids, before pg_restore ran, which succeeded), a table the restore created and filled is
 * not scanned when PostgreSQL's statistics (15 and later, track_counts on) prove its count: since it was created,
 * exactly the snapshot's rows were inserted (aborted inserts included), all of them are live and none was deleted.
 * pg_restore's COPY inserted every row of the archive, so another insert, a row a trigger dropped, a delete or a later
 * truncation makes the numbers differ. Only when no other session that could write is connected to the database
 * (after waiting up to a second for pg_restore's to end): a connected session's statistics may not be flushed yet.
 * Otherwise, and for every empty table, count(*) decides, as for every other table.
 */
export function checkDatabaseCounts(o: { db: PgClient; component: string; facts: DumpFacts; before?: Map<string, { oid: string }>; signal?: AbortSignal }): Promise<CheckResult> {
  const started = Date.now();
  const name = 'database-counts';
  return guarded(name, started, async () => {
    const present = new Map((await listTables(o.db)).map((t) => [tableKey(t), t]));
    const stats = o.before ? await alone(o.db).then((yes) => (yes ? insertStats(o.db) : null)).catch(() => null) : null;
    const proven = (key: string, expected: number) => {
      const s = stats?.get(key);
      return expected > 0 && s !== undefined && o.before!.get(key)?.oid !== s.oid && s.inserted === expected && s.live === expected && s.deleted === 0;
    };
    const rows: TableEvidence[] = [];
    const count = async (key: string) => {
      throwIfAborted(o.signal);
      const t = present.get(key);
      return t ? countRows(o.db, t) : null;
    };
    for (const [table, expected] of Object.entries(o.facts.tables)) {
      const byStats = present.get(table)?.kind === 'r' && proven(table, expected);
      const actual = byStats ? expected : await count(table);
      const status = actual === null ? 'missing' : actual === expected ? 'ok' : 'differs';
      rows.push({ table, expected, actual, status, ...(actual === null ? {} : { counted_by: byStats ? 'statistics' : 'count' }) });
    }
    for (const table of o.facts.excluded_tables) {
      const t = present.get(table);
      const actual = t && t.kind === 'r' ? await count(table) : t ? 0 : null;
      const note = actual ? `${n(actual)} rows on the target, kept or written since (its data is not in the snapshot)` : undefined;
      rows.push({ table, expected: null, actual, status: actual === null ? 'missing' : 'excluded', ...(t?.kind === 'r' ? { counted_by: 'count' as const } : {}), ...(note ? { note } : {}) });
    }
    for (const table of o.facts.partitioned_tables) {
      rows.push({ table, expected: null, actual: present.has(table) ? 0 : null, status: present.has(table) ? 'partitioned' : 'missing' });
    }
    const known = new Set(rows.map((r) => r.table));
    for (const key of present.keys()) if (!known.has(key)) rows.push({ table: key, expected: null, actual: null, status: 'extra' });

    const bad = rows.filter((r) => r.status === 'missing' || r.status === 'differs');
    const counted = rows.filter((r) => r.expected !== null);
    const total = counted.reduce((a, r) => a + (r.expected ?? 0), 0);
    const excluded = rows.filter((r) => r.status === 'excluded');
    const evidence = {
      component: o.component,
      tables: rows,
      expected_total_rows: total,
      actual_total_rows: counted.reduce((a, r) => a + (r.actual ?? 0), 0),
    };
    if (bad.length > 0) {
      const what = bad.slice(0, 5).map((r) => (r.status === 'missing' ? `${r.table} missing` : `${r.table} has ${n(r.actual!)} rows, snapshot ${n(r.expected!)}`));
      return checkResult(name, 'failed', `${o.component}: ${bad.length} of ${rows.length - rows.filter((r) => r.status === 'extra').length} tables differ from the snapshot: ${what.join('; ')}${bad.length > 5 ? '; ...' : ''}`, evidence, started);
    }
    const extra = rows.filter((r) => r.status === 'extra').length;
    const byStats = rows.filter((r) => r.counted_by === 'statistics').length;
    return checkResult(
      name,
      'passed',
      `${o.component}: ${counted.length} tables hold exactly the snapshot's ${n(total)} rows` +
        `${byStats ? ` (${byStats} of them created by this restore, counted by the server's statistics: every row inserted is live, none deleted)` : ''}` +
        `${excluded.length ? `; ${excluded.length} excluded (analytics) tables exist (their data is not in the snapshot)` : ''}` +
        `${extra ? `; ${extra} tables not in the snapshot left as they were` : ''}`,
      evidence,
      started,
    );
  });
}

/**
 * True when no other session that could write is connected to this database, after waiting (up to `ms`) for
 * pg_restore's own (application_name tykdr) to end: pg_restore has exited, but its sessions may still be ending, and a
 * session flushes its statistics as it ends, before it leaves pg_stat_activity. A session that is not ending may hold
 * its counts back (up to 10 s once idle after a flush less than a second before, up to a minute while busy), so while
 * any is connected a delete or truncation it committed may be missing from them: then count(*) decides. A session the
 * checker may not see the details of (another role's, without pg_read_all_stats) has no backend_type: it counts.
 */
async function alone(db: PgClient, ms = 1000): Promise<boolean> {
  const others = async (where: string) =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND ${where}`))
      .rows[0]?.n ?? 0;
  const deadline = Date.now() + ms;
  while ((await others(`application_name = 'tykdr'`)) > 0) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return (await others(`(backend_type IS NULL OR backend_type NOT IN ('autovacuum worker', 'parallel worker', 'walsender'))`)) === 0;
}

/** database-indexes: every index the source had exists on the target, on the same table. */
export function checkDatabaseIndexes(o: { db: PgClient; component: string; facts: DumpFacts; signal?: AbortSignal }): Promise<CheckResult> {
  const started = Date.now();
  const name = 'database-indexes';
  return guarded(name, started, async () => {
    throwIfAborted(o.signal);
    const actual = await listIndexes(o.db);
    const tables: Array<{ table: string; expected: number; found: number; missing: string[] }> = [];
    let expectedTotal = 0;
    const missingAll: string[] = [];
    for (const [table, names] of Object.entries(o.facts.indexes)) {
      const have = new Set(actual[table] ?? []);
      const missing = names.filter((x) => !have.has(x));
      expectedTotal += names.length;
      missingAll.push(...missing.map((m) => `${table}: ${m}`));
      tables.push({ table, expected: names.length, found: names.length - missing.length, missing });
    }
    const evidence = { component: o.component, tables, expected_indexes: expectedTotal, missing: missingAll };
    if (missingAll.length > 0) {
      return checkResult(name, 'failed', `${o.component}: ${missingAll.length} of ${expectedTotal} indexes are missing: ${missingAll.slice(0, 5).join(', ')}${missingAll.length > 5 ? ', ...' : ''}`, evidence, started);
    }
    return checkResult(name, 'passed', `${o.component}: all ${expectedTotal} indexes of ${tables.length} tables exist`, evidence, started);
  });
}

/** database-counts for a globals artifact: every role of the snapshot exists on the target server. */
export function checkRoles(o: { db: PgClient; component: string; roles: string[]; signal?: AbortSignal }): Promise<CheckResult> {
  const started = Date.now();
  const name = 'database-counts';
  return guarded(name, started, async () => {
    throwIfAborted(o.signal);
    const { rows } = await o.db.query<{ r: string }>('SELECT rolname AS r FROM pg_roles WHERE rolname = ANY($1::text[])', [o.roles]);
    const have = new Set(rows.map((x) => x.r));
    const missing = o.roles.filter((r) => !have.has(r));
    const evidence = { component: o.component, roles: o.roles.length, found: o.roles.length - missing.length, missing };
    if (missing.length > 0) return checkResult(name, 'failed', `${o.component}: ${missing.length} of ${o.roles.length} roles are missing: ${missing.slice(0, 5).join(', ')}`, evidence, started);
    return checkResult(name, 'passed', `${o.component}: all ${o.roles.length} roles of the snapshot exist`, evidence, started);
  });
}
