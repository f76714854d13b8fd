import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { indexList, seedTykDashboard, startPostgres, tableCounts, tableDigest, TYK_PASSWORD, TYK_USER, type PostgresServer } from '../helpers/postgres.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const execFileP = promisify(execFile);

const ANALYTICS = ['public.tyk_aggregated', 'public.tyk_analytics', 'public.tyk_analytics_20261120'];
const DB = 'tyk_analytics';

let pg: PostgresServer;
let ws: Workspace;
let original: Record<string, number>;
let originalIndexes: string[];
let originalDigests: Record<string, string>;
let configFile: string;
let snapshotId: string;
let manifest: any;

const env = () => ({ PG_PASSWORD: TYK_PASSWORD, PG_SUPER_PASSWORD: pg.superPassword });

/** The backup connects as the Dashboard's own (non-superuser) role; restores to another database go in as the superuser. */
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

async function digests(db: string, tables: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of tables) out[t] = await tableDigest(pg, db, t);
  return out;
}

async function restore(file: string, extra: string[] = []): Promise<any> {
  const res = await runCli(['restore', '--plan', 'database', '-c', file, '--yes', '--json', ...extra], { env: env() });
  expect(res.stdout + res.stderr).not.toContain(TYK_PASSWORD);
  expect(res.stdout + res.stderr).not.toContain(pg.superPassword);
  expect(res.code, res.stdout + res.stderr).toBe(0);
  return JSON.parse(res.stdout).report;
}

beforeAll(async () => {
  [pg, ws] = await Promise.all([startPostgres(), makeWorkspace()]);
  original = await seedTykDashboard(pg, DB);
  originalIndexes = await indexList(pg, DB);
  originalDigests = await digests(DB, Object.keys(original).filter((t) => !ANALYTICS.includes(t)));
  configFile = await ws.writeConfig('tykdr.yaml', config('{ jobs: 2 }'));
  const res = await runCli(['backup', '-c', configFile, '--json'], { env: env() });
  expect(res.code, res.stdout + res.stderr).toBe(0);
  expect(res.stdout + res.stderr).not.toContain(TYK_PASSWORD);
  snapshotId = JSON.parse(res.stdout).id;
  manifest = JSON.parse(await readFile(path.join(ws.storeDir, 'snapshots', snapshotId, 'manifest.json'), 'utf8'));
});

afterAll(async () => {
  await Promise.all([pg?.stop(), ws?.cleanup()]);
});

describe('tykdr backup of a PostgreSQL component', () => {
  it('records exact row counts of every backed-up table, the excluded analytics tables, indexes and versions', () => {
    const entry = manifest.components.pg;
    expect(entry.kind).toBe('postgres');
    expect(entry.artifact.name).toBe('pg.pgdump.zst.age');
    expect(entry.artifact.format).toBe('pgdump');
    const s = entry.source;
    const expected = Object.fromEntries(Object.entries(original).filter(([t]) => !ANALYTICS.includes(t)));
    expect(s.tables).toEqual(expected);
    expect(s.total_rows).toBe(Object.values(expected).reduce((a, b) => a + b, 0));
    expect([...s.excluded_tables].sort()).toEqual(ANALYTICS);
    expect(s.server_version).toMatch(/^15\.\d+$/);
    expect(s.server_version_num).toBeGreaterThanOrEqual(150000);
    expect(s.pg_dump_version).toMatch(/^15\./);
    expect(s.database).toBe(DB);
    expect(s.user).toBe(TYK_USER);
    expect(s.database_bytes).toBeGreaterThan(0);
    expect(s.encoding).toBe('UTF8');
    expect(s.roles).toEqual([TYK_USER]);
    expect(s.indexes['public.tyk_apis'].sort()).toEqual(['tyk_apis_api_id_key', 'tyk_apis_def_gin', 'tyk_apis_org_idx', 'tyk_apis_pkey']);
    expect(s.indexes['public.tyk_analytics']).toEqual(['tyk_analytics_pkey', 'tyk_analytics_ts_idx']);
    const flat = Object.entries(s.indexes as Record<string, string[]>).flatMap(([t, names]) => names.map((i) => `${t}: ${i}`)).sort();
    expect(flat).toEqual([...originalIndexes].sort());
    const consistent = Date.parse(entry.consistent_at);
    expect(consistent).toBeGreaterThanOrEqual(Date.parse(manifest.created_at) - 1000);
    expect(consistent).toBeLessThanOrEqual(Date.parse(manifest.completed_at));
  });

  it('the object is a pg_dump custom archive under age and zstd (the break-glass path works)', async () => {
    const obj = path.join(ws.storeDir, 'snapshots', snapshotId, 'pg.pgdump.zst.age');
    const out = path.join(ws.dir, 'break-glass.dump');
    await execFileP('bash', ['-c', `set -o pipefail; age -d -i '${ws.identityFile}' '${obj}' | zstd -d -q > '${out}'`]);
    const { stdout } = await execFileP(path.join(pg.binDir, 'pg_restore'), ['-l', out]);
    expect(stdout).toContain('Format: CUSTOM');
    expect(stdout).toMatch(/TABLE DATA public tyk_apis/);
    expect(stdout).not.toMatch(/TABLE DATA public tyk_analytics /); // excluded: schema only
    expect(stdout).toMatch(/TABLE public tyk_analytics /);
  });
});

