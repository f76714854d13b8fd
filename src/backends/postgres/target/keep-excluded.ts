import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TykdrError } from '../../../core/errors.js';
import type { PgClient } from '../connection.js';
import { runTool } from './run-tool.js';

/**
 * Excluded (analytics) tables keep their rows on a restore.
 *
 * The dump holds only the schema of the tables `excludeTables` matched (pg_dump --exclude-table-data), so a plain
 * `pg_restore --clean` would drop each of them on the target and create it again empty: rows the snapshot never had
 * would be destroyed. Instead pg_restore gets a list (`-L`, pg_restore's own TOC listing with some lines commented
 * out) that leaves out, for every excluded table that exists on the target:
 *
 * - the table and what belongs to it: its owned and identity sequences (and their SEQUENCE SET, so the counter is not
 *   wound back below ids the kept rows use), column defaults, constraints, indexes, triggers, rules, policies,
 *   statistics, comments and grants, partition attachments between kept tables. Indexes and constraints the table
 *   lacks on the target stay in the list: they are created (the schema is created where it is missing);
 * - what the table uses and the target already has: its schema, column types and domains, collations, the functions
 *   of its defaults and triggers, extensions, sequences it draws from. Dropping those would fail (the kept table
 *   depends on them) and creating them would fail (they exist); the target's own definitions stay.
 * - the partitioned tables it is a partition of: dropping a partitioned table drops its partitions with it. Their
 *   other partitions are restored and attached to the kept table, which gives them its indexes (so their own index
 *   entries are left out too).
 *
 * A foreign key of a kept table that references a restored table stays in the list: pg_restore drops it before it drops
 * the referenced table and adds it again after that table's rows are loaded, which checks the kept rows against the
 * snapshot's. A kept row referencing a row the snapshot does not have makes that statement fail: the restore fails
 * (rows kept, constraint not re-created) and says so. Excluded tables missing on the target are restored from the dump
 * as before: created empty, with every index, constraint and sequence.
 *
 * A kept table that inherits from a table the snapshot restores (inheritance, not partitioning) is refused before
 * anything changes: dropping the parent would fail and its data would be appended twice.
 *
 * Why a list and not renaming the tables aside and back: a renamed table keeps its index, constraint and sequence
 * names (pg_restore's CREATEs would collide with them), still blocks the DROPs of what it depends on, and swapping
 * back would have to drop the empty copy that views and foreign keys of the restored tables now point to. The list is
 * pg_restore's own mechanism, keeps the kept tables untouched (no lock beyond dropping and re-adding a foreign key),
 * and works with --jobs (pg_restore treats unlisted entries as done).
 */

/** One line of `pg_restore -l -v`: "ID; TABLEOID OID DESC SCHEMA NAME OWNER" and its ";\tdepends on: ..." line. */
export interface TocEntry {
  id: number;
  /** The entry's type, e.g. "TABLE", "FK CONSTRAINT", "SEQUENCE SET". */
  desc: string;
  /** "SCHEMA NAME OWNER" (names unquoted; "-" when there is none). */
  rest: string;
  deps: number[];
}

/** Every entry type pg_dump writes (from pg_dump.c), longest first so "TABLE DATA" is not read as "TABLE". */
const DESCS = [
  'ACCESS METHOD', 'ACL', 'AGGREGATE', 'BLOB', 'BLOB METADATA', 'BLOBS', 'CAST', 'CHECK CONSTRAINT', 'COLLATION', 'COMMENT',
  'CONSTRAINT', 'CONVERSION', 'DATABASE', 'DATABASE PROPERTIES', 'DEFAULT', 'DEFAULT ACL', 'DOMAIN', 'ENCODING',
  'EVENT TRIGGER', 'EXTENSION', 'FK CONSTRAINT', 'FOREIGN DATA WRAPPER', 'FOREIGN SERVER', 'FOREIGN TABLE', 'FUNCTION',
  'INDEX', 'INDEX ATTACH', 'LARGE OBJECT', 'MATERIALIZED VIEW', 'MATERIALIZED VIEW DATA', 'OPERATOR', 'OPERATOR CLASS',
  'OPERATOR FAMILY', 'POLICY', 'PROCEDURAL LANGUAGE', 'PROCEDURE', 'PUBLICATION', 'PUBLICATION TABLE',
  'PUBLICATION TABLES IN SCHEMA', 'ROW SECURITY', 'RULE', 'SCHEMA', 'SEARCHPATH', 'SECURITY LABEL', 'SEQUENCE',
  'SEQUENCE OWNED BY', 'SEQUENCE SET', 'SERVER', 'SHELL TYPE', 'STATISTICS', 'STDSTRINGS', 'SUBSCRIPTION',
  'SUBSCRIPTION TABLE', 'TABLE', 'TABLE ATTACH', 'TABLE DATA', 'TEXT SEARCH CONFIGURATION', 'TEXT SEARCH DICTIONARY',
  'TEXT SEARCH PARSER', 'TEXT SEARCH TEMPLATE', 'TRANSFORM', 'TRIGGER', 'TYPE', 'USER MAPPING', 'VIEW',
].sort((a, b) => b.length - a.length);

