import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { seedTykDashboard, startFerret, type FerretServer } from '../helpers/mongo.js';
import { freePort } from '../helpers/net.js';
import { toolsBin } from '../helpers/paths.js';
import { waitFor } from '../helpers/wait.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

let ferret: FerretServer;
let ws: Workspace;
let fakes: string;
/** A whole archive of the seeded database, made by the real mongodump. */
let archive: string;

interface Opts {
  binDir?: string;
  uri?: string;
  restoreUri?: string;
}

const config = (o: Opts = {}) => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  dashboard-db:
    kind: mongo
    uri: "${o.uri ?? `mongodb://${ferret.username}:\${MONGO_PASSWORD}@127.0.0.1:${ferret.port}/`}"
    database: tyk_analytics
    binDir: ${o.binDir ?? toolsBin}
    connectTimeout: 2s
    restore:
      database: tyk_restored
${o.restoreUri ? `      uri: "${o.restoreUri}"\n` : ''}restore: { reportDir: ./reports }
`;

async function backup(o: Opts): Promise<CliResult> {
  const file = await ws.writeConfig(`fault-${Math.random().toString(36).slice(2)}.yaml`, config(o));
  return runCli(['backup', '-c', file], { env: { MONGO_PASSWORD: ferret.password } });
}

/** A fake tool in its own folder: `body` is the shell script after #!/bin/sh. */
async function fakeTool(name: string, body: string): Promise<string> {
  const dir = await mkdtemp(path.join(fakes, 'bin-'));
  await writeFile(path.join(dir, name), `#!/bin/sh\n${body}\n`);
  await chmod(path.join(dir, name), 0o755);
  return dir;
}

/** Snapshot folders that hold a manifest (complete snapshots), and every object left in the store. */
async function storeState(): Promise<{ complete: string[]; objects: number }> {
  const snaps = await readdir(path.join(ws.storeDir, 'snapshots')).catch(() => [] as string[]);
  const complete: string[] = [];
  let objects = 0;
  for (const s of snaps) {
    const names = await readdir(path.join(ws.storeDir, 'snapshots', s)).catch(() => [] as string[]);
    if (names.includes('manifest.json')) complete.push(s);
    objects += names.length;
  }
  return { complete, objects };
}

const noSecret = (res: CliResult) => {
  expect(res.stdout + res.stderr).not.toContain(ferret.password);
};

beforeAll(async () => {
  [ferret, ws] = await Promise.all([startFerret(), makeWorkspace()]);
  const client = await ferret.client();
  await seedTykDashboard(client.db('tyk_analytics'), { apis: 300, analytics: 20 });
  fakes = await mkdtemp(path.join(tmpdir(), 'tykdr-mongo-fakes-'));
  archive = path.join(fakes, 'whole.archive');
  const cfg = path.join(fakes, 'real.yaml');
  await writeFile(cfg, `uri: "${ferret.uri}"\n`, { mode: 0o600 });
  execFileSync(path.join(toolsBin, 'mongodump'), [`--config=${cfg}`, '--db=tyk_analytics', '--archive=' + archive, '--numParallelCollections=1'], { stdio: 'ignore' });
});

afterAll(async () => {
  await Promise.all([ferret?.stop(), ws?.cleanup(), fakes && rm(fakes, { recursive: true, force: true })]);
});

