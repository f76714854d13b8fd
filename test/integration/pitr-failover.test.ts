import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startRedis, startSentinel, type RedisServer } from '../helpers/redis-server.js';
import { startStream } from '../helpers/stream.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * Point-in-time capture through a Sentinel failover (1 master, 2 replicas, 3 sentinels, started here): the
 * capture follows the new master and continues the same replication history (no gap), or says there is a gap
 * and starts a new base; either way a restore to the end holds exactly what the new master holds.
 */

const MASTER = 'pitrmaster';
let nodes: RedisServer[] = [];
let sentinels: RedisServer[] = [];
let target: RedisServer;
let ws: Workspace;
let config: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function masterPort(): Promise<number> {
  const c = new Redis({ port: sentinels[0]!.port, lazyConnect: true });
  await c.connect();
  try {
    const [, port] = (await c.call('SENTINEL', 'get-master-addr-by-name', MASTER)) as [string, string];
    return Number(port);
  } finally {
    c.disconnect();
  }
}

async function digest(port: number): Promise<Record<string, string>> {
  const c = new Redis({ port, lazyConnect: true });
  await c.connect();
  const out: Record<string, string> = {};
  for (const k of (await c.keys('*')).filter((k) => !k.startsWith('tykdr:'))) out[k] = createHash('sha256').update((await c.dumpBuffer(k))!).digest('hex');
  c.disconnect();
  return out;
}

beforeAll(async () => {
  const master = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
  const replicas = await Promise.all([0, 1].map(() => startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port), '--repl-diskless-sync-delay', '0'] })));
  nodes = [master, ...replicas];
  sentinels = await Promise.all([0, 1, 2].map(() => startSentinel({ masterName: MASTER, master: { host: '127.0.0.1', port: master.port }, quorum: 2, downAfterMs: 2000 })));
  target = await startRedis();
  await until('sentinels see each other and the replicas', async () => {
    const c = new Redis({ port: sentinels[0]!.port, lazyConnect: true });
    await c.connect();
    const m = (await c.call('SENTINEL', 'master', MASTER)) as string[];
    c.disconnect();
    const f = Object.fromEntries(m.flatMap((v, i) => (i % 2 === 0 ? [[v, m[i + 1]]] : [])));
    return Number(f['num-other-sentinels']) === 2 && Number(f['num-slaves']) >= 2;
  });
  ws = await makeWorkspace();
  config = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    sentinel:
      masterName: ${MASTER}
      sentinels: [${sentinels.map((s) => `{ host: 127.0.0.1, port: ${s.port} }`).join(', ')}]
    restore: { target: { host: 127.0.0.1, port: ${target.port} } }
`,
  );
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([...sentinels, ...nodes, target].filter(Boolean).map((s) => s.stop()));
  await ws?.cleanup();
});

describe('point-in-time capture across a Sentinel failover', () => {
  it('follows the new master; a restore to the end equals the new master', async () => {
    const first = await masterPort();
    const writeTo = async (port: number, prefix: string) => {
      const c = new Redis({ port });
      for (let i = 0; i < 200; i++) await c.set(`${prefix}:${i}`, `${prefix}-${i}`);
      await c.hset(`${prefix}:hash`, { a: '1' });
      c.disconnect();
    };
    await writeTo(first, 'seed');
    const stream = startStream(config);
    const { child, exited } = stream;
    try {
      await until('the chain starts', async () => /chain \S+ started/.test(stream.stderr()));
      await writeTo(first, 'before');
      await sleep(1500);
      const c = new Redis({ port: sentinels[0]!.port, lazyConnect: true });
      await c.connect();
      await c.call('SENTINEL', 'FAILOVER', MASTER);
      c.disconnect();
      await until('a new master', async () => (await masterPort()) !== first);
      const second = await masterPort();
      await until('the capture continues on the new master (or reports a gap)', async () => /continued after a failover|GAP:/.test(stream.stderr()), 90_000).catch((e: Error) => {
        throw new Error(`${e.message}; tykdr stream said:\n${stream.stderr()}`);
      });
      await writeTo(second, 'after');
      await sleep(2500);
      child.kill('SIGTERM');
      expect(await exited, stream.stderr()).toBe(0);
      const err = stream.stderr();

      // What happened is said plainly.
      const continued = /continued after a failover on 127\.0\.0\.1:(\d+)/.exec(err);
      const gap = /GAP: nothing is captured from/.test(err);
      expect(continued !== null || gap, err).toBe(true);
      if (continued) expect(Number(continued[1])).toBe(second);

      const r = await runCli(['restore', '--config', config, '--plan', 'redis', '--to-time', new Date().toISOString(), '--yes', '--json']);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      expect(await digest(target.port)).toEqual(await digest(second));
      const keys = Object.keys(await digest(target.port));
      expect(keys.filter((k) => /^after:\d+$/.test(k))).toHaveLength(200);
      expect(keys.filter((k) => /^before:\d+$/.test(k))).toHaveLength(200);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