/** Entries that belong to one relation: removed with it when every relation they tie to is removed. */
const PART = new Set([
  'SEQUENCE', 'DEFAULT', 'CONSTRAINT', 'CHECK CONSTRAINT', 'FK CONSTRAINT', 'INDEX', 'INDEX ATTACH', 'TABLE ATTACH',
  'TRIGGER', 'RULE', 'POLICY', 'ROW SECURITY', 'STATISTICS',
]);
/** Entries that only decorate the objects they depend on: removed when all of those are. */
const DECOR = new Set(['COMMENT', 'ACL', 'SECURITY LABEL', 'SEQUENCE SET', 'SEQUENCE OWNED BY']);
/**
 * Dependencies that tie a part to its relations (as opposed to the schema, types, functions and sequences it uses): a
 * foreign key is tied to both tables, an index attachment to both indexes. A default is tied to its table only, so a
 * sequence it draws from is something the kept table uses.
 */
const RELATIONAL = new Set(['TABLE', 'VIEW', 'MATERIALIZED VIEW', 'FOREIGN TABLE', 'INDEX', 'CONSTRAINT', 'CHECK CONSTRAINT', 'FK CONSTRAINT']);
/** What a kept table may use that the target then keeps as it is, when it has it. */
const USED = new Set(['SCHEMA', 'TYPE', 'DOMAIN', 'FUNCTION', 'PROCEDURE', 'AGGREGATE', 'COLLATION', 'EXTENSION', 'SEQUENCE']);
/** Parts of a kept table that are created when the target's table lacks them. */
const CREATE_IF_MISSING = new Set(['INDEX', 'CONSTRAINT', 'CHECK CONSTRAINT', 'FK CONSTRAINT']);

/** Parses `pg_restore -l -v` output. Comment lines other than "depends on" are skipped. */
export function parseTocList(text: string): TocEntry[] {
  const out: TocEntry[] = [];
  for (const line of text.split('\n')) {
    const dep = /^;\s*depends on:([\d ]*)$/.exec(line);
    if (dep) {
      const last = out[out.length - 1];
      if (last) last.deps.push(...dep[1]!.trim().split(/\s+/).filter(Boolean).map(Number));
      continue;
    }
    const m = /^(\d+); \d+ \d+ (.*)$/.exec(line);
    if (!m) continue;
    const body = m[2]!;
    const desc = DESCS.find((d) => body.startsWith(`${d} `)) ?? body.split(' ')[0]!;
    out.push({ id: Number(m[1]), desc, rest: body.slice(desc.length + 1), deps: [] });
  }
  return out;
}

/** "SCHEMA NAME OWNER" split as well as an unquoted listing allows: schema and owner are taken as single words. */
function splitRest(rest: string): { schema: string; name: string } {
  const first = rest.indexOf(' ');
  const last = rest.lastIndexOf(' ');
  if (first < 0) return { schema: rest, name: '' };
  return { schema: rest.slice(0, first), name: last > first ? rest.slice(first + 1, last) : rest.slice(first + 1) };
}

export interface KeptTable {
  schema: string;
  name: string;
  oid: number;
  /** Why it is kept: excluded from the backup, or the partitioned parent of a kept table. */
  reason: 'excluded' | 'partitioned parent';
}

