import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeConfigTree, productionState, seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

let prod: RedisServer;
let ws: Workspace;
let tree: { root: string };
let configFile: string;
let snapshotId: string;

const prodState = () => productionState(prod, tree.root);

beforeAll(async () => {
  [prod, ws, tree] = await Promise.all([startRedis(), makeWorkspace(), makeConfigTree()]);
  await seedTykRedis(prod.port, { sessions: 300 });
  configFile = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${prod.port}, restore: { mode: rdb-file, dataDir: /nonexistent, stopCommand: "false", startCommand: "false" } }
  config: { kind: files, roots: [${tree.root}], exclude: ["**/*.log"] }
gateway:
  url: http://127.0.0.1:1
  restartCommand: "touch ${ws.dir}/gateway-was-restarted"
restore: { reportDir: ./reports }
`,
  );
  const res = await runCli(['backup', '-c', configFile, '--json']);
  expect(res.code, res.stderr).toBe(0);
  snapshotId = JSON.parse(res.stdout).id;
});

afterAll(async () => {
  await Promise.all([prod?.stop(), ws?.cleanup(), tree && rm(tree.root, { recursive: true, force: true })]);
});

describe('tykdr drill', () => {
  let report: any;
  let before: Awaited<ReturnType<typeof prodState>>;

  beforeAll(async () => {
    before = await prodState();
    const res = await runCli(['drill', '--plan', 'full', '-c', configFile, '--json']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    report = JSON.parse(res.stdout).report;
  });

  it('restores into scratch targets and verifies, never touching production', async () => {
    expect(report.kind).toBe('drill');
    expect(report.status).toBe('succeeded');
    expect(report.snapshot.id).toBe(snapshotId);
    const checks = Object.fromEntries(report.steps.flatMap((s: any) => s.checks.map((c: any) => [c.name, c])));
    for (const c of ['artifact-integrity', 'redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl', 'files-restored']) expect(checks[c].status, c).toBe('passed');
    for (const c of ['gateway-ready', 'gateway-hello', 'gateway-key-probe', 'upstream']) {
      expect(checks[c].status, c).toBe('skipped');
      expect(checks[c].detail).toMatch(/^drill:/);
    }
    // Production: same keys, same data, same files; the gateway restart command never ran.
    expect(await prodState()).toEqual(before);
    await expect(readFile(path.join(ws.dir, 'gateway-was-restarted'))).rejects.toThrow(/ENOENT/);
    expect(report.rto.achievedSeconds).toBeGreaterThan(0);
    expect(report.rpo.redis).toBeDefined();
  });

  it('tears the scratch Redis down and stores the report next to the snapshot', async () => {
    const target = String(report.steps.find((s: any) => s.id === 'redis').details.redis.target ?? '');
    const port = Number(/:(\d+)$/.exec(target)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(port).not.toBe(prod.port);
    const r = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    r.on('error', () => undefined);
    await expect(r.connect()).rejects.toThrow();
    r.disconnect();
    expect(await readdir(path.join(ws.storeDir, 'reports', snapshotId))).toContain(`drill-${report.id}.html`);
  });

  it('tykdr drills lists the history with the RTO trend, and a failed drill shows as FAILED', async () => {
    expect((await runCli(['drill', '--plan', 'redis', '-c', configFile])).code).toBe(0);
    expect((await runCli(['drill', '--plan', 'redis', '-c', configFile])).code).toBe(0);
    const obj = path.join(ws.storeDir, 'snapshots', snapshotId, 'redis.rdb.zst.age');
    const saved = await readFile(obj);
    const bad = Buffer.from(saved);
    bad[100]! ^= 0x01;
    await writeFile(obj, bad);
    try {
      const failed = await runCli(['drill', '--plan', 'redis', '-c', configFile]);
      expect(failed.code).toBe(5);
    } finally {
      await writeFile(obj, saved);
    }
    const res = await runCli(['drills', '-c', configFile, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const drills = JSON.parse(res.stdout).drills;
    expect(drills.map((d: any) => [d.plan, d.status])).toEqual([
      ['redis', 'failed'],
      ['redis', 'succeeded'],
      ['redis', 'succeeded'],
      ['full', 'succeeded'],
    ]);
    expect(typeof drills[1].rtoTrendSeconds).toBe('number');
    expect(drills[2].rtoTrendSeconds).toBeNull();
    const text = await runCli(['drills', '-c', configFile]);
    expect(text.stdout).toMatch(/FINISHED\s+PLAN\s+STATUS\s+RTO/);
    expect(text.stdout).toContain('FAILED');
    // The history report: a bare --markdown goes to the report folder; links reach each drill's own report.
    const page = path.join(ws.dir, 'pages', 'drills.html');
    const written = await runCli(['drills', '-c', configFile, '--html', page, '--markdown', '--json']);
    expect(written.code, written.stderr).toBe(0);
    expect(JSON.parse(written.stdout).files).toEqual({ html: page, markdown: path.join(ws.dir, 'reports', 'drills.md') });
    const html = await readFile(page, 'utf8');
    expect(html).toContain('<span class="badge failed">FAILED</span>');
    expect(html).toMatch(/<g class="series" data-plan="redis">/);
    expect(html).toMatch(/<g class="series" data-plan="full">/);
    const link = /<a href="([^"]+)" title="drill [^"]+"><code>[^<]+<\/code><\/a>/.exec(html)![1]!;
    expect(link).toMatch(/^\.\.\/reports\/drill-.+\.html$/);
    await expect(readFile(path.join(path.dirname(page), decodeURIComponent(link)), 'utf8')).resolves.toContain('<h1>DR drill:');
    expect(await readFile(path.join(ws.dir, 'reports', 'drills.md'), 'utf8')).toContain('| **FAILED** |');
  });
});

describe('a drill that misses its objectives', () => {
  it('fails with exit 8, says "DR drill" and MISSED, and lists the checks it did not prove', async () => {
    const text = (await readFile(configFile, 'utf8')) + 'tiers: { critical: { rto: 1ms, rpo: 1ms } }\n';
    const tight = await ws.writeConfig('tight.yaml', text);
    const res = await runCli(['drill', '--plan', 'redis', '-c', tight]);
    expect(res.code, res.stdout + res.stderr).toBe(8);
    expect(res.stdout).toContain('DR drill FAILED: OBJECTIVE MISSED');
    expect(res.stdout).not.toContain('Restore ');
    expect(res.stdout).toMatch(/MISSED RTO \d/);
    expect(res.stdout).toMatch(/MISSED RPO redis \d/);
    const html = await readFile(res.stdout.match(/Report: (\S+\.html)/)![1]!, 'utf8');
    expect(html).toContain('Failed: objective missed:');
    expect(html).toContain('<span class="badge missed">MISSED</span>');
    expect(html).toMatch(/<line data-role="rto-objective"/);
    const json = JSON.parse(await readFile(res.stdout.match(/Report: (\S+)\.html/)![1]! + '.json', 'utf8'));
    expect(json.status).toBe('failed');
    expect(json.verdict.passed).toBe(false);
    expect(json.verdict.missed.length).toBe(2);
  });

  it('a check a drill cannot run is NOT PROVEN in the headline, never a pass', async () => {
    const res = await runCli(['drill', '--plan', 'full', '-c', configFile]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/NOT PROVEN \(checks skipped\): .*gateway\/gateway-ready/);
  });
});
