import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AofSource } from '../../src/backends/redis/source/aof-source.js';
import { KeysSource } from '../../src/backends/redis/source/keys-source.js';
import { keySlot } from '../../src/backends/redis/protocol/cluster.js';
import { RedisSource } from '../../src/backends/redis/source/redis-source.js';
import { restoreRedis } from '../../src/backends/redis/target/restore-redis.js';
import { TykdrError } from '../../src/core/errors.js';
import type { CheckResult } from '../../src/core/restore/types.js';
import { classifyKey } from '../../src/core/tyk/key-classes.js';
import { runCli } from '../helpers/cli.js';
import { redisComponent, startRedisCluster, takeSnapshot, type RedisCluster } from '../helpers/redis-cluster.js';
import { startRedis } from '../helpers/redis-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const ALL_CHECKS = ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl', 'redis-replicas'];
const TAKEN = new Set(['must', 'should', 'quota', 'other']);
let cluster: RedisCluster;
let client: Cluster;
const dirs: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Every key of the cluster with a value and its expiry, read through a cluster client. */
async function contents(): Promise<Map<string, { type: string; value: string; expireAt: number }>> {
  const out = new Map<string, { type: string; value: string; expireAt: number }>();
  for (const node of client.nodes('master')) {
    for (const key of await node.keys('*')) {
      const type = await client.type(key);
      const value =
        type === 'string' ? String(await client.get(key))
        : type === 'hash' ? JSON.stringify(Object.entries(await client.hgetall(key)).sort())
        : type === 'set' ? JSON.stringify((await client.smembers(key)).sort())
        : type === 'list' ? JSON.stringify(await client.lrange(key, 0, -1))
        : type === 'zset' ? JSON.stringify(await client.zrange(key, 0, -1, 'WITHSCORES'))
        : type;
      out.set(key, { type, value, expireAt: Number(await client.call('PEXPIRETIME', key)) });
    }
  }
  return out;
}

