import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/** `drill --pick random --within D --seed N`: older recovery points are drilled too, reproducibly. */
let prod: RedisServer;
let ws: Workspace;
let cfg: string;
const ids: string[] = [];

beforeAll(async () => {
  [prod, ws] = await Promise.all([startRedis(), makeWorkspace()]);
  await seedTykRedis(prod.port, { sessions: 20 });
  cfg = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis: { kind: redis, port: ${prod.port} }
restore: { reportDir: ./reports }
`,
  );
  for (let i = 0; i < 3; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1100)); // snapshot ids have one-second resolution
    await prod.cli('SET', `apikey-round${i}`, '{}');
    const res = await runCli(['backup', '-c', cfg, '--json']);
    expect(res.code, res.stderr).toBe(0);
    ids.push(JSON.parse(res.stdout).id);
  }
});

afterAll(async () => {
  await Promise.all([prod?.stop(), ws?.cleanup()]);
});

const drill = async (...extra: string[]) => {
  const res = await runCli(['drill', '--plan', 'redis', '-c', cfg, '--json', ...extra]);
  expect(res.code, res.stdout + res.stderr).toBe(0);
  return JSON.parse(res.stdout).report;
};

describe('drill --pick random', () => {
  it('drills a seeded random snapshot of the window, the same one for the same seed, and says which and why', async () => {
    const picks = [];
    for (const seed of [1, 2, 3]) {
      const report = await drill('--pick', 'random', '--within', '30d', '--seed', String(seed));
      expect(ids).toContain(report.snapshot.id);
      expect(report.snapshot.picked).toBe(`picked at random from 3 snapshots within 30d, seed ${seed}`);
      expect(report.status).toBe('succeeded');
      picks.push(report.snapshot.id);
    }
    // Reproducible: the same seed over the same snapshots picks the same one.
    expect((await drill('--pick', 'random', '--within', '30d', '--seed', '2')).snapshot.id).toBe(picks[1]);
    // The text output and the HTML report say which snapshot and why.
    const text = await runCli(['drill', '--plan', 'redis', '-c', cfg, '--pick', 'random', '--seed', '1']);
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect(text.stdout).toContain(`Snapshot ${picks[0]} (created `);
    expect(text.stdout).toContain('picked at random from 3 snapshots within 30d, seed 1');
    expect(text.stderr).toContain(`snapshot ${picks[0]}`);
    const html = await readFile(text.stdout.match(/Report: (\S+\.html)/)![1]!, 'utf8');
    expect(html).toContain('picked at random from 3 snapshots within 30d, seed 1');
  });

  it('without a seed draws one and reports it; the default stays the latest snapshot', async () => {
    const report = await drill('--pick', 'random');
    expect(report.snapshot.picked).toMatch(/^picked at random from 3 snapshots within 30d, seed \d+$/);
    const seed = /seed (\d+)$/.exec(report.snapshot.picked)![1]!;
    expect((await drill('--pick', 'random', '--seed', seed)).snapshot.id).toBe(report.snapshot.id);
    const latest = await drill();
    expect(latest.snapshot.id).toBe(ids[2]);
    expect(latest.snapshot.picked).toBeUndefined();
  });

  it('refuses an empty window, a bad --within, and --seed or --snapshot that do not go with it (exit 2)', async () => {
    const res = await runCli(['drill', '--plan', 'redis', '-c', cfg, '--pick', 'random', '--within', '1ms']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/no complete snapshot within 1ms/);
    const bad = await runCli(['drill', '--plan', 'redis', '-c', cfg, '--pick', 'random', '--within', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--within "soon"');
    const seedOnly = await runCli(['drill', '--plan', 'redis', '-c', cfg, '--seed', '4']);
    expect(seedOnly.code).toBe(2);
    expect(seedOnly.stderr).toContain('--seed goes with --pick random');
    const both = await runCli(['drill', '--plan', 'redis', '-c', cfg, '--pick', 'random', '--snapshot', ids[0]!]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--snapshot and --pick random exclude each other');
  });
});
