import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { seedTykDashboard, startPostgres, tableCounts, TYK_PASSWORD, TYK_USER, type PostgresServer } from '../helpers/postgres.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const DB = 'tyk_analytics';
const READER_PASSWORD = 'reader-pw-Zz9-0003';
let source: PostgresServer;
let standby: PostgresServer;
let ws: Workspace;
let original: Record<string, number>;
let snapshotId: string;
let plainSnapshotId: string;
let manifest: any;

/** Backs up as the source's superuser; restores into `standby` (another cluster) as its superuser. */
const config = (globals: boolean) => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  pg:
    kind: postgres
    port: ${source.port}
    database: ${DB}
    username: ${source.superuser}
    password: \${SRC_PASSWORD}
    binDir: ${source.binDir}
    globals: ${globals}
    restore:
      target: { port: ${standby.port}, password: "\${STANDBY_PASSWORD}" }
restore: { reportDir: ./reports }
`;

const env = () => ({ SRC_PASSWORD: source.superPassword, STANDBY_PASSWORD: standby.superPassword });

async function canLogin(server: PostgresServer, user: string, password: string, database = 'postgres'): Promise<boolean> {
  const c = new pg.Client({ host: server.host, port: server.port, user, password, database, ssl: false });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  // Both clusters' superusers are "postgres", with different passwords.
  [source, standby, ws] = await Promise.all([startPostgres(), startPostgres({ superPassword: 'standby-super-pw-0004' }), makeWorkspace()]);
  original = await seedTykDashboard(source, DB);
  await source.query('postgres', `CREATE ROLE tyk_reader LOGIN PASSWORD '${READER_PASSWORD}'`);
  await source.query('postgres', `CREATE ROLE "Ops Team" NOLOGIN`);
  await source.query(DB, 'GRANT SELECT ON tyk_apis, tyk_policies TO tyk_reader');

  const plain = await ws.writeConfig('plain.yaml', config(false));
  let res = await runCli(['backup', '-c', plain, '--json'], { env: env() });
  expect(res.code, res.stdout + res.stderr).toBe(0);
  plainSnapshotId = JSON.parse(res.stdout).id;

  const file = await ws.writeConfig('tykdr.yaml', config(true));
  res = await runCli(['backup', '-c', file, '--json'], { env: env() });
  expect(res.code, res.stdout + res.stderr).toBe(0);
  expect(res.stdout + res.stderr).not.toContain(source.superPassword);
  snapshotId = JSON.parse(res.stdout).id;
  manifest = JSON.parse(await readFile(path.join(ws.storeDir, 'snapshots', snapshotId, 'manifest.json'), 'utf8'));
});

afterAll(async () => {
  await Promise.all([source?.stop(), standby?.stop(), ws?.cleanup()]);
});

describe('PostgreSQL globals (roles) with globals: true', () => {
  it('backs up roles as a second artifact "<name>-globals", listed before the database', () => {
    expect(Object.keys(manifest.components)).toEqual(['pg-globals', 'pg']);
    const g = manifest.components['pg-globals'];
    expect(g).toMatchObject({ kind: 'postgres-globals', config_component: 'pg', tier: 'important' });
    expect(g.artifact.name).toBe('pg-globals.sql.zst.age');
    expect([...g.source.roles].sort()).toEqual(['Ops Team', 'postgres', TYK_USER, 'tyk_reader']);
    expect(g.source.role_count).toBe(4);
    expect(g.source.pg_dumpall_version).toMatch(/^15\./);
    expect(JSON.stringify(manifest)).not.toContain('SCRAM-SHA-256');
    expect(manifest.components.pg.source.roles).toEqual([TYK_USER, 'tyk_reader']);
  });

  it('without the globals, a restore into another cluster skips owners and grants (roles missing) and warns', async () => {
    const file = await ws.writeConfig('plain.yaml', config(false));
    const res = await runCli(['restore', '--plan', 'database', '-c', file, '--yes', '--json', '--snapshot', plainSnapshotId], { env: env() });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const step = JSON.parse(res.stdout).report.steps.find((s: any) => s.id === 'database');
    expect(step.details.pg).toMatchObject({ owners: 'skipped', missing_roles: [TYK_USER, 'tyk_reader'], database_created: true });
    expect(step.checks.map((c: any) => c.status)).toEqual(['passed', 'passed']);
    const owners = await standby.query<{ o: string }>(DB, `SELECT DISTINCT tableowner AS o FROM pg_tables WHERE schemaname = 'public'`);
    expect(owners.map((o) => o.o)).toEqual(['postgres']);
    await standby.query('postgres', `DROP DATABASE ${DB}`);
  });

  it('restores roles first (passwords included), then the database with its owners and grants', async () => {
    const file = await ws.writeConfig('tykdr.yaml', config(true));
    const res = await runCli(['restore', '--plan', 'database', '-c', file, '--yes', '--json', '--snapshot', snapshotId], { env: env() });
    expect(res.stdout + res.stderr).not.toContain(standby.superPassword);
    expect(res.stdout + res.stderr).not.toContain('SCRAM-SHA-256');
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const step = JSON.parse(res.stdout).report.steps.find((s: any) => s.id === 'database');
    const g = step.details['pg-globals'];
    expect(g).toMatchObject({ roles_in_snapshot: 4, roles_created: 3, roles_already_present: [], statements_failed: 0, own_role_left_unchanged: 'postgres' });
    expect(step.details.pg).toMatchObject({ owners: 'kept', database_created: true, pg_restore_errors: 0 });
    expect(step.checks.map((c: any) => [c.name, c.status])).toEqual([
      ['database-counts', 'passed'], // the roles
      ['database-counts', 'passed'],
      ['database-indexes', 'passed'],
    ]);
    expect(step.checks[0].detail).toBe('pg-globals: all 4 roles of the snapshot exist');

    // The roles log in with their original passwords; the standby's superuser kept its own.
    expect(await canLogin(standby, TYK_USER, TYK_PASSWORD, DB)).toBe(true);
    expect(await canLogin(standby, 'tyk_reader', READER_PASSWORD, DB)).toBe(true);
    expect(await canLogin(standby, 'postgres', standby.superPassword)).toBe(true);
    const owners = await standby.query<{ o: string }>(DB, `SELECT DISTINCT tableowner AS o FROM pg_tables WHERE schemaname = 'public'`);
    expect(owners.map((o) => o.o)).toEqual([TYK_USER]);
    const reader = new pg.Client({ host: standby.host, port: standby.port, user: 'tyk_reader', password: READER_PASSWORD, database: DB, ssl: false });
    await reader.connect();
    try {
      expect((await reader.query('SELECT count(*)::int AS n FROM tyk_apis')).rows[0].n).toBe(original['public.tyk_apis']);
      await expect(reader.query('SELECT count(*) FROM tyk_analytics_users')).rejects.toThrow(/permission denied/);
    } finally {
      await reader.end();
    }
    const counts = await tableCounts(standby, DB);
    expect(counts['public.tyk_policies']).toBe(original['public.tyk_policies']);
  });

  it('restoring the globals again finds the roles present and converges (no failure)', async () => {
    await standby.query('postgres', `ALTER ROLE tyk_reader PASSWORD 'changed-on-standby'`);
    const file = await ws.writeConfig('tykdr.yaml', config(true));
    const res = await runCli(['restore', '--plan', 'database', '-c', file, '--yes', '--json', '--snapshot', snapshotId], { env: env() });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const step = JSON.parse(res.stdout).report.steps.find((s: any) => s.id === 'database');
    const g = step.details['pg-globals'];
    expect([...g.roles_already_present].sort()).toEqual(['Ops Team', TYK_USER, 'tyk_reader']);
    expect(g.roles_created).toBe(0);
    expect(g.warnings.join(' ')).toMatch(/3 roles already existed; their attributes and passwords were set to the snapshot's/);
    expect(await canLogin(standby, 'tyk_reader', READER_PASSWORD, DB)).toBe(true);
    expect(step.details.pg.database_created).toBeUndefined();
  });
});
