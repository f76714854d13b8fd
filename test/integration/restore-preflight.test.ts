import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeConfigTree, seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/** Everything a restore needs is checked before the first write; a failed check leaves every target as it was. */
let source: RedisServer;
let target: RedisServer;
let ws: Workspace;
let tree: { root: string };

const config = (extra = '') => `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${source.port}
    restore: { mode: live, target: { host: 127.0.0.1, port: ${target.port} } }
  config:
    kind: files
    roots: [${tree.root}]
${extra}`;

async function targetKeys(): Promise<number> {
  const r = new Redis({ port: target.port, lazyConnect: true });
  await r.connect();
  const n = await r.dbsize();
  r.disconnect();
  return n;
}

beforeAll(async () => {
  source = await startRedis();
  target = await startRedis();
  ws = await makeWorkspace();
  tree = await makeConfigTree();
  await seedTykRedis(source.port);
  await new Redis({ port: target.port }).set('live-key', 'keep me').then(() => undefined);
  const file = await ws.writeConfig('tykdr.yaml', config());
  // A snapshot of the files only: the Redis component is configured but not in it.
  const b = await runCli(['backup', '--component', 'config', '--config', file], { cwd: ws.dir });
  expect(b.code, b.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await source?.stop();
  await target?.stop();
  await ws?.cleanup();
});

describe('preflight before any write', () => {
  it('a plan step whose configured component the snapshot lacks is an error (exit 2), naming the step and the way out', async () => {
    const file = await ws.writeConfig('tykdr.yaml', config());
    const r = await runCli(['restore', '--plan', 'redis', '--yes', '--config', file], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('plan redis step redis restores redis');
    expect(r.stderr).toContain('has no redis component');
    expect(r.stderr).toContain('--allow-partial');
    expect(await targetKeys()).toBe(1);
  });

  it('--target naming a component the restore does not restore is an error, never silently ignored', async () => {
    const file = await ws.writeConfig('tykdr.yaml', config());
    const r = await runCli(['restore', '--plan', 'gateway', '--yes', '--to', path.join(ws.dir, 'out'), '--target', `redis=127.0.0.1:${target.port}`, '--config', file], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('--target redis=...: plan gateway restores no component "redis"');
    expect(await readdir(path.join(ws.dir, 'out')).catch(() => [])).toEqual([]);
  });

  it('an unwritable report folder is found before the target is touched', async () => {
    // A path under a regular file cannot be made a folder, whoever runs the test (root included).
    const blocker = path.join(ws.dir, 'not-a-folder');
    await writeFile(blocker, 'x');
    const file = await ws.writeConfig('tykdr.yaml', config(`restore: { reportDir: ${path.join(blocker, 'reports')} }\n`));
    const r = await runCli(['restore', '--plan', 'gateway', '--yes', '--to', path.join(ws.dir, 'out2'), '--config', file], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`restore.reportDir ${path.join(blocker, 'reports')} cannot be written (ENOTDIR)`);
    expect(await readdir(path.join(ws.dir, 'out2')).catch(() => [])).toEqual([]);
  });

  it('with --allow-partial the full plan restores what the snapshot has and says what it skipped', async () => {
    const file = await ws.writeConfig('tykdr.yaml', config());
    const out = path.join(ws.dir, 'out3');
    const r = await runCli(['restore', '--plan', 'full', '--yes', '--allow-partial', '--to', out, '--config', file, '--json'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    const report = (JSON.parse(r.stdout) as { report: { warnings: string[]; steps: Array<{ id: string; status: string }> } }).report;
    expect(report.warnings.join('\n')).toContain('has no redis component: skipped (--allow-partial)');
    expect(report.steps.find((s) => s.id === 'redis')?.status).toBe('skipped');
    expect((await readdir(out)).length).toBeGreaterThan(0);
    expect(await targetKeys()).toBe(1);
  });
});
