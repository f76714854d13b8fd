import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { listSnapshots } from '../../src/core/catalog.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeConfigTree, seedTykRedis } from '../helpers/tyk-fixture.js';
import { waitFor } from '../helpers/wait.js';
import { makeWorkspace, writingObjectOf, type Workspace } from '../helpers/workspace.js';

/**
 * `tykdr daemon` as a process, against a real redis-server, a files component and a local store.
 * Schedules are one second; the leader lock TTL is 2 s.
 */

const REDIS_PASSWORD = 'daemon-redis-pw-never-logged';
const TOKEN = 'daemon-health-token-never-logged';
const LOCK_KEY = 'tykdr:daemon:leader';

type Line = Record<string, unknown> & { msg: string; level: string };

interface DaemonProcess {
  child: ChildProcess;
  lines: Line[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(pred: (l: Line) => boolean, timeoutMs?: number, what?: string): Promise<Line>;
  count(pred: (l: Line) => boolean): number;
}

const children = new Set<ChildProcess>();
process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));

function startDaemon(config: string, args: string[] = []): DaemonProcess {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'daemon', '--config', config, ...args], {
    cwd: path.dirname(config),
    env: { ...process.env, NO_COLOR: '1', TEST_REDIS_PASSWORD: REDIS_PASSWORD, TEST_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: Line[] = [];
  const waiters: Array<{ pred: (l: Line) => boolean; resolve: (l: Line) => void }> = [];
  let buf = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!text.trim()) continue;
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        throw new Error(`stdout line is not JSON: ${text}`);
      }
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    count: (pred) => lines.filter(pred).length,
    waitFor: (pred, timeoutMs = 15_000, what = 'a log line') => {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise<Line>((resolve, reject) => {
        const t = setTimeout(() => {
          waiters.splice(waiters.findIndex((w) => w.resolve === done), 1);
          reject(new Error(`no ${what} within ${timeoutMs} ms; log:\n${lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${err}`));
        }, timeoutMs);
        const done = (l: Line) => {
          clearTimeout(t);
          resolve(l);
        };
        waiters.push({ pred, resolve: done });
        void exited.then(() => {
          if (waiters.some((w) => w.resolve === done)) {
            clearTimeout(t);
            reject(new Error(`daemon exited before ${what}; log:\n${lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${err}`));
          }
        });
      });
    },
  };
}

/** A failed test must not leave its daemons running (they would hold the lock for the next one). */
afterEach(async () => {
  const left = [...children];
  for (const c of left) c.kill('SIGKILL');
  await Promise.all(left.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once('close', r)))));
});

async function get(port: number, p: string, token: string | undefined = TOKEN) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, text: await res.text() };
}

