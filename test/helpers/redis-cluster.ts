import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import type { Source } from '../../src/core/interfaces/source.js';
import { parseConfig, type RedisComponent } from '../../src/core/config/load.js';
import type { ManifestComponent } from '../../src/core/manifest.js';
import { startRedis, type RedisServer } from './redis-server.js';

/*
 * Helpers for the Redis Cluster, key-level and AOF tests: a real 3-master cluster, snapshots taken by a
 * source straight to a plaintext file (with the manifest entry the backup would write), and a binary-safe
 * dump of a server's contents to compare before and after a restore.
 */

const execFileP = promisify(execFile);

export interface RedisCluster {
  /** The masters, in the order they were created (slot ranges ascending). */
  nodes: RedisServer[];
  /** redis-cli against one node, following MOVED redirects (-c). */
  cli(node: number, ...args: string[]): Promise<string>;
  /** Sum of DBSIZE over the masters. */
  dbsize(): Promise<number>;
  /** FLUSHALL on every master. */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of `masters` redis-servers (no replicas) on free ports: each started with
 * cluster-enabled yes, joined with `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`,
 * then waited for until every node says cluster_state:ok.
 */
export async function startRedisCluster(masters = 3, opts: { password?: string } = {}): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedis({
          password: opts.password,
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000', ...(opts.password ? ['--masterauth', opts.password] : [])],
        }),
      );
    }
    const auth = opts.password ? ['-a', opts.password, '--no-auth-warning'] : [];
    await execFileP('redis-cli', [...auth, '--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 60_000 });
    const deadline = Date.now() + 30_000;
    for (const n of nodes) {
      while (!/cluster_state:ok/.test(await n.cli('CLUSTER', 'INFO'))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${n.port} did not reach cluster_state:ok`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Every node must know every other one's slots before clients are pointed at it.
    for (const n of nodes) {
      while ((await n.cli('CLUSTER', 'NODES')).split('\n').filter((l) => /master/.test(l) && /\d+-\d+/.test(l)).length < masters) {
        if (Date.now() > deadline) throw new Error(`cluster node ${n.port} does not see ${masters} masters`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const auth = opts.password ? ['-a', opts.password, '--no-auth-warning'] : [];
  return {
    nodes,
    cli: async (node, ...args) => {
      const n = nodes[node]!;
      const { stdout } = await execFileP('redis-cli', ['-c', '-h', n.host, '-p', String(n.port), ...auth, ...args], { maxBuffer: 64 * 1024 * 1024 });
      return stdout.trim();
    },
    dbsize: async () => (await Promise.all(nodes.map((n) => n.cli('DBSIZE')))).reduce((a, s) => a + Number(s), 0),
    flushAll: async () => {
      await Promise.all(nodes.map((n) => n.cli('FLUSHALL')));
    },
    stop,
  };
}

// ---- snapshots and contents ----

/** A component as `tykdr.yaml` would give it (defaults applied by the real schema). */
export function redisComponent(redisYaml: string): RedisComponent {
  const yaml = `store: { kind: local, path: /tmp/unused }\nencryption: { recipients: [] }\ncomponents:\n  redis:\n    kind: redis\n${redisYaml
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;
  return parseConfig(yaml, '/tmp/tykdr-test.yaml').components.redis as RedisComponent;
}

/** Runs a source into a plaintext file, as the backup would (without compression and encryption), and builds its manifest entry. */
export async function takeSnapshot(source: Source, dir?: string): Promise<{ file: string; manifest: ManifestComponent; facts: Record<string, unknown>; ms: number }> {
  const folder = dir ?? (await mkdtemp(path.join(tmpdir(), 'tykdr-snap-')));
  const started = Date.now();
  const artifact = await source.open();
  const file = path.join(folder, `redis.${artifact.format}`);
  await pipeline(artifact.stream, createWriteStream(file));
  const facts = await artifact.finish();
  const ms = Date.now() - started;
  const size = (await stat(file)).size;
  const manifest: ManifestComponent = {
    kind: 'redis',
    tier: 'critical',
    objective: { rto_seconds: 900, rpo_seconds: 300 },
    consistent_at: artifact.consistentAt.toISOString(),
    started_at: new Date(started).toISOString(),
    duration_ms: ms,
    artifact: { name: `redis.${artifact.format}.zst.age`, format: artifact.format, compression: 'zstd', encryption: 'age', plaintext_bytes: size, stored_bytes: size, sha256: '0'.repeat(64) },
    source: facts.source,
  };
  return { file, manifest, facts: facts.source, ms };
}

export interface KeyState {
  value: string;
  /** Absolute expiry (PEXPIRETIME), -1 without one. */
  expireAt: number;
}

/** Every key of a server (given databases, binary-safe) with a type-aware value and its absolute expiry. */
export async function redisContents(port: number, dbs: number[], password?: string): Promise<Map<string, KeyState>> {
  const out = new Map<string, KeyState>();
  const hex = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString('hex') : Array.isArray(v) ? v.map(hex) : v);
  for (const db of dbs) {
    const r = new Redis({ port, host: '127.0.0.1', db, password, lazyConnect: true });
    await r.connect();
    try {
      for (const key of await r.keysBuffer('*')) {
        const type = await r.type(key);
        let value: unknown;
        if (type === 'string') value = await r.getBuffer(key);
        else if (type === 'hash') value = ((await r.callBuffer('HGETALL', key)) as Buffer[]).reduce<Buffer[][]>((a, b, i) => (i % 2 ? a[a.length - 1]!.push(b) : a.push([b]), a), []).sort((x, y) => Buffer.compare(x[0]!, y[0]!));
        else if (type === 'list') value = await r.lrangeBuffer(key, 0, -1);
        else if (type === 'set') value = ((await r.smembersBuffer(key)) as Buffer[]).sort(Buffer.compare);
        else if (type === 'zset') value = await r.callBuffer('ZRANGE', key, '0', '-1', 'WITHSCORES');
        else if (type === 'stream') value = await r.callBuffer('XRANGE', key, '-', '+');
        out.set(`${db}/${key.toString('latin1')}`, { value: `${type}:${JSON.stringify(hex(value))}`, expireAt: Number(await r.call('PEXPIRETIME', key)) });
      }
    } finally {
      r.disconnect();
    }
  }
  return out;
}

/** Hashes, sets, sorted sets, lists, a stream and a binary-named key, small (listpack) and large (hash table). */
export async function seedTypes(port: number, db = 0, password?: string): Promise<void> {
  const r = new Redis({ port, host: '127.0.0.1', db, password, lazyConnect: true });
  await r.connect();
  const p = r.pipeline();
  p.hset('coprocess-data:small-hash', { a: '1', b: Buffer.from([0, 255, 1]) });
  for (let i = 0; i < 300; i++) p.hset('coprocess-data:big-hash', `field-${i}`, `value-${i}-${'x'.repeat(i % 50)}`);
  for (let i = 0; i < 300; i++) p.sadd('app-big-set', `member-${i}`);
  p.sadd('app-int-set', 1, 2, 3, 500);
  p.zadd('app-zset', 1.5, 'a', 2, 'b', -3.25, 'c');
  for (let i = 0; i < 200; i++) p.zadd('app-big-zset', i * 1.5, `m-${i}-${'y'.repeat(70)}`);
  p.rpush('app-list', 'x', 'y', 'z');
  p.xadd('app-events', '*', 'k', 'v');
  p.set(Buffer.from([0x61, 0x70, 0x69, 0x6b, 0x65, 0x79, 0x2d, 0xff, 0x00]), 'binary-named key');
  p.set('coprocess-data:with-ttl', 'soon', 'PX', 3_600_000);
  await p.exec();
  r.disconnect();
}