export interface ExcludedTablesPlan {
  /** The list file for pg_restore -L, or null when every excluded table is missing on the target (nothing to keep). */
  listFile: string | null;
  /** "schema.table" of the tables left as they are on the target (excluded ones, and partitioned tables they belong to). */
  kept: string[];
  /** "schema.table" of excluded tables the target lacks: pg_restore creates them, empty. */
  created: string[];
  /** Objects the kept tables use that the target already has, left as the target has them ("TYPE public status"). */
  keptObjects: string[];
  /** Indexes and constraints of kept tables that the target lacked, created by the restore ("INDEX public name"). */
  createdParts: string[];
}

const key = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`;

/**
 * Decides which dump entries pg_restore must leave out so that excluded tables existing on the target keep their rows,
 * and writes the list file for `pg_restore -L` into `workDir`. Reads the target (never changes it) and the archive's
 * table of contents. Throws a targetError before anything is changed when a kept table cannot be kept safely.
 */
export async function planExcludedTables(o: {
  db: PgClient;
  /** "schema.table" keys from the manifest's `excluded_tables`. */
  excluded: string[];
  pgRestore: string;
  /** The archive as a plaintext file (made on first call when it was staged compressed). */
  archiveFile: () => Promise<string>;
  workDir: string;
  component: string;
  signal?: AbortSignal;
}): Promise<ExcludedTablesPlan> {
  const none: ExcludedTablesPlan = { listFile: null, kept: [], created: [...o.excluded], keptObjects: [], createdParts: [] };
  if (o.excluded.length === 0) return none;
  const { rows: existing } = await o.db.query<{ schema: string; name: string; oid: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.oid::text AS oid
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname || '.' || c.relname = ANY($1::text[])`,
    [o.excluded],
  );
  if (existing.length === 0) return none;

  await mkdir(o.workDir, { recursive: true });
  const listing = path.join(o.workDir, 'pg_restore.toc');
  const run = await runTool(o.pgRestore, ['--list', '--verbose', `--file=${listing}`, await o.archiveFile()], { env: process.env, secrets: [], signal: o.signal });
  if (run.code !== 0) {
    throw new TykdrError('targetError', `components.${o.component}: pg_restore --list could not read the archive: ${run.lines.slice(-3).join(' | ') || `exit ${run.code}`}`, {
      fix: 'check that the pg_restore in binDir matches the snapshot (pg_restore --version)',
    });
  }
  const listText = await readFile(listing, 'utf8');
  const entries = parseTocList(listText);
  const byId = new Map(entries.map((e) => [e.id, e]));

  const kept = new Map<string, KeptTable>(existing.map((t) => [key(t), { schema: t.schema, name: t.name, oid: Number(t.oid), reason: 'excluded' as const }]));
  const tableEntry = (t: { schema: string; name: string }): TocEntry | undefined => {
    const found = entries.filter((e) => e.desc === 'TABLE' && e.rest.startsWith(`${t.schema} ${t.name} `));
    const exact = found.length > 1 ? found.filter((e) => !e.rest.slice(t.schema.length + t.name.length + 2).includes(' ')) : found;
    if (exact.length > 1) {
      throw new TykdrError('targetError', `components.${o.component}: the archive lists table ${key(t)} ambiguously (names with spaces); nothing was changed`, {
        fix: 'restore this snapshot by hand with pg_restore -L (docs/FORMAT.md), leaving the excluded tables out',
      });
    }
    return exact[0];
  };
  await addParents(o.db, kept, tableEntry, o.component);

  const removed = new Set<number>();
  const createdParts: string[] = [];
  const keptObjects: string[] = [];
  for (const t of kept.values()) {
    const e = tableEntry(t);
    if (!e) {
      throw new TykdrError('targetError', `components.${o.component}: the archive has no table entry for ${key(t)}, which the snapshot lists as excluded; nothing was changed`, {
        fix: 'restore this snapshot by hand with pg_restore -L (docs/FORMAT.md), leaving the excluded tables out',
      });
    }
    removed.add(e.id);
  }
  const keptParts = await partsOnTarget(o.db, [...kept.values()]);
  const settled = new Set<number>();
  for (let changed = true; changed; ) {
    changed = false;
    // What belongs to removed entries goes with them.
    for (const e of entries) {
      if (removed.has(e.id) || settled.has(e.id)) continue;
      const deps = e.deps.map((d) => byId.get(d)).filter((d): d is TocEntry => d !== undefined);
      let belongs = false;
      if (DECOR.has(e.desc)) belongs = deps.length > 0 && deps.every((d) => removed.has(d.id));
      else if (PART.has(e.desc)) {
        const rel = deps.filter((d) => RELATIONAL.has(d.desc));
        belongs = rel.length > 0 && rel.every((d) => removed.has(d.id));
      }
      if (!belongs) continue;
      if (CREATE_IF_MISSING.has(e.desc) && !hasPart(e, kept, keptParts)) {
        settled.add(e.id);
        createdParts.push(`${e.desc} ${e.rest.slice(0, e.rest.lastIndexOf(' '))}`);
        continue;
      }
      removed.add(e.id);
      changed = true;
    }
    // A restored partition of a kept partitioned table gets the kept table's indexes when pg_restore attaches it
    // (PostgreSQL creates them, named as it named them on the source unless they were named by hand): the partition's
    // own CREATE INDEX and INDEX ATTACH would then fail.
    for (const e of entries) {
      if (removed.has(e.id) || e.desc !== 'INDEX') continue;
      const deps = e.deps.map((d) => byId.get(d)).filter((d): d is TocEntry => d !== undefined);
      const ofKeptParent = deps.some((d) => (d.desc === 'INDEX' || d.desc === 'CONSTRAINT') && removed.has(d.id));
      const onRestoredTable = deps.some((d) => d.desc === 'TABLE' && !removed.has(d.id));
      if (!ofKeptParent || !onRestoredTable) continue;
      removed.add(e.id);
      changed = true;
      for (const a of entries) if (a.desc === 'INDEX ATTACH' && a.deps.includes(e.id)) removed.add(a.id);
    }
    // What the removed entries use and the target has stays as the target has it.
    for (const id of [...removed]) {
      for (const d of byId.get(id)?.deps ?? []) {
        const u = byId.get(d);
        if (!u || removed.has(u.id) || settled.has(u.id) || !USED.has(u.desc)) continue;
        settled.add(u.id);
        if (await existsOnTarget(o.db, u)) {
          removed.add(u.id);
          settled.delete(u.id);
          keptObjects.push(`${u.desc} ${u.rest.slice(0, u.rest.lastIndexOf(' '))}`.replace(/^(\S+ )- /, '$1'));
          changed = true;
        }
      }
    }
  }

  const listFile = path.join(o.workDir, 'pg_restore.list');
  const lines = listText.split('\n').map((l) => {
    const m = /^(\d+);/.exec(l);
    return m && removed.has(Number(m[1])) ? `;tykdr keeps the target's: ${l}` : l;
  });
  await writeFile(listFile, lines.join('\n'), { mode: 0o600 });
  const keptKeys = [...kept.keys()].sort();
  return {
    listFile,
    kept: keptKeys,
    created: o.excluded.filter((t) => !kept.has(t)).sort(),
    keptObjects: keptObjects.sort(),
    createdParts: createdParts.sort(),
  };
}