/** Checks the Prometheus text format line by line; returns the samples. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  const helped = new Set<string>();
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.trimEnd().split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line))) helped.add(m[1]!);
    else if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line))) typed.add(m[1]!);
    else {
      m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
      expect(m, `not a sample line: ${line}`).not.toBeNull();
      expect(typed.has(m![1]!) && helped.has(m![1]!), `no HELP/TYPE before ${line}`).toBe(true);
      samples.set(`${m![1]}${m![2] ?? ''}`, Number(m![3]));
    }
  }
  return samples;
}

async function storeSnapshots(storeDir: string) {
  return listSnapshots(new LocalStore(storeDir));
}

let ws: Workspace;
let tree: { root: string };

beforeAll(async () => {
  [ws, tree] = await Promise.all([makeWorkspace(), makeConfigTree()]);
});

afterAll(async () => {
  await Promise.all([ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
});

interface ConfigOptions {
  redisPort: number;
  healthPort: number;
  store: string;
  extra?: string;
  schedule?: string;
}

function yaml(o: ConfigOptions): string {
  return `
store: { kind: local, path: ${o.store} }
encryption: { recipients: [${ws.recipient}] }
schedule: { backups: { '*': '${o.schedule ?? '* * * * * *'}' } }
health: { listen: "127.0.0.1:${o.healthPort}", token: "\${TEST_TOKEN}" }
leader: { ttl: 2s }
components:
  redis:
    kind: redis
    host: 127.0.0.1
    port: ${o.redisPort}
    password: \${TEST_REDIS_PASSWORD}
  config:
    kind: files
    roots: [${tree.root}]
    include: [tyk.conf, "apps/**", "policies/**"]
${o.extra ?? ''}`;
}

const started = (job?: string) => (l: Line) => l.msg === 'job started' && (job === undefined || l.job === job);
const BACKUP = 'backup:redis,config';

describe('tykdr daemon: scheduled backups, overlap, clean stop', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis({ password: REDIS_PASSWORD });
    await seedTykRedis(redis.port, { password: REDIS_PASSWORD, sessions: 3000 });
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    await redis.cli('DEL', LOCK_KEY);
  });

  it('backs up every second while leader, serves /hello and /metrics, and stops cleanly on SIGTERM', async () => {
    const healthPort = await freePort();
    const store = path.join(ws.dir, 'store-a');
    const config = await ws.writeConfig('a.yaml', yaml({ redisPort: redis.port, healthPort, store }));
    const d = startDaemon(config, ['--job', 'backup', '--instance-id', 'daemon-a']);
    await d.waitFor((l) => l.msg === 'became leader', 30_000, 'leadership');
    await d.waitFor(() => d.count((l) => l.msg === 'backup complete') >= 2, 15_000, 'two backups');

    const snaps = await storeSnapshots(store);
    expect(snaps.filter((s) => s.complete).length).toBeGreaterThanOrEqual(2);
    // The newest complete one: a scheduled run may already be writing the next (listed, without a manifest yet).
    expect(snaps.find((s) => s.complete)!.components.sort()).toEqual(['config', 'redis']);
    const done = d.lines.find((l) => l.msg === 'backup complete')!;
    expect(done).toMatchObject({ level: 'info', job: BACKUP, components: ['redis', 'config'] });
    expect(typeof done.snapshot).toBe('string');
    expect(typeof done.duration_ms).toBe('number');
    expect(await redis.cli('GET', LOCK_KEY)).toMatch(/^daemon-a [0-9a-f]{8}$/);

    const hello = await get(healthPort, '/hello');
    expect(hello.status).toBe(200);
    const body = JSON.parse(hello.text);
    expect(body.status).toBe('pass');
    expect(body.description).toBe('tykdr daemon daemon-a (leader)');
    expect(body.details.redis[0]).toMatchObject({ status: 'pass', componentType: 'datastore', observedUnit: 's' });
    expect(body.details.redis[0].observedValue).toBeLessThan(5);
    expect((await get(healthPort, '/hello', '')).status).toBe(401);

    const metrics = await get(healthPort, '/metrics');
    expect(metrics.status).toBe(200);
    const m = parseMetrics(metrics.text);
    expect(m.get('tykdr_leader{instance="daemon-a"}')).toBe(1);
    expect(m.get('tykdr_backup_last_bytes{component="redis"}')).toBeGreaterThan(1000);
    expect(m.get('tykdr_backup_last_success_timestamp_seconds{component="config"}')).toBeGreaterThan(Date.now() / 1000 - 10);
    expect(m.get('tykdr_backup_failures_total{component="redis"}')).toBe(0);
    expect(m.get(`tykdr_job_runs_total{job="${BACKUP}",result="success"}`)).toBeGreaterThanOrEqual(2);

    d.child.kill('SIGTERM');
    const exit = await d.exited;
    expect(exit.code, d.stderr()).toBe(0);
    expect(d.lines.at(-1)).toMatchObject({ msg: 'daemon stopped', exit_code: 0 });
    expect(d.lines.some((l) => l.msg === 'released the leader lock')).toBe(true);
    expect(await redis.cli('EXISTS', LOCK_KEY)).toBe('0');
    expect((await storeSnapshots(store)).every((s) => s.complete)).toBe(true);
    const all = JSON.stringify(d.lines) + d.stderr();
    expect(all).not.toContain(REDIS_PASSWORD);
    expect(all).not.toContain(TOKEN);
  });

  it('never overlaps a slow backup (the skip is counted), and SIGTERM after the grace aborts it: exit 130, nothing incomplete left', async () => {
    // 3000+ keys at 1 ms each: every RDB takes ~3 s, with a slot every second.
    await redis.cli('CONFIG', 'SET', 'rdb-key-save-delay', '1000');
    try {
      const healthPort = await freePort();
      const store = path.join(ws.dir, 'store-b');
      const config = await ws.writeConfig('b.yaml', yaml({ redisPort: redis.port, healthPort, store }));
      const d = startDaemon(config, ['--job', 'backup', '--grace', '1', '--instance-id', 'daemon-b']);
      await d.waitFor((l) => l.msg === 'skipped: the previous run is still going', 15_000, 'an overlap');
      await d.waitFor((l) => l.msg === 'backup complete', 20_000, 'a slow backup to finish');
      await d.waitFor(() => d.count((l) => l.msg === 'skipped: the previous run is still going') >= 3, 10_000, 'more overlaps');
      // Runs of the job strictly alternate: started, finished, started, finished...
      let open = 0;
      for (const l of d.lines) {
        if (l.job !== BACKUP) continue;
        if (l.msg === 'job started') open++;
        if (l.msg === 'backup complete' || l.msg === 'backup failed') open--;
        expect(open).toBeGreaterThanOrEqual(0);
        expect(open).toBeLessThanOrEqual(1);
      }
      const m = parseMetrics((await get(healthPort, '/metrics')).text);
      expect(m.get(`tykdr_job_skipped_overlap_total{job="${BACKUP}"}`)).toBeGreaterThanOrEqual(3);
      expect([0, 1]).toContain(m.get(`tykdr_job_running{job="${BACKUP}"}`));

      // Stop in the middle of a run, once its Redis object is being written: the 1 s grace is shorter than the ~3 s backup.
      await d.waitFor((l) => l.msg === 'job started' && d.lines.indexOf(l) > d.lines.findLastIndex((x) => x.msg === 'backup complete'), 10_000, 'a new run');
      await waitFor(() => writingObjectOf(store, 'redis'), { timeoutMs: 10_000, intervalMs: 20, what: "the new run writing its Redis object to the store" });
      d.child.kill('SIGTERM');
      const exit = await d.exited;
      expect(exit.code, d.stderr()).toBe(130);
      expect(d.lines.some((l) => l.msg === 'stopping: grace period over; aborting running jobs')).toBe(true);
      expect(d.lines.some((l) => l.msg === 'backup aborted; its partial objects were removed')).toBe(true);
      expect(d.lines.at(-1)).toMatchObject({ msg: 'daemon stopped', exit_code: 130 });
      expect(await redis.cli('EXISTS', LOCK_KEY)).toBe('0');
      const snaps = await storeSnapshots(store);
      expect(snaps.length).toBeGreaterThanOrEqual(1);
      expect(snaps.every((s) => s.complete)).toBe(true);
      expect((await readdir(path.join(store, 'snapshots'))).length).toBe(snaps.length);
    } finally {
      await redis.cli('CONFIG', 'SET', 'rdb-key-save-delay', '0');
    }
  });

  it('--once runs the backup once when leader and exits 0; a follower exits 0 without running', async () => {
    const store = path.join(ws.dir, 'store-c');
    const config = await ws.writeConfig('c.yaml', yaml({ redisPort: redis.port, healthPort: await freePort(), store }));
    const once = await runCli(['daemon', '--config', config, '--once', '--job', 'backup'], { env: { TEST_REDIS_PASSWORD: REDIS_PASSWORD, TEST_TOKEN: TOKEN } });
    expect(once.code, once.stderr).toBe(0);
    expect((await storeSnapshots(store)).filter((s) => s.complete)).toHaveLength(1);
    expect(await redis.cli('EXISTS', LOCK_KEY)).toBe('0');

    // Held well beyond the follower's start-up (seconds on a loaded machine), so it cannot expire under it; deleted below.
    await redis.cli('SET', LOCK_KEY, 'someone-else 0000', 'PX', '60000');
    const follower = await runCli(['daemon', '--config', config, '--once', '--job', 'backup'], { env: { TEST_REDIS_PASSWORD: REDIS_PASSWORD, TEST_TOKEN: TOKEN } });
    expect(follower.code, follower.stderr).toBe(0);
    expect(follower.stdout).toContain('another instance is leader; nothing to do');
    expect((await storeSnapshots(store)).filter((s) => s.complete)).toHaveLength(1);
    expect(await redis.cli('GET', LOCK_KEY)).toBe('someone-else 0000');
    await redis.cli('DEL', LOCK_KEY);
  });
});

describe('tykdr daemon: two daemons', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis({ password: REDIS_PASSWORD });
    await seedTykRedis(redis.port, { password: REDIS_PASSWORD, sessions: 50 });
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('elect exactly one leader; when it is SIGKILLed the other takes over within the lock TTL', async () => {
    const store = path.join(ws.dir, 'store-ha');
    const ports = [await freePort(), await freePort()];
    const configs = await Promise.all(ports.map((p, i) => ws.writeConfig(`ha-${i}.yaml`, yaml({ redisPort: redis.port, healthPort: p, store }))));
    const ds = configs.map((c, i) => startDaemon(c, ['--job', 'backup', '--instance-id', `ha-${i}`]));
    await Promise.all(ds.map((d) => d.waitFor((l) => l.msg === 'health server listening', 30_000, 'start')));
    // Both have contended for the lock: one leads and has started a backup, the other saw it lead.
    await waitFor(
      () =>
        ds.some((d) => d.lines.some((l) => l.msg === 'became leader') && d.count(started()) >= 1) &&
        ds.some((d) => d.lines.some((l) => l.msg === 'another instance is leader')),
      { timeoutMs: 10_000, what: 'a leader running a backup and a follower', detail: () => ds.map((d) => d.lines.map((l) => JSON.stringify(l)).join('\n')).join('\n--\n') },
    );
    const leaders = ds.filter((d) => d.lines.some((l) => l.msg === 'became leader'));
    expect(leaders).toHaveLength(1);
    const leader = leaders[0]!;
    const follower = ds.find((d) => d !== leader)!;
    const li = ds.indexOf(leader);
    const fi = ds.indexOf(follower);
    expect(follower.count(started())).toBe(0);
    expect(leader.count(started())).toBeGreaterThanOrEqual(1);
    expect(follower.lines.some((l) => l.msg === 'another instance is leader' && l.leader === `ha-${li}`)).toBe(true);
    const mf = parseMetrics((await get(ports[fi]!, '/metrics')).text);
    expect(mf.get(`tykdr_leader{instance="ha-${fi}"}`)).toBe(0);
    const ml = parseMetrics((await get(ports[li]!, '/metrics')).text);
    expect(ml.get(`tykdr_leader{instance="ha-${li}"}`)).toBe(1);
    expect(JSON.parse((await get(ports[fi]!, '/hello')).text).description).toBe(`tykdr daemon ha-${fi} (follower)`);

    leader.child.kill('SIGKILL');
    const killed = Date.now();
    await leader.exited;
    // Liveness: the follower takes over once the dead leader's lease ran out (a loaded machine delays timers).
    await follower.waitFor((l) => l.msg === 'became leader', 12_000, 'takeover');
    const took = Date.now() - killed;
    expect(took).toBeLessThanOrEqual(2 * 2000 + 8000);
    await follower.waitFor((l) => l.msg === 'backup complete', 15_000, 'a backup by the new leader');
    expect(parseMetrics((await get(ports[fi]!, '/metrics')).text).get(`tykdr_leader{instance="ha-${fi}"}`)).toBe(1);

    follower.child.kill('SIGTERM');
    expect((await follower.exited).code).toBe(0);
    expect(await redis.cli('EXISTS', LOCK_KEY)).toBe('0');
  });
});

describe('tykdr daemon: health as time passes', () => {
  // The RPO is 12 s so that the daemon's start-up (several seconds on a loaded machine) stays inside the pass window.
  it('/hello goes pass -> warn -> fail with a 12 s RPO and no new backups (state read from the store at start)', async () => {
    const redis = await startRedis({ password: REDIS_PASSWORD });
    try {
      const healthPort = await freePort();
      const store = path.join(ws.dir, 'store-h');
      const config = await ws.writeConfig(
        'h.yaml',
        yaml({
          redisPort: redis.port,
          healthPort,
          store,
          schedule: '0 0 1 1 *',
          extra: `    tier: critical\ntiers: { critical: { rto: 1m, rpo: 12s } }\n`,
        }),
      );
      const b = await runCli(['backup', '--config', config], { env: { TEST_REDIS_PASSWORD: REDIS_PASSWORD } });
      expect(b.code, b.stderr).toBe(0);
      const d = startDaemon(config, ['--job', 'backup', '--no-leader']);
      await d.waitFor((l) => l.msg === 'health server listening', 30_000, 'start');
      expect(d.lines.find((l) => l.msg === 'state loaded from the store')).toMatchObject({ manifests_read: 1 });
      const seen: Array<{ status: string; http: number }> = [];
      const t = Date.now();
      while (Date.now() - t < 40_000) {
        const r = await get(healthPort, '/hello');
        const body = JSON.parse(r.text);
        if (seen.at(-1)?.status !== body.status) seen.push({ status: body.status, http: r.status });
        expect(Object.keys(body.details)).toEqual(['redis', 'config']);
        if (body.status === 'fail') {
          expect(body.details.redis[0].output).toContain('more than twice the RPO of 12s');
          expect(body.details.redis[0].observedValue).toBeGreaterThanOrEqual(24);
          break;
        }
        await new Promise((r) => setTimeout(r, 200)); // the sampling interval: every state on the way is to be seen
      }
      expect(seen).toEqual([
        { status: 'pass', http: 200 },
        { status: 'warn', http: 200 },
        { status: 'fail', http: 503 },
      ]);
      expect((await get(healthPort, '/hello', 'wrong')).status).toBe(401);
      expect((await get(healthPort, '/metrics', '')).status).toBe(401);
      d.child.kill('SIGINT');
      expect((await d.exited).code).toBe(0);
    } finally {
      await redis.stop();
    }
  });
});

describe('tykdr daemon: webhooks', () => {
  it('sends backup_failed when Redis goes away (retrying after a 500), and keeps backing up while another webhook hangs', async () => {
    const redis = await startRedis({ password: REDIS_PASSWORD });
    const got: Array<{ n: number; body: Record<string, unknown>; auth: string | undefined }> = [];
    let n = 0;
    const receiver: Server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        n++;
        got.push({ n, body: JSON.parse(data), auth: req.headers.authorization });
        res.writeHead(n === 1 ? 500 : 200).end();
      });
    });
    const hang: Server = createServer(() => {
      /* accepts and never answers */
    });
    await Promise.all([receiver, hang].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    const url = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`;
    let d: DaemonProcess | undefined;
    try {
      const healthPort = await freePort();
      const store = path.join(ws.dir, 'store-w');
      const config = await ws.writeConfig(
        'w.yaml',
        yaml({
          redisPort: redis.port,
          healthPort,
          store,
          extra: `notifications:
  webhooks:
    - url: ${url(receiver)}
      events: [backup_failed]
      headers: { Authorization: "Bearer \${TEST_TOKEN}" }
      retries: 2
      timeout: 2s
    - url: ${url(hang)}
      retries: 5
      timeout: 3s
`,
        }),
      );
      d = startDaemon(config, ['--job', 'backup', '--no-leader']);
      await d.waitFor((l) => l.msg === 'backup complete', 15_000, 'a first backup');
      await redis.stop();
      const failedAt = d.lines.length;
      await d.waitFor((l) => l.msg === 'backup failed', 10_000, 'a failed backup');
      // Retried after the 500: the same event arrives twice.
      await waitFor(() => got.length >= 2, { timeoutMs: 10_000, what: 'the backup_failed webhook twice (a retry after the 500)', detail: () => JSON.stringify(got) });
      expect(got[1]!.body).toEqual(got[0]!.body);
      const body = got[0]!.body;
      expect(body).toMatchObject({ event: 'backup_failed', component: 'redis', details: { components: ['redis', 'config'], error_kind: 'sourceUnreachable' } });
      expect(String(body.message)).toMatch(/^components\.redis: Redis at 127\.0\.0\.1:\d+ is unreachable/);
      expect(Date.parse(String(body.time))).toBeGreaterThan(Date.now() - 60_000);
      expect(got[0]!.auth).toBe(`Bearer ${TOKEN}`);
      expect(JSON.stringify(got)).not.toContain(REDIS_PASSWORD);
      expect(d.lines.some((l) => l.msg === 'webhook attempt failed; retrying' && l.error === 'HTTP 500')).toBe(true);

      // The hanging webhook holds its own queue; backups go on every second regardless.
      await d.waitFor(() => d!.lines.slice(failedAt).filter((l) => l.msg === 'backup failed').length >= 3, 10_000, 'more failed runs');
      const m = parseMetrics((await get(healthPort, '/metrics')).text);
      expect(m.get(`tykdr_job_runs_total{job="${BACKUP}",result="failure"}`)).toBeGreaterThanOrEqual(3);
      // Both components are in the failing run: every check fails, so /hello fails (503).
      const hello = await get(healthPort, '/hello');
      expect(hello.status).toBe(503);
      expect(JSON.parse(hello.text).details.config[0].status).toBe('fail');
      d.child.kill('SIGTERM');
      const exit = await d.exited;
      expect(exit.code, d.stderr()).toBe(0);
    } finally {
      d?.child.kill('SIGKILL');
      await redis.stop();
      for (const s of [receiver, hang]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    }
  });
});
