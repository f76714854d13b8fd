import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyKey } from '../../src/core/tyk/key-classes.js';
import { runCli } from '../helpers/cli.js';
import { startGatewayStandin, startUpstream, type GatewayStandin, type Upstream } from '../helpers/gateway-standin.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeConfigTree, seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const CANARY = 'canary0000000000000000000000000'; // seedTykRedis stores it as apikey-<CANARY>

interface KeyState { type: string; value: string; pexpireAt: number }

/** Every key with its type, value (as bytes, hex) and absolute expiry: what "restored" must equal. */
async function keyspace(port: number): Promise<Map<string, KeyState>> {
  const r = new Redis({ port, lazyConnect: true });
  await r.connect();
  const out = new Map<string, KeyState>();
  for (const key of await r.keys('*')) {
    const type = await r.type(key);
    const value =
      type === 'string' ? (await r.getBuffer(key))!.toString('hex')
      : type === 'list' ? JSON.stringify(await r.lrange(key, 0, -1))
      : type === 'set' ? JSON.stringify((await r.smembers(key)).sort())
      : type === 'zset' ? JSON.stringify(await r.zrange(key, 0, -1, 'WITHSCORES'))
      : type;
    out.set(key, { type, value, pexpireAt: Number(await r.call('PEXPIRETIME', key)) });
  }
  r.disconnect();
  return out;
}

async function treeDigest(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const n of (await readdir(d)).sort()) {
      const p = path.join(d, n);
      const st = await lstat(p);
      const rel = path.relative(root, p);
      if (st.isDirectory()) {
        out[rel] = `dir ${st.mode.toString(8)}`;
        await walk(p);
      } else if (st.isSymbolicLink()) out[rel] = `link ${await readlink(p)}`;
      else out[rel] = `file ${st.mode.toString(8)} ${Math.floor(st.mtimeMs / 1000)} ${createHash('sha256').update(await readFile(p)).digest('hex')}`;
    }
  };
  await walk(root);
  return out;
}

let source: RedisServer;
let ws: Workspace;
let tree: { root: string };
let upstream: Upstream;
let gateway: GatewayStandin;
let original: Map<string, KeyState>;
let originalTree: Record<string, string>;
let configFile: string;
let snapshotId: string;

const cfg = (redisRestore: string, extra = '') => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${source.port}
    restore: ${redisRestore}
  config:
    kind: files
    roots: [${tree.root}]
    exclude: ["**/*.log"]
gateway:
  url: ${gateway.url}
  restartCommand: "true"
  timeout: 10s
  keyProbe: { path: /orders/, key: "\${CANARY_KEY}" }
  uptimeTests: { checkList: [ { url: "${upstream.url}/health" } ] }
dashboard:
  url: ${upstream.url}
  healthPath: /api/health
  timeout: 10s