describe('mongo backup faults: never a complete snapshot', () => {
  it('mongodump missing from binDir: bad input (exit 2) with install advice, nothing written', async () => {
    const empty = path.join(fakes, 'empty');
    await mkdir(empty, { recursive: true });
    const res = await backup({ binDir: empty });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain(`mongodump not found in ${empty}`);
    expect(res.stderr).toMatch(/MongoDB Database Tools/);
    expect(res.stderr).toContain('scripts/tools.sh');
    expect((await storeState()).complete).toEqual([]);
    noSecret(res);
  });

  it('wrong password: source unreachable (exit 3) naming host and user, never the password', async () => {
    const res = await backup({ uri: `mongodb://admin:not-the-${ferret.password}@127.0.0.1:${ferret.port}/` });
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toContain(`MongoDB at 127.0.0.1:${ferret.port} refused the credentials of user "admin"`);
    expect(res.stderr).toContain('components.dashboard-db.uri');
    expect(res.stderr).not.toContain(`not-the-${ferret.password}`);
    expect((await storeState()).complete).toEqual([]);
  });

  it('unreachable host: source unreachable (exit 3) naming the address', async () => {
    const port = await freePort();
    const res = await backup({ uri: `mongodb://admin:\${MONGO_PASSWORD}@127.0.0.1:${port}/` });
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toContain(`cannot reach MongoDB at 127.0.0.1:${port}`);
    expect(res.stderr).toContain('ECONNREFUSED');
    noSecret(res);
  });

  it('mongodump exits non-zero after part of an archive: exit 3 with its message, secrets scrubbed, objects removed', async () => {
    // Echoes its --config file (the URI with the password) on stderr, as a careless tool might.
    const dir = await fakeTool('mongodump', `head -c 3000 "${archive}"\necho "Failed: can't dump: $(cat /dev/fd/3)" >&2\nexit 1`);
    const res = await backup({ binDir: dir });
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toContain('mongodump exited with code 1');
    expect(res.stderr).toContain("Failed: can't dump: uri:");
    noSecret(res);
    expect(await storeState()).toEqual({ complete: [], objects: 0 });
  });

  it('mongodump prints nothing and exits 0: integrity error (exit 5)', async () => {
    const res = await backup({ binDir: await fakeTool('mongodump', 'exit 0') });
    expect(res.code, res.stderr).toBe(5);
    expect(res.stderr).toContain('it is empty (the dump produced no output)');
    expect((await storeState()).complete).toEqual([]);
  });

  it('a truncated archive with exit 0: integrity error (exit 5)', async () => {
    const size = (await readFile(archive)).length;
    const res = await backup({ binDir: await fakeTool('mongodump', `head -c ${Math.floor(size * 0.6)} "${archive}"`) });
    expect(res.code, res.stderr).toBe(5);
    expect(res.stderr).toMatch(/mongodump archive is not whole: .*truncated/);
    expect((await storeState()).complete).toEqual([]);
  });

  it('a corrupted document (CRC-64 mismatch): integrity error (exit 5)', async () => {
    const bytes = await readFile(archive);
    // Flip a bit inside the last tyk_apis document (the prelude's metadata names the field too).
    const at = bytes.lastIndexOf(Buffer.from('api_definition')) + 24;
    bytes[at] = bytes[at]! ^ 0x20;
    const bad = path.join(fakes, 'bad.archive');
    await writeFile(bad, bytes);
    const res = await backup({ binDir: await fakeTool('mongodump', `cat "${bad}"`) });
    expect(res.code, res.stderr).toBe(5);
    expect(res.stderr).toMatch(/the CRC-64 of tyk_analytics\.\w+'s \d+ documents is [0-9a-f]{16}, but the archive says/);
  });

  it('a whole archive but a "Failed:" line on stderr: never complete', async () => {
    const res = await backup({ binDir: await fakeTool('mongodump', `cat "${archive}"\necho "2026-11-21T10:00:00.000+0000	Failed: error writing data: lost connection" >&2`) });
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toContain('mongodump reported a failure');
    expect(res.stderr).toContain('Failed: error writing data: lost connection');
    expect((await storeState()).complete).toEqual([]);
  });

  it('SIGINT during the dump: exit 130, mongodump is stopped, no manifest', async () => {
    const pidFile = path.join(fakes, 'dump.pid');
    const dir = await fakeTool('mongodump', `echo $$ > "${pidFile}"\nhead -c 3000 "${archive}"\nexec sleep 60`);
    const file = await ws.writeConfig('sigint.yaml', config({ binDir: dir }));
    await rm(pidFile, { force: true });
    // The fake has written its part of the archive once it has exec'd `sleep` (its pid stays the same).
    const dumping = async () => {
      const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
      return pid > 0 && (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'sleep';
    };
    let waiting: Promise<void> | undefined;
    const res = await runCli(['backup', '-c', file], {
      env: { MONGO_PASSWORD: ferret.password },
      onStderr: (_chunk, kill) => {
        if (waiting) return;
        waiting = waitFor(dumping, { timeoutMs: 15_000, intervalMs: 20, what: 'the fake mongodump to write its part of the archive' }).then(
          () => kill('SIGINT'),
          (err: unknown) => {
            kill('SIGKILL'); // not left running until its `sleep 60` ends
            throw err;
          },
        );
        waiting.catch(() => undefined); // awaited below
      },
    });
    expect(waiting, 'the backup wrote nothing to stderr').toBeDefined();
    await waiting;
    expect(res.code, res.stderr).toBe(130);
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
    expect((await storeState()).complete).toEqual([]);
  });
});

describe('mongo restore faults', () => {
  let file: string;

  beforeAll(async () => {
    file = await ws.writeConfig('restore-src.yaml', config());
    const res = await runCli(['backup', '-c', file], { env: { MONGO_PASSWORD: ferret.password } });
    expect(res.code, res.stderr).toBe(0);
  });

  const restore = async (o: Opts) => {
    const res = await runCli(['restore', '--plan', 'database', '-c', await ws.writeConfig(`r-${Math.random().toString(36).slice(2)}.yaml`, config(o)), '--yes', '--json'], {
      env: { MONGO_PASSWORD: ferret.password },
    });
    const out = res.stdout ? JSON.parse(res.stdout) : undefined;
    // A target that cannot be reached fails the preflight (before anything is staged): an error, no report.
    const reason: string = out?.report?.steps.find((s: any) => s.id === 'database')?.reason ?? out?.error?.message ?? res.stderr;
    return { ...res, reason };
  };

  it('mongorestore missing: bad input (exit 2) with install advice', async () => {
    const empty = path.join(fakes, 'empty-restore');
    await mkdir(empty, { recursive: true });
    const res = await restore({ binDir: empty });
    expect(res.code, res.stdout + res.stderr).toBe(2);
    expect(res.reason).toContain(`mongorestore not found in ${empty}`);
  });

  it('target unreachable: target error (exit 6), no password in the report', async () => {
    const port = await freePort();
    const res = await restore({ restoreUri: `mongodb://admin:\${MONGO_PASSWORD}@127.0.0.1:${port}/` });
    expect(res.code, res.stdout + res.stderr).toBe(6);
    expect(res.reason).toContain(`cannot reach MongoDB at 127.0.0.1:${port}`);
    noSecret(res);
  });

  it('target refuses the credentials: target error (exit 6)', async () => {
    const res = await restore({ restoreUri: `mongodb://admin:wrong-one@127.0.0.1:${ferret.port}/` });
    expect(res.code, res.stdout + res.stderr).toBe(6);
    expect(res.reason).toContain('refused the credentials of user "admin"');
    expect(res.stdout).not.toContain('wrong-one');
  });

  it('mongorestore failed by FerretDB\'s stale SQLite schema ("index ... already exists"): run again, and the restore succeeds with a warning; any other failure is not retried', async () => {
    // A stand-in mongorestore that fails its first run as FerretDB does when a pooled SQLite connection has a stale
    // schema (reproduced for createIndexes in ferret-stale-schema.test.ts; not on demand for mongorestore's create),
    // then runs the real one.
    const marker = path.join(fakes, `stale-${Math.random().toString(36).slice(2)}`);
    const dir = await fakeTool(
      'mongorestore',
      `if [ ! -e "${marker}" ]; then
  : > "${marker}"
  echo "2026-12-07T02:00:00.000+0000	Failed: tyk_analytics.tyk_apis: error creating collection tyk_analytics.tyk_apis: error running create command: (InternalError) [pool.go:330 sqlite.(*Pool).CreateCollection] SQL logic error: index tyk_apis_2f8a4c1e__id_ already exists (1)" >&2
  exit 1
fi
exec "${path.join(toolsBin, 'mongorestore')}" "$@"`,
    );
    const res = await restore({ binDir: dir });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const step = JSON.parse(res.stdout).report.steps.find((s: any) => s.id === 'database');
    const details = Object.values(step.details)[0] as { warnings: string[] };
    expect(details.warnings.join('\n')).toMatch(/mongorestore met FerretDB's stale SQLite schema .*run again \(attempt 2\)/);
    noSecret(res);
    // Another failure is reported at once, not retried.
    const calls = path.join(fakes, `calls-${Math.random().toString(36).slice(2)}`);
    const other = await restore({ binDir: await fakeTool('mongorestore', `echo x >> "${calls}"\necho "Failed: error connecting to db server: no reachable servers" >&2\nexit 1`) });
    expect(other.code, other.stdout + other.stderr).toBe(6);
    expect((await readFile(calls, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('a target path that freezes mid-restore: exit 6 with mongorestore\'s words well within a minute (the driver gives up on the dead connection); a rerun on a healthy path succeeds', async () => {
    const proxy = await startFaultProxy({ port: ferret.port });
    try {
      const restoreUri = `mongodb://${ferret.username}:\${MONGO_PASSWORD}@127.0.0.1:${proxy.port}/`;
      // Past tykdr's own preflight and listCollections (a few KB), inside mongorestore's inserts (the archive holds 300 APIs).
      proxy.freezeAfter(40_000);
      const t0 = Date.now();
      const res = await restore({ restoreUri });
      const took = Date.now() - t0;
      expect(proxy.stats.freezes, `the restore never carried 40,000 bytes through the proxy\n${res.stdout}${res.stderr}`).toBe(1);
      expect(res.code, res.stdout + res.stderr).toBe(6);
      expect(res.reason).toMatch(/mongorestore exited with code 1 restoring tyk_analytics into database "tyk_restored"/);
      expect(took, res.reason).toBeLessThan(60_000);
      noSecret(res);
      // A freeze leaves the proxy blackholing new connections until it passes again.
      proxy.setMode({ kind: 'pass' });
      const again = await restore({ restoreUri });
      expect(again.code, again.stdout + again.stderr).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('mongorestore failing: target error (exit 6) with its message', async () => {
    const dir = await fakeTool('mongorestore', 'echo "2026-11-21T10:00:00.000+0000	Failed: tyk_restored.tyk_apis: error restoring: disk full" >&2\nexit 1');
    const res = await restore({ binDir: dir });
    expect(res.code, res.stdout + res.stderr).toBe(6);
    expect(res.reason).toContain('mongorestore exited with code 1');
    expect(res.reason).toContain('Failed: tyk_restored.tyk_apis: error restoring: disk full');
  });
});
