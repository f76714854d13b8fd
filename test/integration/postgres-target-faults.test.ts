import { spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { eventually, processesUsing, runAndKill } from '../helpers/crash.js';
import { repoRoot } from '../helpers/paths.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { seedTykDashboard, startPostgres, tableCounts, TYK_PASSWORD, TYK_USER, type PostgresServer } from '../helpers/postgres.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * A TCP fault proxy in front of the PostgreSQL restore target: a connection that stops answering while
 * pg_restore writes fails the restore with exit 6 naming the endpoint and the stall
 * (components.<name>.stallTimeout), instead of waiting until the plan step's timeout; a connection reset
 * fails it with exit 6 and pg_restore's own words; once the path is healthy again, the restore runs again
 * and the database equals the snapshot. The guard is a generous bound, not a speed claim.
 */
const DB = 'tyk_analytics';
const GUARD_MS = 90_000;
/** More than the version and role checks carry on one connection; far less than the dump's COPY data. */
const MID_DUMP = 300_000;

let pg: PostgresServer;
let ws: Workspace;
let proxy: FaultProxy;
let snapshotCounts: Record<string, number>;

const env = { PG_PASSWORD: TYK_PASSWORD };

function config(name: string, stall: string, jobs = 1): Promise<string> {
  return ws.writeConfig(
    name,
    `store: { kind: local, path: ./store }
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
    stallTimeout: ${stall}
    restore: { target: { port: ${proxy.port} }, jobs: ${jobs} }
restore: { stagingDir: ./staging, reportDir: ./reports }
`,
  );
}

async function restore(file: string): Promise<CliResult> {
  const t0 = Date.now();
  const res = await runCli(['restore', '--plan', 'database', '-c', file, '--yes'], { env, cwd: ws.dir });
  expect(Date.now() - t0, `restore ran past the guard\n${res.stderr}`).toBeLessThan(GUARD_MS);
  expect(res.stdout + res.stderr).not.toContain(TYK_PASSWORD);
  return res;
}

/** Ends the sessions a killed pg_restore left behind a stalled proxy (they would hold their locks). */
async function dropStaleSessions(): Promise<void> {
  await pg.query('postgres', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tykdr' AND datname = $1`, [DB]);
}

/** What a restore left in the staging folder: nothing, once it ended (a --jobs restore stages the plaintext archive there). */
async function leftInStaging(): Promise<string[]> {
  return (await readdir(path.join(ws.dir, 'staging'))).filter((n) => n.startsWith('tykdr-restore-'));
}

beforeAll(async () => {
  [pg, ws] = await Promise.all([startPostgres(), makeWorkspace()]);
  await mkdir(path.join(ws.dir, 'staging'));
  proxy = await startFaultProxy({ port: pg.port });
  await seedTykDashboard(pg, DB);
  // A few MB of table data, so pg_restore is mid-COPY when the faults start.
  await pg.query(DB, `CREATE TABLE bulk (id int PRIMARY KEY, body text NOT NULL)`);
  await pg.query(DB, `INSERT INTO bulk SELECT i, repeat(md5(i::text), 40) FROM generate_series(1, 3000) i`);
  await pg.query(DB, `ALTER TABLE bulk OWNER TO ${TYK_USER}`);
  snapshotCounts = await tableCounts(pg, DB);
  const res = await runCli(['backup', '-c', await config('backup.yaml', '60s')], { env, cwd: ws.dir });
  expect(res.code, res.stdout + res.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  await Promise.all([pg?.stop(), ws?.cleanup()]);
});

describe('a PostgreSQL restore target that stalls or resets', () => {
  it('stops answering mid-restore: exit 6 naming the endpoint, the stall and stallTimeout', async () => {
    proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: MID_DUMP });
    const res = await restore(await config('stall.yaml', '2s'));
    proxy.setMode({ kind: 'pass' });
    await dropStaleSessions();
    expect(res.code, res.stdout + res.stderr).toBe(6);
    expect(proxy.stats.stalls).toBeGreaterThan(0);
    expect(res.stdout + res.stderr).toMatch(
      new RegExp(
        `components\\.pg: pg_restore into PostgreSQL at 127\\.0\\.0\\.1:${proxy.port}, database "${DB}", user "${TYK_USER}" stalled: no progress for \\d+(\\.\\d)?s ` +
          `\\(components\\.pg\\.stallTimeout is 2s\\) and the server was not working for it`,
      ),
    );
  });

  it('a host that stops answering on every connection mid-restore: exit 6 with the stall, and the process ends (its own connections are dropped, not waited on)', async () => {
    const cfg = await config('freeze.yaml', '2s');
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'restore', '--plan', 'database', '-c', cfg, '--yes'], {
      cwd: ws.dir,
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // The proxy freezes every connection in the same data event that carries the restore past MID_DUMP: a
    // test polling the byte count could see a short restore finish before its freeze went out.
    const freezesBefore = proxy.stats.freezes;
    proxy.freezeAfter(MID_DUMP);
    try {
      const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), GUARD_MS))]);
      expect(proxy.stats.freezes, `the restore never carried ${MID_DUMP} bytes through the proxy\n${out}`).toBe(freezesBefore + 1);
      expect(code, `still running ${GUARD_MS} ms after the host stopped answering\n${out}`).toBe(6);
    } finally {
      proxy.freezeAfter(Infinity);
      child.kill('SIGKILL');
      proxy.setMode({ kind: 'pass' });
      await dropStaleSessions();
    }
    expect(out).toMatch(new RegExp(`pg_restore into PostgreSQL at 127\\.0\\.0\\.1:${proxy.port}, database "${DB}", user "${TYK_USER}" stalled: no progress for`));
  });

  it('resets the connection mid-restore: exit 6 with pg_restore\'s words; a rerun on a healthy path restores the snapshot', async () => {
    proxy.setMode({ kind: 'reset', afterBytes: MID_DUMP, times: 1 });
    const res = await restore(await config('reset.yaml', '10s'));
    proxy.setMode({ kind: 'pass' });
    await dropStaleSessions();
    expect(res.code, res.stdout + res.stderr).toBe(6);
    expect(proxy.stats.resets).toBeGreaterThan(0);
    expect(res.stdout + res.stderr).toMatch(new RegExp(`components\\.pg: pg_restore into PostgreSQL at 127\\.0\\.0\\.1:${proxy.port}, database "${DB}", user "${TYK_USER}" exited with code 1`));
    expect(res.stdout + res.stderr).toMatch(/server closed the connection unexpectedly|connection to server .*lost|could not send data|Connection reset/i);
    const again = await restore(await config('reset.yaml', '10s'));
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(await tableCounts(pg, DB)).toEqual(snapshotCounts);
  });

  // --jobs 2: pg_restore reads a plaintext archive file and forks workers, each with its own connection; the stall watch
  // reads the I/O of the whole process tree, so a frozen path fails the same way, and the plaintext does not stay behind.
  it('--jobs 2, a host that stops answering on every connection mid-restore: exit 6 with the stall, and no staged plaintext is left', async () => {
    const freezesBefore = proxy.stats.freezes;
    proxy.freezeAfter(MID_DUMP);
    let res: CliResult;
    try {
      res = await restore(await config('freeze-jobs.yaml', '2s', 2));
    } finally {
      proxy.freezeAfter(Infinity);
      proxy.setMode({ kind: 'pass' });
      await dropStaleSessions();
    }
    expect(proxy.stats.freezes, `the restore never carried ${MID_DUMP} bytes through the proxy\n${res.stdout}${res.stderr}`).toBe(freezesBefore + 1);
    expect(res.code, res.stdout + res.stderr).toBe(6);
    expect(res.stdout + res.stderr).toMatch(new RegExp(`pg_restore into PostgreSQL at 127\\.0\\.0\\.1:${proxy.port}, database "${DB}", user "${TYK_USER}" stalled: no progress for`));
    expect(await leftInStaging()).toEqual([]);
  });

  it('--jobs 2, a connection reset mid-restore: exit 6 with pg_restore\'s words; a rerun with --jobs 2 restores the snapshot', async () => {
    proxy.setMode({ kind: 'reset', afterBytes: MID_DUMP, times: 1 });
    const res = await restore(await config('reset-jobs.yaml', '10s', 2));
    proxy.setMode({ kind: 'pass' });
    await dropStaleSessions();
    expect(res.code, res.stdout + res.stderr).toBe(6);
    expect(proxy.stats.resets).toBeGreaterThan(0);
    expect(res.stdout + res.stderr).toMatch(new RegExp(`pg_restore into PostgreSQL at 127\\.0\\.0\\.1:${proxy.port}, database "${DB}", user "${TYK_USER}" exited with code 1`));
    expect(await leftInStaging()).toEqual([]);
    const again = await restore(await config('reset-jobs.yaml', '10s', 2));
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout + again.stderr).not.toMatch(/stalled/);
    expect(await tableCounts(pg, DB)).toEqual(snapshotCounts);
    expect(await leftInStaging()).toEqual([]);
  });

  it('--jobs 2, kill -9 of tykdr while every connection is frozen: pg_restore and its workers end with it (the watchdog stops the group)', async () => {
    const freezesBefore = proxy.stats.freezes;
    proxy.freezeAfter(MID_DUMP);
    const staging = path.join(ws.dir, 'staging');
    try {
      const run = await runAndKill(['restore', '--plan', 'database', '--yes', '-c', await config('kill-jobs.yaml', '60s', 2)], { cwd: ws.dir, env }, {
        probe: async () => proxy.stats.freezes > freezesBefore,
      }, 200);
      expect(run.killed, run.stdout + run.stderr).toBe(true);
      // Frozen, the workers would wait on their connections for as long as the path stays frozen.
      await eventually(`no pg_restore reading ${staging} after kill -9 of tykdr`, async () => (await processesUsing(staging)).length === 0, 15_000);
    } finally {
      proxy.freezeAfter(Infinity);
      proxy.setMode({ kind: 'pass' });
      await dropStaleSessions();
    }
  });
});
