import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { eventually, mulberry32, runAndKill } from '../helpers/crash.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * restore.load replication under signals: SIGTERM while the target is a replica of tykdr ends the restore
 * (exit 130) with the target a master again, its masterauth and repl-diskless-load as before, holding no key
 * or every key; kill -9 leaves it a replica of tykdr's closed listener, which the next restore refuses with a
 * message naming the address and REPLICAOF NO ONE; after that, a restore brings the snapshot back whole.
 */
const KEYS = 150_000;

let source: RedisServer;
let target: RedisServer;
let ws: Workspace;
let cfg: string;
let staging: string;
let probe: Redis;

/**
 * `fn`, again while the target answers LOADING: a replica left by a killed tykdr can begin loading what its socket
 * still held after settled() saw it idle (the data arrives, then the load starts), and DBSIZE and FLUSHALL are refused
 * until that load ends.
 */
async function whenLoaded<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= 300 || !String((err as Error).message).startsWith('LOADING')) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function state(): Promise<{ role: string; link: string | undefined; masterauth: string; diskless: string; keys: number }> {
  return whenLoaded(stateNow);
}

async function stateNow(): Promise<{ role: string; link: string | undefined; masterauth: string; diskless: string; keys: number }> {
  const info = String(await probe.info('replication'));
  const get = async (name: string) => ((await probe.config('GET', name)) as string[])[1]!;
  return {
    role: info.match(/role:(\w+)/)![1]!,
    link: info.match(/master_link_status:(\w+)/)?.[1],
    masterauth: await get('masterauth'),
    diskless: await get('repl-diskless-load'),
    keys: Number(await probe.dbsize()),
  };
}

/**
 * Waits until the target is done with what a stopped or killed tykdr left it doing: a load from the data still
 * buffered in its socket (it answers LOADING to DBSIZE and FLUSHALL until then) and a link that is still up.
 */
async function settled(): Promise<void> {
  await eventually('the target to finish loading and see its link to tykdr down', async () => {
    const info = String(await probe.info());
    return /loading:0/.test(info) && !/master_link_status:up/.test(info);
  }, 60_000);
}

/** After a fault: the target made an empty master again, a restore succeeds and leaves a master holding every key. */
async function restoresWhole(after: string): Promise<void> {
  if ((await state()).role !== 'master') await probe.call('REPLICAOF', 'NO', 'ONE');
  await whenLoaded(() => probe.flushall());
  const again = await runCli(['restore', '--plan', 'redis', '--yes', '-c', cfg], { cwd: ws.dir });
  expect(again.code, `${after}: ${again.stdout}${again.stderr}`).toBe(0);
  expect(await state()).toMatchObject({ role: 'master', keys: KEYS });
}

/** Starts `restore --plan redis`; resolves with the child once the target has become a replica (tykdr sent REPLICAOF). */
async function restoreUntilReplica(config = cfg): Promise<{ exited: Promise<number | null>; kill: (sig: NodeJS.Signals) => void; output: () => string }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/run.js'), 'restore', '--plan', 'redis', '--yes', '-c', config], {
    cwd: ws.dir,
    env: { ...process.env, NO_COLOR: '1', TYKDR_GRACE: '5' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  await eventually('the target to become a replica of tykdr', async () => gone || /role:slave/.test(String(await probe.info('replication'))), 60_000, 2);
  expect(gone, out).toBe(false);
  return { exited, kill: (sig) => child.kill(sig), output: () => out };
}

