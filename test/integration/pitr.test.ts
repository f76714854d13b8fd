import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';
import { startRedis, type RedisServer, type ServerKind } from '../helpers/redis-server.js';
import { startStream } from '../helpers/stream.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * Point-in-time restore of Redis (issue 13, part 1), against real servers: `tykdr stream` captures a master
 * while a writer changes it at known moments; a "human error" deletes keys; restores to moments before it
 * bring back exactly the keyspace captured then (every value by DUMP, every absolute expiry).
 */

interface KeyState {
  dump: string;
  pexpireAt: number;
}

async function keyspace(r: Redis): Promise<Map<string, KeyState>> {
  const out = new Map<string, KeyState>();
  for (const k of (await r.keys('*')).filter((k) => !k.startsWith('tykdr:')).sort()) {
    const pttl = Number(await r.pttl(k));
    out.set(k, { dump: createHash('sha256').update((await r.dumpBuffer(k))!).digest('hex'), pexpireAt: pttl < 0 ? pttl : Date.now() + pttl });
  }
  return out;
}

/** Same keys and values; expiries equal within `slackMs` (PTTL is read at a slightly different moment). */
function expectSameKeyspace(got: Map<string, KeyState>, want: Map<string, KeyState>, slackMs = 1500): void {
  expect([...got.keys()]).toEqual([...want.keys()]);
  for (const [k, w] of want) {
    const g = got.get(k)!;
    expect(g.dump, k).toBe(w.dump);
    if (w.pexpireAt < 0) expect(g.pexpireAt, k).toBe(w.pexpireAt);
    else expect(Math.abs(g.pexpireAt - w.pexpireAt), k).toBeLessThan(slackMs);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each<ServerKind>(['redis-7.0', 'redis-6.2'])('point-in-time restore from %s', (server) => {
  let source: RedisServer;
  let target: RedisServer;
  let ws: Workspace;
  let config: string;
  let writer: Redis;
  let targetClient: Redis;
  /** lastWrite: when the phase's last write was answered; at: a quiet moment after it. */
  const moments: Array<{ at: Date; lastWrite: number; keyspace: Map<string, KeyState> }> = [];
  let streamErr = '';

  beforeAll(async () => {
    [source, target, ws] = await Promise.all([
      startRedis({ server, args: ['--repl-diskless-sync-delay', '0'] }),
      startRedis({ server }),
      makeWorkspace(),
    ]);
    config = await ws.writeConfig(
      'tykdr.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${source.port}
    restore: { target: { port: ${target.port} } }
`,
    );
    writer = new Redis({ port: source.port });
    targetClient = new Redis({ port: target.port });
    for (let i = 0; i < 50; i++) await writer.set(`before:${i}`, `v${i}`);
    const s = startStream(config);
    await s.started;
    // Phase A: strings with relative expiries (6.2 propagates them as sent), hashes, a list, db 3.
    for (let i = 0; i < 100; i++) {
      await writer.set(`a:${i}`, `value-${i}`, 'EX', 3600 + i);
      if (i % 10 === 0) await writer.hset(`h:${i}`, { f: String(i), g: 'x' });
    }
    await writer.rpush('list', 'x', 'y', 'z');
    await writer.expire('list', 7200);
    await writer.select(3);
    await writer.set('in-db-3', 'yes');
    await writer.select(0);
    let lastWrite = Date.now();
    await sleep(2000);
    moments.push({ at: new Date(), lastWrite, keyspace: await keyspace(writer) });
    await sleep(2000);
    // Phase B: changes, then a quiet moment, then the "human error".
    for (let i = 0; i < 100; i += 3) await writer.set(`a:${i}`, `changed-${i}`);
    await writer.del('h:10');
    await writer.setex('b:setex', 900, 'short');
    await writer.incrby('counter', 7);
    lastWrite = Date.now();
    await sleep(2000);
    moments.push({ at: new Date(), lastWrite, keyspace: await keyspace(writer) });
    await sleep(2000);
    const doomed = await writer.keys('a:*');
    await writer.del(...doomed);
    await writer.flushdb();
    await sleep(2500);
    s.child.kill('SIGTERM');
    const code = await s.exited;
    streamErr = s.stderr();
    expect(code, streamErr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    writer?.disconnect();
    targetClient?.disconnect();
    await Promise.allSettled([source?.stop(), target?.stop()]);
    await ws?.cleanup();
  });

  it('captured a base snapshot and contiguous segments', async () => {
    expect(streamErr).toMatch(/base snapshot \S+ at offset \d+/);
    const chains = await readdir(path.join(ws.dir, 'store', 'streams'));
    expect(chains).toHaveLength(1);
    const files = await readdir(path.join(ws.dir, 'store', 'streams', chains[0]!));
    const metas = files.filter((f) => /^seg-\d{8}\.json$/.test(f)).sort();
    expect(metas.length).toBeGreaterThanOrEqual(3);
    let next = -1;
    for (const m of metas) {
      const rec = JSON.parse(await readFile(path.join(ws.dir, 'store', 'streams', chains[0]!, m), 'utf8')) as { start_offset: number; end_offset: number };
      if (next >= 0) expect(rec.start_offset).toBe(next);
      next = rec.end_offset + 1;
    }
  });

  it.each([1, 0])('restores to the moment captured before change %i, exactly', async (n) => {
    await targetClient.flushall();
    const want = moments[n]!;
    const r = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', want.at.toISOString(), '--yes', '--json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const out = JSON.parse(r.stdout) as { report: { status: string; point_in_time: { reached: string; segments: number }; steps: Array<{ id: string; status: string; details: { commands: number; errors: number } }> } };
    expect(out.report.status).toBe('succeeded');
    const replay = out.report.steps.find((s) => s.id === 'redis-replay')!;
    expect(replay.status).toBe('ok');
    expect(replay.details.errors).toBe(0);
    expect(replay.details.commands).toBeGreaterThan(0);
    expect(new Date(out.report.point_in_time.reached).getTime()).toBeLessThanOrEqual(want.at.getTime());
    // The point reached is the last moment the chain is known to cover: at or after the phase's last write
    // arrived (its arrival mark, or the close of the segment holding it), never after the time asked.
    expect(new Date(out.report.point_in_time.reached).getTime()).toBeGreaterThanOrEqual(want.lastWrite - 250);
    expectSameKeyspace(await keyspace(targetClient), want.keyspace);
    await targetClient.select(3);
    expect(await targetClient.get('in-db-3')).toBe('yes');
    await targetClient.select(0);
  });

  it('docs/FORMAT.md: a chain replayed by hand (age, zstd, redis-cli --pipe) over the base reaches the same keyspace', async () => {
    await targetClient.flushall();
    const store = path.join(ws.dir, 'store');
    const chain = (await readdir(path.join(store, 'streams')))[0]!;
    const base = await runCli(['restore', '--config', config, '--plan', 'redis', '--snapshot', chain, '--yes']);
    expect(base.code, base.stderr).toBe(0);
    // The last segment that closed before moment 1: it holds the end of phase B (a quiet 1.5 s follows it).
    const dir = path.join(store, 'streams', chain);
    const metas = (await readdir(dir)).filter((f) => /^seg-\d{8}\.json$/.test(f)).sort();
    let until = '';
    for (const m of metas) {
      const rec = JSON.parse(await readFile(path.join(dir, m), 'utf8')) as { to: string };
      if (new Date(rec.to).getTime() <= moments[1]!.at.getTime()) until = m.replace(/\.json$/, '');
    }
    expect(until).not.toBe('');
    const block = [...(await readFile(path.join(repoRoot, 'docs/FORMAT.md'), 'utf8')).matchAll(/```sh pitr-runbook\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(block).toHaveLength(1);
    const { execFile } = await import('node:child_process');
    const work = path.join(ws.dir, 'pitr-work');
    await (await import('node:fs/promises')).mkdir(work, { recursive: true });
    await new Promise<void>((resolve, reject) =>
      execFile('bash', ['-euo', 'pipefail', '-c', block[0]!], { env: { ...process.env, CHAIN: dir, IDENTITY: ws.identityFile, WORK: work, PORT: String(target.port), UNTIL: until } }, (err, _o, e) =>
        err ? reject(new Error(`${err.message}\n${e}`)) : resolve(),
      ),
    );
    const got = await keyspace(targetClient);
    const want = moments[1]!.keyspace;
    expect([...got.keys()]).toEqual([...want.keys()]);
    for (const [k, w] of want) expect(got.get(k)!.dump, k).toBe(w.dump);
    // Redis 7 sends absolute expiries, so a hand replay keeps them; 6.2's relative ones restart at the replay.
    if (server !== 'redis-6.2') expectSameKeyspace(got, want);
  });

  it('--dry-run names the chain and the point it reaches, and writes nothing', async () => {
    await targetClient.flushall();
    const r = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', moments[1]!.at.toISOString(), '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Point-in-time restore of redis to .*: base snapshot \S+, then \d+ segment\(s\) of chain/);
    expect(await targetClient.dbsize()).toBe(0);
  });

  it('a time before any chain is refused with the ranges there are (exit 2), and a changed segment before any write (exit 5)', async () => {
    await targetClient.flushall();
    const early = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', '2020-01-01T00:00:00Z', '--yes']);
    expect(early.code).toBe(2);
    expect(early.stderr).toContain('no point-in-time chain');
    expect(early.stderr).toContain('chains cover: redis:');

    const dir = path.join(ws.dir, 'store', 'streams', (await readdir(path.join(ws.dir, 'store', 'streams')))[0]!);
    const seg = path.join(dir, 'seg-00000001.resp.zst.age');
    const bytes = await readFile(seg);
    const bad = Buffer.from(bytes);
    bad[bad.length - 20]! ^= 1;
    await writeFile(seg, bad);
    const r = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', moments[1]!.at.toISOString(), '--yes']);
    await writeFile(seg, bytes);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('segment seg-00000001');
    expect(await targetClient.dbsize()).toBe(0);
  });
});