restore: { reportDir: ./reports }
${extra}`;

beforeAll(async () => {
  [source, ws, tree, upstream] = await Promise.all([startRedis(), makeWorkspace(), makeConfigTree(), startUpstream()]);
  gateway = await startGatewayStandin({ redisPort: source.port, upstreamUrl: upstream.url, sessionCacheMs: 0 });
  await seedTykRedis(source.port, { sessions: 500 });
  await source.cli('SELECT', '0');
  original = await keyspace(source.port);
  originalTree = await treeDigest(tree.root);
  configFile = await ws.writeConfig('tykdr.yaml', cfg('{ mode: live }'));
  const res = await runCli(['backup', '-c', configFile, '--json']);
  expect(res.code, res.stderr).toBe(0);
  snapshotId = JSON.parse(res.stdout).id;
});

afterAll(async () => {
  // The rdb-file test restarts the source as a daemon its helper does not own: stop it by port.
  await source?.cli('SHUTDOWN', 'NOSAVE').catch(() => undefined);
  await Promise.all([gateway?.stop(), upstream?.stop(), source?.stop(), ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
});

const env = { CANARY_KEY: CANARY };

async function destroy() {
  await source.cli('FLUSHALL');
  for (const n of await readdir(tree.root)) await rm(path.join(tree.root, n), { recursive: true, force: true });
  const probe = await fetch(`${gateway.url}/orders/`, { headers: { Authorization: CANARY } });
  expect(probe.status).toBe(403); // the disaster is real: the canary key no longer works
}

async function expectRestored() {
  const now = await keyspace(source.port);
  const restoredClasses = new Set(['must', 'should', 'other']);
  for (const [key, st] of original) {
    const cls = classifyKey(key);
    if (restoredClasses.has(cls)) {
      expect(now.get(key), `${cls} key ${key.slice(0, 12)}…`).toBeDefined();
      expect(now.get(key)!.value).toBe(st.value);
      if (st.pexpireAt > 0) expect(Math.abs(now.get(key)!.pexpireAt - st.pexpireAt)).toBeLessThan(2000);
      else expect(now.get(key)!.pexpireAt).toBe(-1);
    }
  }
  return now;
}

describe('tykdr restore --plan full, live mode', () => {
  let report: any;

  beforeAll(async () => {
    await destroy();
    const incident = new Date().toISOString();
    // Time passing is the point: the RTO is counted from the incident, so it is at least a second (asserted below).
    await new Promise((r) => setTimeout(r, 1100));
    const res = await runCli(['restore', '--plan', 'full', '-c', configFile, '--yes', '--json', '--incident-at', incident], { env });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    report = JSON.parse(res.stdout).report;
  });

  it('brings back every must/should key with its value and TTL, and not the skipped classes', async () => {
    const now = await expectRestored();
    for (const key of now.keys()) expect(['must', 'should', 'other']).toContain(classifyKey(key));
    expect(now.has('rate-limit-abc')).toBe(false);
    expect(now.has('analytics-tyk-system-analytics')).toBe(false);
    expect(now.has('quota-abc')).toBe(false);
  });

  it('restores the config files identically (contents, modes, mtimes, symlinks)', async () => {
    const { 'gateway.log': excluded, ...backedUp } = originalTree;
    expect(excluded).toBeDefined(); // excluded from the backup, so not restored
    expect(await treeDigest(tree.root)).toEqual(backedUp);
  });

  it('the gateway authenticates the canary key again and refuses a bogus one', async () => {
    expect((await fetch(`${gateway.url}/orders/`, { headers: { Authorization: CANARY } })).status).toBe(200);
    expect((await fetch(`${gateway.url}/orders/`, { headers: { Authorization: 'bogus' } })).status).toBe(403);
  });

  it('reports every step in order with its checks, RTO and RPO', () => {
    expect(report.status).toBe('succeeded');
    expect(report.snapshot.id).toBe(snapshotId);
    expect(report.steps.map((s: any) => [s.id, s.status])).toEqual([
      ['stage', 'ok'],
      ['redis', 'ok'],
      ['database', 'skipped'],
      ['dashboard', 'ok'],
      ['gateway', 'ok'],
    ]);
    const checks = Object.fromEntries(report.steps.flatMap((s: any) => s.checks.map((c: any) => [c.name, c.status])));
    for (const c of ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl', 'files-restored', 'dashboard-health', 'gateway-ready', 'gateway-hello', 'gateway-key-probe', 'upstream']) {
      expect(checks[c], c).toBe('passed');
    }
    expect(checks['redis-replicas']).toBe('skipped');
    expect(report.rto.met).toBe(true);
    expect(report.rto.achievedSeconds).toBeGreaterThanOrEqual(1);
    // Service restored: the canary key probe's pass, measured on its own and never after all checks were done.
    const probe = report.steps.flatMap((s: any) => s.checks).find((c: any) => c.name === 'gateway-key-probe');
    expect(report.rto.service_restored_at).toBe(probe.finishedAt);
    expect(report.rto.service_restored_seconds).toBeLessThanOrEqual(report.rto.achievedSeconds);
    expect(report.warnings.filter((w: string) => /taken after the incident/.test(w))).toEqual([]);
    expect(report.rto.tier).toBe('critical');
    expect(report.rpo.redis.achievedSeconds).toBeGreaterThan(0);
    expect(report.rpo.config.tier).toBe('important');
    expect(JSON.stringify(report)).not.toContain(CANARY);
  });

  it('writes the report locally and next to the snapshot in the store', async () => {
    const local = await readdir(path.join(ws.dir, 'reports'));
    expect(local.filter((n) => n.startsWith(`restore-${report.id}.`)).sort()).toEqual([`restore-${report.id}.html`, `restore-${report.id}.json`, `restore-${report.id}.md`]);
    const stored = await readdir(path.join(ws.storeDir, 'reports', snapshotId));
    expect(stored).toContain(`restore-${report.id}.html`);
    const html = await readFile(path.join(ws.dir, 'reports', `restore-${report.id}.html`), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toContain(CANARY);
  });

  it('warns when the snapshot was taken after the incident began', async () => {
    const res = await runCli(['restore', '--plan', 'redis', '-c', configFile, '--yes', '--json', '--incident-at', '1h'], { env });
    // The restore worked, but an hour against critical's 15 minutes misses the RTO: exit 8, status failed.
    expect(res.code, res.stdout).toBe(8);
    const r = JSON.parse(res.stdout).report;
    expect(r.warnings.some((w: string) => w.includes('was taken after the incident began'))).toBe(true);
    expect(r.rto.achievedSeconds).toBeGreaterThanOrEqual(3600);
    expect(r.rto.met).toBe(false);
    expect(r.status).toBe('failed');
    expect(r.steps.every((s: { status: string }) => s.status === 'ok')).toBe(true);
    expect(r.verdict.passed).toBe(false);
    expect(r.verdict.missed.join(' ')).toMatch(/^RTO \d+(\.\d)? s against 900 s \(critical\)/);
  });

  it('the human summary says FAILED: OBJECTIVE MISSED and names the objective; the HTML says MISSED', async () => {
    const res = await runCli(['restore', '--plan', 'redis', '-c', configFile, '--yes', '--incident-at', '1h'], { env });
    expect(res.code, res.stderr).toBe(8);
    expect(res.stdout).toContain('Restore FAILED: OBJECTIVE MISSED');
    expect(res.stdout).toMatch(/MISSED RTO \d/);
    const html = await readFile(res.stdout.match(/Report: (\S+\.html)/)![1]!, 'utf8');
    expect(html).toContain('Failed: objective missed:');
    expect(html).toContain('MISSED');
  });

  it('--dry-run shows plan, objects, sizes, targets and the expected duration, and changes nothing', async () => {
    const before = await keyspace(source.port);
    const res = await runCli(['restore', '--plan', 'full', '-c', configFile, '--dry-run'], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('DRY RUN');
    expect(res.stdout).toContain('redis.rdb.zst.age');
    expect(res.stdout).toMatch(/has live data \(\d+ keys\)/);
    expect(res.stdout).toMatch(/Expected duration: about .* \(measured by restore /);
    expect(await keyspace(source.port)).toEqual(before);
  });
});

describe('tykdr restore, rdb-file mode', () => {
  it('stops Redis, places dump.rdb (keeping the old one aside), starts it, and verifies', async () => {
    const file = await ws.writeConfig(
      'rdbfile.yaml',
      cfg(`{ mode: rdb-file, dataDir: ${source.dir}, dbfilename: dump.rdb, stopCommand: "redis-cli -p ${source.port} shutdown nosave", startCommand: "redis-server --port ${source.port} --bind 127.0.0.1 --dir ${source.dir} --dbfilename dump.rdb --appendonly no --save '' --daemonize yes --pidfile ${source.dir}/r.pid --logfile ${source.dir}/redis.log" }`),
    );
    await destroy();
    await writeFile(path.join(source.dir, 'dump.rdb'), 'old dump');
    const res = await runCli(['restore', '--plan', 'redis', '-c', file, '--yes', '--json'], { env });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const report = JSON.parse(res.stdout).report;
    expect(report.steps.find((s: any) => s.id === 'redis').status).toBe('ok');
    // rdb-file restores every class, exactly as the snapshot had it.
    const now = await keyspace(source.port);
    for (const [key, st] of original) if (st.pexpireAt === -1 || st.pexpireAt > Date.now() + 5000) expect(now.get(key)?.value, key).toBe(st.value);
    const aside = (await readdir(source.dir)).filter((n) => n.startsWith('dump.rdb.tykdr-'));
    expect(aside).toHaveLength(1);
    expect(await readFile(path.join(source.dir, aside[0]!), 'utf8')).toBe('old dump');
  });
});

describe('restores that must fail cleanly, leaving the target untouched', () => {
  let marker: string;

  beforeAll(async () => {
    marker = `marker-${Date.now()}`;
  });

  async function expectUntouched(fn: () => Promise<void>) {
    await source.cli('FLUSHALL');
    await source.cli('SET', marker, 'still here');
    const before = await keyspace(source.port);
    await fn();
    expect(await keyspace(source.port)).toEqual(before);
  }

  it('a corrupted object: exit 5, names the object, nothing restored', async () => {
    const obj = path.join(ws.storeDir, 'snapshots', snapshotId, 'config.tar.zst.age');
    const saved = await readFile(obj);
    const bad = Buffer.from(saved);
    bad[bad.length - 40]! ^= 0xff;
    await writeFile(obj, bad);
    try {
      await expectUntouched(async () => {
        const res = await runCli(['restore', '--plan', 'full', '-c', configFile, '--yes'], { env });
        expect(res.code, res.stderr).toBe(5);
        expect(res.stderr + res.stdout).toMatch(/config\.tar\.zst\.age/);
        expect(res.stdout).toContain('Restore FAILED');
      });
    } finally {
      await writeFile(obj, saved);
    }
  });

  it('a corrupted Redis object in a full plan: the stage fails naming it, nothing restored', async () => {
    const obj = path.join(ws.storeDir, 'snapshots', snapshotId, 'redis.rdb.zst.age');
    const saved = await readFile(obj);
    const bad = Buffer.from(saved);
    bad[Math.floor(bad.length / 2)]! ^= 0xff;
    await writeFile(obj, bad);
    try {
      await expectUntouched(async () => {
        const res = await runCli(['restore', '--plan', 'full', '-c', configFile, '--yes', '--json'], { env });
        expect(res.code, res.stderr).toBe(5);
        const stage = JSON.parse(res.stdout).report.steps.find((s: any) => s.id === 'stage');
        expect(stage.status).toBe('failed');
        expect(stage.reason).toMatch(/redis\.rdb\.zst\.age/);
        expect(stage.reason).not.toMatch(/abort/i);
      });
    } finally {
      await writeFile(obj, saved);
    }
  });

  it('a wrong identity: exit 5, nothing restored', async () => {
    const other = path.join(ws.dir, 'other-id.txt');
    expect((await runCli(['key', 'generate', '-o', other])).code).toBe(0);
    await expectUntouched(async () => {
      const res = await runCli(['restore', '--plan', 'redis', '-c', configFile, '--yes', '--identity', other], { env });
      expect(res.code, res.stderr).toBe(5);
      expect(res.stdout + res.stderr).toMatch(/no identity matches/i);
    });
  });

  it('a missing snapshot: exit 2', async () => {
    await expectUntouched(async () => {
      const res = await runCli(['restore', '-c', configFile, '--snapshot', '20200101T000000Z-000000', '--yes'], { env });
      expect(res.code).toBe(2);
      expect(res.stderr).toContain('snapshot 20200101T000000Z-000000 not found');
    });
  });

  it('live data without --yes and no terminal: exit 2, asks for --yes', async () => {
    await expectUntouched(async () => {
      const res = await runCli(['restore', '--plan', 'redis', '-c', configFile], { env });
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/would overwrite live data: redis 127\.0\.0\.1:\d+ .*\(1 keys\)/);
      expect(res.stderr).toContain('--yes');
    });
  });
});