/**
 * Adds the partitioned tables a kept table is a partition of (on the target, any level up) when the archive restores
 * them: DROP TABLE of a partitioned table drops its partitions. Refuses inheritance parents the archive restores.
 */
async function addParents(db: PgClient, kept: Map<string, KeptTable>, tableEntry: (t: { schema: string; name: string }) => TocEntry | undefined, component: string): Promise<void> {
  const queue = [...kept.values()];
  while (queue.length > 0) {
    const child = queue.shift()!;
    const { rows } = await db.query<{ schema: string; name: string; oid: string; kind: string }>(
      `SELECT n.nspname AS schema, c.relname AS name, c.oid::text AS oid, c.relkind::text AS kind
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhrelid = $1`,
      [child.oid],
    );
    for (const p of rows) {
      if (kept.has(key(p)) || !tableEntry(p)) continue;
      if (p.kind !== 'p') {
        throw new TykdrError(
          'targetError',
          `components.${component}: excluded table ${key(child)} inherits from ${key(p)}, which the snapshot restores: its rows cannot be kept (dropping ${key(p)} needs CASCADE); nothing was changed`,
          { fix: `add ${key(p)} to excludeTables for future backups, or move ${key(child)}'s rows aside (ALTER TABLE ... NO INHERIT) and restore again` },
        );
      }
      const parent: KeptTable = { schema: p.schema, name: p.name, oid: Number(p.oid), reason: 'partitioned parent' };
      kept.set(key(p), parent);
      queue.push(parent);
    }
  }
}