async function seedCluster(n: number): Promise<void> {
  // A cluster client pipelines only within one slot: send commands concurrently instead (it routes each).
  const ops: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i++) ops.push(client.set(`apikey-${i.toString(16).padStart(32, '0')}`, JSON.stringify({ org_id: 'org1', alias: `u${i}` }), 'EX', 86_400 + i));
  for (let i = 0; i < 20; i++) ops.push(client.set(`oauth-data.api1.oauth-clientid.client${i}`, `{"id":"client${i}"}`));
  ops.push(client.set('quota-abc', '17', 'EX', 3600));
  ops.push(client.set('rate-limit-abc', '3', 'EX', 600));
  ops.push(client.rpush('analytics-tyk-system-analytics', 'rec1', 'rec2'));
  for (let i = 0; i < 300; i++) ops.push(client.hset('{tenant1}coprocess-data:big-hash', `f${i}`, `v${i}`));
  ops.push(client.sadd('{tenant1}app-set', 'a', 'b', 'c'));
  ops.push(client.zadd('app-zset', 1, 'a', 2, 'b'));
  ops.push(client.set('tyk-admin-api-abc', '{"user":"admin"}'));
  await Promise.all(ops);
}

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  client = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })), { lazyConnect: true });
  await client.connect();
  await seedCluster(3000);
});

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const byName = (checks: CheckResult[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

describe('Redis Cluster, mode keys', () => {
  it('backs up every master, FLUSHALL, restores routed by slot, and every check passes', async () => {
    const before = await contents();
    const seed = cluster.nodes[1]!;
    const snap = await takeSnapshot(new KeysSource(redisComponent(`port: ${seed.port}\nmode: keys`)));
    const masters = (snap.facts.cluster as { masters: Array<{ address: string; keys: number }> }).masters;
    expect(masters).toHaveLength(3);
    for (const m of masters) expect(m.keys).toBeGreaterThan(500);
    const taken = [...before.keys()].filter((k) => TAKEN.has(classifyKey(k)));
    expect(snap.facts.total_keys).toBe(taken.length);
    expect(Object.keys(snap.facts.databases as object)).toEqual(['0']);

    await cluster.flushAll();
    expect(await cluster.dbsize()).toBe(0);
    const out = await restoreRedis({
      component: redisComponent(`port: ${seed.port}\nmode: keys\nrestore: { classes: [must, should, quota, other], sample: 500 }`),
      manifest: snap.manifest,
      rdbFile: snap.file,
      workDir: await tempDir('tykdr-cluster-stage-'),
      checks: ALL_CHECKS,
    });
    const checks = byName(out.checks);
    for (const n of ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl']) expect(checks[n]!.status, JSON.stringify(checks[n])).toBe('passed');
    expect(checks['redis-ping']!.detail).toBe('PING answered PONG on all 3 masters; cluster_state:ok');
    expect(checks['redis-key-counts']!.evidence).toMatchObject({ actual_total: taken.length });
    expect(checks['redis-replicas']!.status).toBe('skipped');
    expect((out.details.cluster_masters as unknown[]).length).toBe(3);
    // Each master took the SET probe (MOVED for its key counts as yes): the strings went in by SET.
    expect(out.details.keys_written_with_set).toBeGreaterThan(0);
    expect(out.details.keys_written_with_set).toBeLessThan(taken.length);
    expect(out.details.set_not_used).toBeUndefined();
    const after = await contents();
    for (const k of taken) expect(after.get(k), k).toEqual(before.get(k));
    expect(after.has('rate-limit-abc')).toBe(false);
    expect(after.has('analytics-tyk-system-analytics')).toBe(false);
    // Each key landed on the master that owns its slot (a cluster client reads every one of them above).
    expect(await cluster.dbsize()).toBe(taken.length);
  });

  it('refuses to restore keys of database 3 into a cluster, and RDB/AOF snapshots into it', async () => {
    const standalone = await startRedis();
    try {
      await standalone.cli('SELECT', '3');
      await standalone.cli('-n', '3', 'SET', 'apikey-db3', 'x');
      const snap = await takeSnapshot(new KeysSource(redisComponent(`port: ${standalone.port}\nmode: keys`)));
      const err = await restoreRedis({
        component: redisComponent(`port: ${standalone.port}\nmode: keys\nrestore: { target: { port: ${cluster.nodes[0]!.port} } }`),
        manifest: snap.manifest,
        rdbFile: snap.file,
        workDir: await tempDir('tykdr-cluster-db3-'),
        checks: [],
      }).then(() => null, (e: unknown) => e as TykdrError);
      expect(err?.kind).toBe('targetError');
      expect(err?.message).toContain('the snapshot holds keys in database 3, but the Redis Cluster at');
      const rdb = await takeSnapshot(new RedisSource(redisComponent(`port: ${standalone.port}`)));
      const err2 = await restoreRedis({
        component: redisComponent(`port: ${standalone.port}\nrestore: { target: { port: ${cluster.nodes[0]!.port} } }`),
        manifest: rdb.manifest,
        rdbFile: rdb.file,
        workDir: await tempDir('tykdr-cluster-rdb-'),
        checks: [],
      }).then(() => null, (e: unknown) => e as TykdrError);
      expect(err2?.message).toMatch(/runs in cluster mode: tykdr restores a Redis Cluster only from key-level snapshots/);
    } finally {
      await standalone.stop();
    }
  });

  it('mode rdb and mode aof refuse a cluster node (an RDB or AOF of one node holds only its slots)', async () => {
    const port = cluster.nodes[0]!.port;
    const rdb = await new RedisSource(redisComponent(`port: ${port}`)).check().then(() => null, (e: unknown) => e as TykdrError);
    expect(rdb?.message).toMatch(/runs in cluster mode: an RDB of one node holds only the slots that node serves/);
    expect(rdb?.fix).toContain('mode: keys');
    const aof = await new AofSource(redisComponent(`port: ${port}\nmode: aof`)).check().then(() => null, (e: unknown) => e as TykdrError);
    expect(aof?.message).toMatch(/runs in cluster mode: its AOF holds only this node's slots/);
  });

  it('the masters are scanned at once; one whose connection is reset fails the backup by name, and the others stop', async () => {
    // Its own cluster with more keys and small pages: a reset of one master's connections mid-scan.
    const own = await startRedisCluster(3);
    const c = new Cluster(own.nodes.map((n) => ({ host: n.host, port: n.port })), { lazyConnect: true });
    try {
      await c.connect();
      await Promise.all(Array.from({ length: 9000 }, (_, i) => c.set(`apikey-${i.toString(16).padStart(32, '0')}`, `{"i":${i}}`)));
      const victim = own.nodes[2]!;
      const seen = new Set<string>();
      let reset: Promise<string> | undefined;
      const source = new KeysSource(redisComponent(`port: ${own.nodes[0]!.port}\nmode: keys\nkeys: { batchSize: 20 }`), {
        onProgress: (e) => {
          if (!reset && e.keys >= 600) reset = victim.cli('CLIENT', 'KILL', 'TYPE', 'normal');
        },
      });
      const artifact = await source.open();
      // Records of every master arrive before any master is done: the scans run side by side.
      let bytes = 0;
      const err = await (async () => {
        for await (const chunk of artifact.stream as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          for (const m of chunk.toString('latin1').matchAll(/apikey-([0-9a-f]{32})/g)) seen.add(m[1]!);
        }
      })().then(() => null, (e: unknown) => e as Error);
      await reset;
      expect(err, 'the backup went through a reset master').toBeInstanceOf(TykdrError);
      expect(err!.message).toContain(`${victim.host}:${victim.port}`);
      expect(bytes).toBeGreaterThan(0);
      // Every master had keys in the stream before the failure ended it.
      const owners = new Set<number>();
      for (const hex of seen) {
        const slot = keySlot(Buffer.from(`apikey-${hex}`));
        owners.add(slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2); // the nodes' slot ranges, in creation order
      }
      expect(owners.size).toBe(3);
      // The other masters' scans stopped and closed their connections (only redis-cli's own is left, once the
      // servers have seen the closes: a closed socket leaves a server's client list a moment later).
      await c.quit();
      for (const n of own.nodes.slice(0, 2)) {
        let clients: string[] = [];
        for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
          clients = (await n.cli('CLIENT', 'LIST', 'TYPE', 'normal')).split('\n').filter(Boolean);
          if (clients.length === 1) break;
        }
        expect(clients, clients.join('\n')).toHaveLength(1);
      }
    } finally {
      c.disconnect();
      await own.stop();
    }
  });

  it('tykdr backup and restore of a cluster through the CLI', async () => {
    let ws: Workspace | undefined;
    try {
      ws = await makeWorkspace();
      const file = await ws.writeConfig(
        'cluster.yaml',
        `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${cluster.nodes[2]!.port}
    mode: keys
restore: { reportDir: ./reports }
`,
      );
      const before = await contents();
      const b = await runCli(['backup', '-c', file, '--json']);
      expect(b.code, b.stderr).toBe(0);
      const id = JSON.parse(b.stdout).id as string;
      const manifest = JSON.parse(await readFile(path.join(ws.storeDir, 'snapshots', id, 'manifest.json'), 'utf8'));
      expect(manifest.components.redis.source.cluster.masters).toHaveLength(3);
      await cluster.flushAll();
      const r = await runCli(['restore', '--plan', 'redis', '-c', file, '--yes', '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const after = await contents();
      for (const [k, v] of before) if (['must', 'should', 'other'].includes(classifyKey(k))) expect(after.get(k), k).toEqual(v);
      expect(after.has('quota-abc')).toBe(false); // the default restore classes leave quota out
    } finally {
      await ws?.cleanup();
    }
  });
});