describe('tykdr restore --plan database', () => {
  it('into a fresh database (restore.target): created, counts and indexes pass, data equal, analytics schema present and empty', async () => {
    const file = await ws.writeConfig('fresh.yaml', config(`{ jobs: 2, target: { database: tyk_restored, username: ${pg.superuser}, password: "\${PG_SUPER_PASSWORD}" } }`));
    const report = await restore(file);
    expect(report.status).toBe('succeeded');
    const step = report.steps.find((s: any) => s.id === 'database');
    expect(step.status).toBe('ok');
    const checks = Object.fromEntries(step.checks.map((c: any) => [c.name, c]));
    expect(checks['database-counts'].status, checks['database-counts'].detail).toBe('passed');
    expect(checks['database-indexes'].status, checks['database-indexes'].detail).toBe('passed');
    const evidence = checks['database-counts'].evidence.tables as any[];
    expect(evidence.find((t) => t.table === 'public.tyk_apis')).toMatchObject({ expected: 120, actual: 120, status: 'ok' });
    expect(evidence.filter((t) => t.status === 'excluded').map((t) => t.table).sort()).toEqual(ANALYTICS);
    // Excluded tables' rows are reported, counted with count(*).
    expect(evidence.filter((t) => t.status === 'excluded').map((t) => t.counted_by)).toEqual(ANALYTICS.map(() => 'count'));
    // Every table the restore created and filled (two pg_restore jobs) is counted from the statistics, not scanned;
    // tableCounts below counts them all with count(*).
    const checked = evidence.filter((t) => t.expected !== null);
    expect(checked.length).toBeGreaterThan(3);
    expect(checked.map((t) => [t.table, t.counted_by])).toEqual(checked.map((t) => [t.table, 'statistics']));
    expect(checks['database-counts'].detail).toContain(`(${checked.length} of them created by this restore, counted by the server's statistics`);
    const d = step.details.pg;
    expect(d).toMatchObject({ database: 'tyk_restored', database_created: true, owners: 'kept', pg_restore_errors: 0, jobs: 2 });
    // Parallel jobs seek: staged still compressed, then made the plaintext archive pg_restore opens, its row chunks
    // merged and the data offsets of every block written in (a streamed archive has none).
    expect(d.pg_restore_input).toBe('file');
    expect(report.steps.find((s: any) => s.id === 'stage').checks[0].evidence).toMatchObject({ staged_compression: 'zstd' });
    expect(d.copy_chunks.sent).toBeLessThan(d.copy_chunks.in_archive / 10);
    expect(d.data_offsets_written).toBeGreaterThanOrEqual(Object.keys(original).length - ANALYTICS.length);

    const counts = await tableCounts(pg, 'tyk_restored');
    for (const t of ANALYTICS) expect(counts[t], t).toBe(0);
    expect(counts).toEqual({ ...original, ...Object.fromEntries(ANALYTICS.map((t) => [t, 0])) });
    expect(await indexList(pg, 'tyk_restored')).toEqual(originalIndexes);
    expect(await digests('tyk_restored', Object.keys(originalDigests))).toEqual(originalDigests);
    // Owners were kept: the Dashboard's role owns its tables again and can read them.
    const owners = await pg.query<{ o: string }>('tyk_restored', `SELECT DISTINCT tableowner AS o FROM pg_tables WHERE schemaname = 'public'`);
    expect(owners.map((o) => o.o)).toEqual([TYK_USER]);
    const view = await pg.query<{ n: string }>('tyk_restored', 'SELECT count(*)::text AS n FROM tyk_api_names');
    expect(view[0]!.n).toBe('120');
  });

  it('with one job (the default) the archive streams into pg_restore, its row chunks merged on the way; data equal', async () => {
    const file = await ws.writeConfig('stdin.yaml', config(`{ target: { database: tyk_stdin, username: ${pg.superuser}, password: "\${PG_SUPER_PASSWORD}" } }`));
    const report = await restore(file);
    const step = report.steps.find((s: any) => s.id === 'database');
    expect(step.checks.map((c: any) => [c.name, c.status])).toEqual([
      ['database-counts', 'passed'],
      ['database-indexes', 'passed'],
    ]);
    const d = step.details.pg;
    expect(d).toMatchObject({ database_created: true, pg_restore_errors: 0, jobs: 1 });
    expect(d.pg_restore_input).toMatch(/^stdin \(the staged zstd archive/);
    // One chunk per row (and per table's end marker) in the archive; far fewer sent.
    expect(d.copy_chunks.in_archive).toBeGreaterThanOrEqual(manifest.components.pg.source.total_rows);
    expect(d.copy_chunks.sent).toBeGreaterThan(0);
    expect(d.copy_chunks.sent).toBeLessThan(d.copy_chunks.in_archive / 10);
    expect(await digests('tyk_stdin', Object.keys(originalDigests))).toEqual(originalDigests);
    expect(await tableCounts(pg, 'tyk_stdin')).toEqual({ ...original, ...Object.fromEntries(ANALYTICS.map((t) => [t, 0])) });
  });

  it('round trip into the same database after tables were dropped and rows changed', async () => {
    await pg.query(DB, 'DROP TABLE tyk_apis CASCADE'); // takes the view with it
    await pg.query(DB, 'DROP TABLE tyk_policies');
    await pg.query(DB, `DELETE FROM tyk_analytics_users WHERE id > 6`);
    await pg.query(DB, `UPDATE portal_configurations SET config = '{}'`);
    await pg.query(DB, 'DROP INDEX tyk_analytics_ts_idx');
    const report = await restore(configFile);
    const step = report.steps.find((s: any) => s.id === 'database');
    expect(step.checks.map((c: any) => [c.name, c.status])).toEqual([
      ['database-counts', 'passed'],
      ['database-indexes', 'passed'],
    ]);
    expect(step.details.pg.database_created).toBeUndefined();
    // --clean dropped and created every table of the dump, the changed ones included: each is counted from its statistics.
    const evidence = step.checks[0].evidence.tables as any[];
    expect(evidence.filter((t) => t.expected !== null && t.counted_by !== 'statistics')).toEqual([]);
    expect(await digests(DB, Object.keys(originalDigests))).toEqual(originalDigests);
    expect(await indexList(pg, DB)).toEqual(originalIndexes);
    const counts = await tableCounts(pg, DB);
    // Excluded from the backup, so left as they were: their rows are not in the snapshot (postgres-excluded-kept.test.ts).
    for (const t of ANALYTICS) expect(counts[t], t).toBe(original[t]);
    expect(step.details.pg.excluded_tables_kept).toEqual(ANALYTICS);
  });

  it('database-counts fails (exit 7) when rows go missing on the way in; the evidence names the table', async () => {
    // An event trigger on the target adds a row trigger to tyk_policies as soon as pg_restore creates it, which
    // silently drops the rows whose id ends in 5 (4 of 40). The restore "succeeds"; the count check must not.
    const file = await ws.writeConfig('tampered.yaml', config(`{ target: { database: tyk_tampered, username: ${pg.superuser}, password: "\${PG_SUPER_PASSWORD}" } }`));
    await pg.query('postgres', 'CREATE DATABASE tyk_tampered');
    await pg.query('tyk_tampered', `
      CREATE FUNCTION drop_some() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id LIKE '%5' THEN RETURN NULL; END IF; RETURN NEW; END $$;
      CREATE FUNCTION add_drop_some() RETURNS event_trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'public.tyk_policies') THEN
          CREATE TRIGGER drop_some BEFORE INSERT ON public.tyk_policies FOR EACH ROW EXECUTE FUNCTION public.drop_some();
        END IF;
      END $$;
      CREATE EVENT TRIGGER add_drop_some ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION add_drop_some();`);
    const res = await runCli(['restore', '--plan', 'database', '-c', file, '--yes', '--json'], { env: env() });
    expect(res.code, res.stdout + res.stderr).toBe(7);
    const report = JSON.parse(res.stdout).report;
    const counts = report.steps.find((s: any) => s.id === 'database').checks.find((c: any) => c.name === 'database-counts');
    expect(counts.status).toBe('failed');
    expect(counts.detail).toContain('public.tyk_policies has 36 rows, snapshot 40');
    // The trigger's dropped rows were never inserted: the statistics do not prove 40, so count(*) decided.
    expect(counts.evidence.tables.find((t: any) => t.table === 'public.tyk_policies')).toMatchObject({ expected: 40, actual: 36, status: 'differs', counted_by: 'count' });
    // One job (the default): staged decrypted but still compressed, decompressed into pg_restore's stdin.
    expect(report.steps.find((s: any) => s.id === 'database').details.pg.pg_restore_input).toMatch(/^stdin \(the staged zstd archive/);
    const staged = report.steps.find((s: any) => s.id === 'stage').checks[0];
    expect(staged.status).toBe('passed');
    expect(staged.evidence).toMatchObject({ staged_compression: 'zstd', stored_bytes: manifest.components.pg.artifact.stored_bytes });
    expect(staged.evidence.staged_compressed_bytes).toBeLessThan(manifest.components.pg.artifact.plaintext_bytes);
  });
});

describe('consistency: the counts and the dump come from one snapshot while the Dashboard writes', () => {
  it('manifest counts equal the restored rows exactly, although rows were written before, during and after the snapshot', async () => {
    // Each transaction adds one policy and one developer: in any consistent snapshot, policies - developers is 33.
    const before = await tableCounts(pg, DB);
    expect(before['public.tyk_policies']! - before['public.portal_developers']!).toBe(33);
    const writerClient = await pg.client(DB, TYK_USER, TYK_PASSWORD);
    let stop = false;
    let written = 0;
    const writer = (async () => {
      while (!stop) {
        await writerClient.query('BEGIN');
        await writerClient.query(`INSERT INTO tyk_policies VALUES ('w' || $1::text, 'org1', 'w', '{}', 1, 1)`, [written]);
        await writerClient.query(`INSERT INTO portal_developers VALUES ('w' || $1::text, 'w@example.com', '{}')`, [written]);
        await writerClient.query('COMMIT');
        written++;
      }
    })();
    const res = await runCli(['backup', '-c', configFile, '--json'], { env: env() });
    stop = true;
    await writer;
    await writerClient.end();
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const id = JSON.parse(res.stdout).id;
    const m = JSON.parse(await readFile(path.join(ws.storeDir, 'snapshots', id, 'manifest.json'), 'utf8'));
    const t = m.components.pg.source.tables;
    expect(t['public.tyk_policies'] - t['public.portal_developers']).toBe(33);
    expect(t['public.tyk_policies']).toBeGreaterThan(before['public.tyk_policies']!); // writes landed before the snapshot
    const after = await tableCounts(pg, DB);
    expect(after['public.tyk_policies']).toBeGreaterThan(t['public.tyk_policies']); // and after it

    const file = await ws.writeConfig('consistent.yaml', config(`{ target: { database: tyk_consistent, username: ${pg.superuser}, password: "\${PG_SUPER_PASSWORD}" } }`));
    const report = await restore(file, ['--snapshot', id]);
    const step = report.steps.find((s: any) => s.id === 'database');
    expect(step.checks.map((c: any) => c.status)).toEqual(['passed', 'passed']);
    const restored = await tableCounts(pg, 'tyk_consistent');
    for (const [table, rows] of Object.entries(t)) expect(restored[table], table).toBe(rows);
  });
});

describe('excludeTables patterns are matched as pg_dump matches them', () => {
  it('quoted names are exact, unquoted fold to lower case, a schema part restricts, * is a wildcard', async () => {
    const c = await pg.client(DB, TYK_USER, TYK_PASSWORD);
    try {
      await c.query(`CREATE TABLE "AuditLog" (id int); INSERT INTO "AuditLog" VALUES (1), (2);
        CREATE TABLE auditlog (id int); INSERT INTO auditlog VALUES (1);
        CREATE SCHEMA other; CREATE TABLE other.tyk_policies (id int); INSERT INTO other.tyk_policies VALUES (1), (2), (3);`);
    } finally {
      await c.end();
    }
    const file = await ws.writeConfig(
      'patterns.yaml',
      config('{}').replace('    restore: {}', `    excludeTables: ['"AuditLog"', 'OTHER.TYK_POLICIES', 'portal_*', 'tyk_analytics_2026????']\n    restore: {}`),
    );
    const res = await runCli(['backup', '-c', file, '--json'], { env: env() });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const s = JSON.parse(res.stdout).manifest.components.pg.source;
    expect([...s.excluded_tables].sort()).toEqual(['other.tyk_policies', 'public.AuditLog', 'public.portal_configurations', 'public.portal_developers', 'public.tyk_analytics_20261120']);
    expect(s.tables['public.auditlog']).toBe(1);
    expect(s.tables['public.tyk_policies']).toBeGreaterThanOrEqual(40);
    expect(s.tables['public.tyk_analytics']).toBeDefined(); // not excluded by this list
    expect(s.tables['other.tyk_policies']).toBeUndefined();
  });
});