/** Names of the constraints and indexes each kept table has on the target ("schema.table" -> names), and every relation name per schema. */
interface TargetParts {
  constraints: Map<string, Set<string>>;
  relations: Set<string>;
}

async function partsOnTarget(db: PgClient, tables: KeptTable[]): Promise<TargetParts> {
  const oids = tables.map((t) => t.oid);
  const { rows: cons } = await db.query<{ oid: string; name: string }>('SELECT conrelid::text AS oid, conname AS name FROM pg_constraint WHERE conrelid = ANY($1::oid[])', [oids]);
  const { rows: rels } = await db.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1::text[])`,
    [[...new Set(tables.map((t) => t.schema))]],
  );
  const byOid = new Map(tables.map((t) => [String(t.oid), key(t)]));
  const constraints = new Map<string, Set<string>>();
  for (const c of cons) {
    const k = byOid.get(c.oid)!;
    if (!constraints.has(k)) constraints.set(k, new Set());
    constraints.get(k)!.add(c.name);
  }
  return { constraints, relations: new Set(rels.map(key)) };
}

/**
 * Whether the target's kept table already has this index or constraint. An index is looked up by name in its schema
 * (an index of that name on another relation counts as present: pg_restore's DROP INDEX IF EXISTS would drop it);
 * a constraint's tag is "TABLE NAME".
 */
function hasPart(e: TocEntry, kept: Map<string, KeptTable>, parts: TargetParts): boolean {
  const { schema, name } = splitRest(e.rest);
  if (e.desc === 'INDEX') return parts.relations.has(`${schema}.${name}`);
  for (const t of kept.values()) {
    if (t.schema !== schema || !name.startsWith(`${t.name} `)) continue;
    if (parts.constraints.get(key(t))?.has(name.slice(t.name.length + 1))) return true;
  }
  // Not recognisably missing (a name with spaces): treat as present, so nothing is dropped on a guess.
  return ![...kept.values()].some((t) => t.schema === schema && name.startsWith(`${t.name} `));
}

/** Whether a schema, type, function, collation, extension or sequence of the dump exists on the target. */
async function existsOnTarget(db: PgClient, e: TocEntry): Promise<boolean> {
  const { schema, name } = splitRest(e.rest);
  const q = async (sql: string, params: unknown[]) => {
    try {
      const { rows } = await db.query<{ ok: boolean | null }>(sql, params);
      return rows[0]?.ok === true;
    } catch {
      return false; // a name the target's parser refuses: not there
    }
  };
  switch (e.desc) {
    case 'SCHEMA':
      return q('SELECT to_regnamespace(quote_ident($1)) IS NOT NULL AS ok', [name]);
    case 'TYPE':
    case 'DOMAIN':
      return q(`SELECT to_regtype(quote_ident($1) || '.' || quote_ident($2)) IS NOT NULL AS ok`, [schema, name]);
    case 'COLLATION':
      return q(`SELECT to_regcollation(quote_ident($1) || '.' || quote_ident($2)) IS NOT NULL AS ok`, [schema, name]);
    case 'EXTENSION':
      return q('SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1) AS ok', [name]);
    case 'SEQUENCE':
      return q(
        `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'S') AS ok`,
        [schema, name],
      );
    default: {
      // FUNCTION, PROCEDURE, AGGREGATE: the tag is "name(argument types)".
      const open = name.indexOf('(');
      if (open < 0 || !name.endsWith(')')) return false;
      return q(`SELECT to_regprocedure(quote_ident($1) || '.' || quote_ident($2) || $3) IS NOT NULL AS ok`, [schema, name.slice(0, open), name.slice(open)]);
    }
  }
}