beforeAll(async () => {
  [source, target, ws] = await Promise.all([startRedis(), startRedis(), makeWorkspace()]);
  staging = path.join(ws.dir, 'staging');
  const r = new Redis({ port: source.port, lazyConnect: true });
  await r.connect();
  for (let i = 0; i < KEYS; i += 10_000) {
    const p = r.pipeline();
    for (let j = i; j < i + 10_000; j++) p.set(`apikey-${j.toString(16).padStart(32, '0')}`, `{"org_id":"org1","alias":"user-${j}","rate":1000,"per":60}`, 'EX', 86_400);
    await p.exec();
  }
  r.disconnect();
  cfg = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${source.port}
    restore:
      mode: live
      load: replication
      target: { host: 127.0.0.1, port: ${target.port} }
restore: { stagingDir: ${staging}, reportDir: ./reports }
tiers: { critical: { rto: 1h, rpo: 24h } }
`,
  );
  const b = await runCli(['backup', '-c', cfg], { cwd: ws.dir });
  expect(b.code, b.stderr).toBe(0);
  probe = new Redis({ port: target.port, lazyConnect: true });
  await probe.connect();
}, 180_000);

afterAll(async () => {
  probe?.disconnect();
  await Promise.all([source?.stop(), target?.stop(), ws?.cleanup()]);
});

describe('restore.load replication under signals', () => {
  // Each test starts from an empty master, whatever the one before left behind (a failed test must not fail the next).
  beforeEach(async () => {
    await settled();
    if (/role:slave/.test(String(await probe.info('replication')))) await probe.call('REPLICAOF', 'NO', 'ONE');
    await whenLoaded(() => probe.flushall());
  });

  it('SIGTERM while the target is a replica of tykdr: exit 130, the target a master again with its settings, no key or every key; a rerun restores', async () => {
    await probe.config('SET', 'masterauth', 'orig-auth-sig');
    const run = await restoreUntilReplica();
    run.kill('SIGTERM');
    const code = await run.exited;
    expect(code, run.output()).toBe(130);
    const after = await state();
    expect(after, run.output()).toMatchObject({ role: 'master', masterauth: 'orig-auth-sig', diskless: 'disabled' });
    expect([0, KEYS], run.output()).toContain(after.keys);
    expect(run.output()).not.toContain('orig-auth-sig');
    // No staged plaintext is left.
    expect((await readdir(staging)).filter((n) => n.startsWith('tykdr-restore-'))).toEqual([]);
    await restoresWhole('after SIGTERM');
    expect((await state()).masterauth).toBe('orig-auth-sig');
  }, 180_000);

  it('kill -9 while the target is a replica of tykdr: the next restore refuses it, naming the closed address and REPLICAOF NO ONE; after that a restore brings it back', async () => {
    const run = await restoreUntilReplica();
    run.kill('SIGKILL');
    await run.exited;
    await eventually('the target to see its link to the killed tykdr down', async () => (await state()).link === 'down', 30_000);
    const refused = await runCli(['restore', '--plan', 'redis', '--yes', '-c', cfg], { cwd: ws.dir });
    expect(refused.code, refused.stdout + refused.stderr).toBe(6);
    expect(refused.stderr).toMatch(/is a replica of 127\.0\.0\.1:\d+: a restore must go to the master; its link to that master is down: if a killed tykdr restore \(restore\.load replication\) left it so/);
    expect(refused.stderr).toContain('REPLICAOF NO ONE');
    expect((await state()).role).toBe('slave');
    await restoresWhole('after kill -9');
  }, 180_000);

  it('a target that stops answering mid-load (SIGSTOP): exit 6 naming the stall and stallTimeout, and what to run; after SIGCONT a restore succeeds', async () => {
    const stalling = await ws.writeConfig('stall.yaml', (await readFile(cfg, 'utf8')).replace('    port: ', '    stallTimeout: 2s\n    port: '));
    const pid = Number(/process_id:(\d+)/.exec(String(await probe.info('server')))![1]);
    const run = await restoreUntilReplica(stalling);
    process.kill(pid, 'SIGSTOP');
    try {
      const code = await Promise.race([run.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 90_000))]);
      expect(code, run.output()).toBe(6);
      expect(run.output()).toMatch(/Redis at 127\.0\.0\.1:\d+ (stalled|stopped answering)[^\n]*stallTimeout/);
      expect(run.output()).toContain('REPLICAOF NO ONE');
    } finally {
      process.kill(pid, 'SIGCONT');
      run.kill('SIGKILL');
    }
    // Woken, the target reads what is still in its socket (LOADING until then), then sees the link closed.
    await settled();
    await restoresWhole('after SIGSTOP and SIGCONT');
  }, 180_000);

  it('kill -9 at 6 seeded moments: the target is an empty master, a whole one, or a replica the next restore refuses; never a master with part of the keys', async () => {
    const MARK = 'restoring redis (redis)';
    const full = await runAndKill(['restore', '--plan', 'redis', '--yes', '-c', cfg], { cwd: ws.dir }, { mark: MARK }, 3_600_000);
    expect(full.code, full.stderr).toBe(0);
    const window = full.endedAt - full.triggeredAt!;
    const random = mulberry32(20261207);
    const seen = { empty: 0, whole: 0, replica: 0 };
    for (let i = 0; i < 6; i++) {
      await whenLoaded(() => probe.flushall());
      const at = Math.round(random() * window);
      const run = await runAndKill(['restore', '--plan', 'redis', '--yes', '-c', cfg], { cwd: ws.dir }, { mark: MARK }, at);
      if (!run.killed) expect(run.code, run.stderr).toBe(0);
      await settled(); // a replica loads what was already sent, and notices its master is gone
      const now = await state();
      if (now.role === 'master') {
        expect([0, KEYS], `kill at ${at} ms left a master with ${now.keys} keys`).toContain(now.keys);
        seen[now.keys === 0 ? 'empty' : 'whole']++;
      } else {
        seen.replica++;
        const refused = await runCli(['restore', '--plan', 'redis', '--yes', '-c', cfg], { cwd: ws.dir });
        expect(refused.code, refused.stdout + refused.stderr).toBe(6);
        expect(refused.stderr).toContain('REPLICAOF NO ONE');
      }
      await restoresWhole(`after a kill at ${at} ms`);
    }
    console.log(`kill -9 of a load by replication over 6 seeded points: ${JSON.stringify(seen)}`);
  }, 300_000);
});
