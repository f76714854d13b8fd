import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { indexList, seedTykDashboard, startPostgres, tableCounts, tableDigest, TYK_PASSWORD, TYK_USER, type PostgresServer } from '../helpers/postgres.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * "A restore never destroys what it did not back up": tables excluded from a backup (analytics, by excludeTables)
 * keep their rows, indexes and sequences on a restore; only where the target lacks them are they created, empty.
 */

const DB = 'tyk_analytics';
/** Excluded by the default excludeTables (tyk_analytics, tyk_analytics_[0-9]*, tyk_aggregated, tyk_uptime_analytics, tyk_graph_analytics). */
const EXCLUDED = [
  'graph.tyk_graph_analytics',
  'public.tyk_aggregated',
  'public.tyk_analytics',
  'public.tyk_analytics_20261120',
  'public.tyk_analytics_20270101',
  'public.tyk_uptime_analytics',
];
/** Excluded tables that stay on the target in the same-database restore (tyk_aggregated is dropped first). */
const KEPT = EXCLUDED.filter((t) => t !== 'public.tyk_aggregated');

let pg: PostgresServer;
let ws: Workspace;
let configFile: string;
/** Row digests and counts of the backed-up tables at the snapshot. */
let snapshotDigests: Record<string, string>;
let snapshotCounts: Record<string, number>;
let snapshotIndexes: string[];

const env = () => ({ PG_PASSWORD: TYK_PASSWORD, PG_SUPER_PASSWORD: pg.superPassword });

const config = (restore: string) => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  pg:
    kind: postgres
    host: 127.0.0.1
    port: ${pg.port}
    database: ${DB}
    username: ${TYK_USER}
    password: \${PG_PASSWORD}
    binDir: ${pg.binDir}
    restore: ${restore}
restore: { reportDir: ./reports }
`;

/** Beside the seeded Dashboard: an excluded table with a foreign key, an enum column, a trigger function and an index;
 * one with an identity column in its own schema; and an excluded partition of a partitioned table that is backed up. */
async function seedExtras(db: string): Promise<void> {
  const c = await pg.client(db, TYK_USER, TYK_PASSWORD);
  try {
    await c.query(`
      CREATE TYPE hit_kind AS ENUM ('up', 'down');
      CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.seen := coalesce(NEW.seen, now()); RETURN NEW; END $$;
      CREATE TABLE tyk_uptime_analytics (id bigserial PRIMARY KEY, org_id text NOT NULL REFERENCES tyk_organisations(id), kind hit_kind NOT NULL, seen timestamptz);
      CREATE INDEX tyk_uptime_analytics_org_idx ON tyk_uptime_analytics (org_id);
      CREATE TRIGGER stamp BEFORE INSERT ON tyk_uptime_analytics FOR EACH ROW EXECUTE FUNCTION stamp();
      INSERT INTO tyk_uptime_analytics (org_id, kind) SELECT 'org' || (1 + i % 5), CASE WHEN i % 7 = 0 THEN 'down' ELSE 'up' END::hit_kind FROM generate_series(1, 2000) i;
      CREATE SCHEMA graph;
      CREATE TABLE graph.tyk_graph_analytics (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, query text NOT NULL);
      INSERT INTO graph.tyk_graph_analytics (query) SELECT '{ q' || i || ' }' FROM generate_series(1, 1000) i;
      CREATE TABLE events (id bigserial, day date NOT NULL, v int) PARTITION BY RANGE (day);
      CREATE INDEX events_day_idx ON events (day);
      CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
      CREATE TABLE tyk_analytics_20270101 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2027-01-02');
      INSERT INTO events (day, v) SELECT date '2026-03-01' + (i % 200), i FROM generate_series(1, 300) i;
      INSERT INTO events (day, v) SELECT date '2027-01-01', i FROM generate_series(1, 1500) i;
      ANALYZE;`);
  } finally {
    await c.end();
  }
}

async function digests(db: string, tables: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of tables) {
    const [schema, name] = t.split('.');
    out[t] = await tableDigest(pg, db, `"${schema}"."${name}"`);
  }
  return out;
}

async function restore(file: string, plan = 'database'): Promise<{ code: number | null; out: string; report: any }> {
  const res = await runCli(['restore', '--plan', plan, '-c', file, '--yes', '--json'], { env: env() });
  const out = res.stdout + res.stderr;
  expect(out).not.toContain(TYK_PASSWORD);
  expect(out).not.toContain(pg.superPassword);
  const parsed = res.stdout ? JSON.parse(res.stdout) : {};
  return { code: res.code, out, report: parsed.report ?? parsed };
}

const only = <T,>(o: Record<string, T>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, o[k]]));

beforeAll(async () => {
  [pg, ws] = await Promise.all([startPostgres(), makeWorkspace()]);
  await seedTykDashboard(pg, DB);
  await seedExtras(DB);
  snapshotCounts = await tableCounts(pg, DB);
  snapshotIndexes = await indexList(pg, DB);
  const backedUp = Object.keys(snapshotCounts).filter((t) => !EXCLUDED.includes(t));
  snapshotDigests = await digests(DB, backedUp);
  configFile = await ws.writeConfig('tykdr.yaml', config('{ jobs: 2 }'));
  const res = await runCli(['backup', '-c', configFile, '--json'], { env: env() });
  expect(res.code, res.stdout + res.stderr).toBe(0);
  const source = JSON.parse(res.stdout).manifest.components.pg.source;
  expect([...source.excluded_tables].sort()).toEqual(EXCLUDED);
});

afterAll(async () => {
  await Promise.all([pg?.stop(), ws?.cleanup()]);
});

describe('restore --plan full into the backed-up database (pg_restore --jobs 2)', () => {
  let before: { counts: Record<string, number>; digests: Record<string, string>; maxIds: Record<string, number> };
  let result: Awaited<ReturnType<typeof restore>>;
  let step: any;

  beforeAll(async () => {
    // After the snapshot: Pump writes analytics, someone damages the Dashboard's tables, an analytics table and an
    // index of a kept table go missing.
    await pg.query(DB, `INSERT INTO tyk_analytics (api_id, path, response_code) SELECT 'late', '/late/' || i, 201 FROM generate_series(1, 2000) i`);
    await pg.query(DB, `INSERT INTO tyk_uptime_analytics (org_id, kind) SELECT 'org2', 'down' FROM generate_series(1, 150)`);
    await pg.query(DB, `INSERT INTO graph.tyk_graph_analytics (query) SELECT 'late' || i FROM generate_series(1, 40) i`);
    await pg.query(DB, `INSERT INTO events (day, v) SELECT date '2027-01-01', -i FROM generate_series(1, 25) i`);
    await pg.query(DB, 'DROP TABLE tyk_aggregated');
    await pg.query(DB, 'DROP INDEX tyk_analytics_ts_idx');
    await pg.query(DB, 'DELETE FROM tyk_apis WHERE id > 100');
    await pg.query(DB, `UPDATE tyk_policies SET rate = 0`);
    await pg.query(DB, `DELETE FROM events_2026 WHERE v % 2 = 0`);
    const counts = await tableCounts(pg, DB);
    before = {
      counts: only(counts, KEPT),
      digests: await digests(DB, KEPT),
      maxIds: {
        'public.tyk_analytics': Number((await pg.query<{ m: string }>(DB, 'SELECT max(id)::text AS m FROM tyk_analytics'))[0]!.m),
        'public.tyk_uptime_analytics': Number((await pg.query<{ m: string }>(DB, 'SELECT max(id)::text AS m FROM tyk_uptime_analytics'))[0]!.m),
        'graph.tyk_graph_analytics': Number((await pg.query<{ m: string }>(DB, 'SELECT max(id)::text AS m FROM graph.tyk_graph_analytics'))[0]!.m),
      },
    };
    expect(before.counts['public.tyk_analytics']).toBe(5000);
    result = await restore(configFile, 'full');
    step = result.report.steps?.find((s: any) => s.id === 'database');
  });

  it('succeeds, with both database checks passed, and reports which excluded tables it kept and created', () => {
    expect(result.code, result.out).toBe(0);
    expect(result.report.status).toBe('succeeded');
    expect(step.checks.map((c: any) => [c.name, c.status])).toEqual([
      ['database-counts', 'passed'],
      ['database-indexes', 'passed'],
    ]);
    const d = step.details.pg;
    expect(d.excluded_tables_kept).toEqual([...KEPT, 'public.events'].sort());
    expect(d.excluded_tables_created).toEqual(['public.tyk_aggregated']);
    expect(d.kept_objects).toEqual(['FUNCTION public stamp()', 'SCHEMA graph', 'TYPE public hit_kind']);
    expect(d.created_on_kept_tables).toEqual(['INDEX public tyk_analytics_ts_idx']);
    expect(d.pg_restore_errors).toBe(0);
    const evidence = step.checks[0].evidence.tables as any[];
    expect(evidence.find((t) => t.table === 'public.tyk_analytics')).toMatchObject({ expected: null, actual: 5000, status: 'excluded' });
  });

  it('excluded tables that were on the target keep every row, including rows written after the snapshot', async () => {
    expect(only(await tableCounts(pg, DB), KEPT)).toEqual(before.counts);
    expect(await digests(DB, KEPT)).toEqual(before.digests);
  });

  it('the backed-up tables equal the snapshot again', async () => {
    expect(await digests(DB, Object.keys(snapshotDigests))).toEqual(snapshotDigests);
    const counts = await tableCounts(pg, DB);
    for (const t of Object.keys(snapshotDigests)) expect(counts[t], t).toBe(snapshotCounts[t]);
  });

  it('a missing excluded table is created, empty, with its index; a dropped index of a kept table is created again', async () => {
    expect((await tableCounts(pg, DB))['public.tyk_aggregated']).toBe(0);
    expect(await indexList(pg, DB)).toEqual(snapshotIndexes);
  });

  it('sequences of kept tables are not wound back: new rows get new ids', async () => {
    const next = async (sql: string) => Number((await pg.query<{ id: string }>(DB, sql))[0]!.id);
    expect(await next(`INSERT INTO tyk_analytics (api_id) VALUES ('after') RETURNING id::text AS id`)).toBeGreaterThan(before.maxIds['public.tyk_analytics']!);
    expect(await next(`INSERT INTO tyk_uptime_analytics (org_id, kind) VALUES ('org1', 'up') RETURNING id::text AS id`)).toBeGreaterThan(before.maxIds['public.tyk_uptime_analytics']!);
    expect(await next(`INSERT INTO graph.tyk_graph_analytics (query) VALUES ('after') RETURNING id::text AS id`)).toBeGreaterThan(before.maxIds['graph.tyk_graph_analytics']!);
    // The trigger of the kept table still runs (its function was left as it was).
    const [row] = await pg.query<{ seen: Date | null }>(DB, `SELECT seen FROM tyk_uptime_analytics WHERE org_id = 'org1' ORDER BY id DESC LIMIT 1`);
    expect(row!.seen).not.toBeNull();
  });

  it("the kept table's foreign key to a restored table is added again and validated", async () => {
    const fks = await pg.query<{ name: string; valid: boolean; ref: string }>(
      DB,
      `SELECT conname AS name, convalidated AS valid, confrelid::regclass::text AS ref FROM pg_constraint WHERE conrelid = 'tyk_uptime_analytics'::regclass AND contype = 'f'`,
    );
    expect(fks).toEqual([{ name: 'tyk_uptime_analytics_org_id_fkey', valid: true, ref: 'tyk_organisations' }]);
  });

  it('a kept partition stays attached to its partitioned table, whose other partition is restored', async () => {
    const parts = await pg.query<{ p: string }>(DB, `SELECT inhrelid::regclass::text AS p FROM pg_inherits WHERE inhparent = 'events'::regclass ORDER BY 1`);
    expect(parts.map((p) => p.p)).toEqual(['events_2026', 'tyk_analytics_20270101']);
    expect((await tableCounts(pg, DB))['public.events_2026']).toBe(300);
    const [n] = await pg.query<{ n: string }>(DB, `SELECT count(*)::text AS n FROM events WHERE day = '2027-01-01'`);
    expect(Number(n!.n)).toBe(1525);
  });
});

describe('restore --dry-run', () => {
  it('counts the tables a restore replaces apart from the excluded ones it keeps', async () => {
    const res = await runCli(['restore', '--plan', 'database', '-c', configFile, '--dry-run'], { env: env() });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/has live data \(\d+ tables replaced, about \d+ rows; 6 excluded tables \(about \d+ rows\) are kept\)/);
  });
});

describe('restore into another database', () => {
  const target = (db: string) => config(`{ jobs: 2, target: { database: ${db}, username: ${pg.superuser}, password: "\${PG_SUPER_PASSWORD}" } }`);

  it('creates every excluded table empty where the database is new, with the indexes the source had', async () => {
    const file = await ws.writeConfig('fresh.yaml', target('tyk_fresh'));
    const { code, out, report } = await restore(file);
    expect(code, out).toBe(0);
    const step = report.steps.find((s: any) => s.id === 'database');
    expect(step.details.pg).toMatchObject({ database_created: true, excluded_tables_kept: [], excluded_tables_created: EXCLUDED });
    const counts = await tableCounts(pg, 'tyk_fresh');
    for (const t of EXCLUDED) expect(counts[t], t).toBe(0);
    expect(await indexList(pg, 'tyk_fresh')).toEqual(snapshotIndexes);
    expect(await digests('tyk_fresh', Object.keys(snapshotDigests))).toEqual(snapshotDigests);
  });

  it('fails (exit 6) when kept rows reference rows the snapshot does not have, and keeps those rows', async () => {
    const file = await ws.writeConfig('orphans.yaml', target('tyk_orphans'));
    expect((await restore(file)).code).toBe(0);
    // On the target after that restore: an organisation the snapshot does not have, and analytics about it.
    await pg.query('tyk_orphans', `INSERT INTO tyk_organisations (id, owner_name) VALUES ('org-late', 'Late')`);
    await pg.query('tyk_orphans', `INSERT INTO tyk_uptime_analytics (org_id, kind) SELECT CASE WHEN i % 2 = 0 THEN 'org-late' ELSE 'org3' END, 'up' FROM generate_series(1, 400) i`);
    const keptBefore = await digests('tyk_orphans', ['public.tyk_uptime_analytics']);

    const { code, out, report } = await restore(file);
    expect(code, out).toBe(6);
    const message = JSON.stringify(report);
    expect(message).toContain('tyk_uptime_analytics_org_id_fkey');
    expect(message).toContain('after 1 failed statement (the rest of the dump was restored)');
    expect(message).toContain('reference rows the snapshot does not have; those rows are untouched');
    expect(await digests('tyk_orphans', ['public.tyk_uptime_analytics'])).toEqual(keptBefore);
    expect((await tableCounts(pg, 'tyk_orphans'))['public.tyk_organisations']).toBe(snapshotCounts['public.tyk_organisations']);
  });
});
