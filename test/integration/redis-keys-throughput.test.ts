import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AofSource } from '../../src/backends/redis/source/aof-source.js';
import { KeysSource } from '../../src/backends/redis/source/keys-source.js';
import { RedisSource } from '../../src/backends/redis/source/redis-source.js';
import { restoreRedis } from '../../src/backends/redis/target/restore-redis.js';
import { runCli } from '../helpers/cli.js';
import { redisComponent, takeSnapshot } from '../helpers/redis-cluster.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * Figures, not assertions on time: key-level backup (SCAN + DUMP + PEXPIRETIME) against the RDB mode
 * (SYNC) and the AOF copy, on 200,000 Tyk-like session keys. Printed as [keys throughput] lines.
 */
const KEYS = 200_000;
let src: RedisServer;
let ws: Workspace;
const dirs: string[] = [];

beforeAll(async () => {
  [src, ws] = await Promise.all([startRedis({ args: ['--appendonly', 'yes'] }), makeWorkspace()]);
  const r = new Redis({ port: src.port, lazyConnect: true });
  await r.connect();
  for (let i = 0; i < KEYS; i += 10_000) {
    const p = r.pipeline();
    for (let j = i; j < i + 10_000; j++) {
      p.set(`apikey-${j.toString(16).padStart(32, '0')}`, JSON.stringify({ org_id: 'org1', alias: `u${j}`, access_rights: { api1: { api_id: 'api1', versions: ['Default'] } }, last_updated: '1700000000' }), 'EX', 86_400 + (j % 1000));
    }
    await p.exec();
  }
  await r.bgrewriteaof();
  while (/aof_rewrite_in_progress:1/.test(String(await r.info('persistence')))) await new Promise((res) => setTimeout(res, 50));
  r.disconnect();
});

afterAll(async () => {
  await src?.stop();
  await ws?.cleanup();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const rate = (n: number, ms: number) => Math.round((n * 1000) / ms);

describe('key-level backup throughput (printed, not asserted)', () => {
  it(`reads ${KEYS} keys: mode keys vs mode rdb vs mode aof, source only and through tykdr backup`, async () => {
    const keys = await takeSnapshot(new KeysSource(redisComponent(`port: ${src.port}\nmode: keys`)));
    const rdb = await takeSnapshot(new RedisSource(redisComponent(`port: ${src.port}`)));
    const aof = await takeSnapshot(new AofSource(redisComponent(`port: ${src.port}\nmode: aof`)));
    for (const s of [keys, rdb, aof]) dirs.push(path.dirname(s.file));
    expect(keys.facts.total_keys).toBe(KEYS);
    expect(rdb.facts.total_keys).toBe(KEYS);
    const mb = (s: typeof keys) => (s.manifest.artifact.plaintext_bytes / 1e6).toFixed(1);
    console.log(`[keys throughput] source only: keys ${keys.ms} ms = ${rate(KEYS, keys.ms)} keys/s (${mb(keys)} MB); rdb ${rdb.ms} ms = ${rate(KEYS, rdb.ms)} keys/s (${mb(rdb)} MB); aof ${aof.ms} ms = ${rate(KEYS, aof.ms)} keys/s (${mb(aof)} MB)`);

    const cli: Record<string, number> = {};
    for (const mode of ['keys', 'rdb', 'aof']) {
      const file = await ws.writeConfig(`${mode}.yaml`, `store: { kind: local, path: ./store }\nencryption: { recipients: [${ws.recipient}] }\ncomponents:\n  redis: { kind: redis, port: ${src.port}, mode: ${mode} }\n`);
      const started = Date.now();
      const res = await runCli(['backup', '-c', file, '--json']);
      cli[mode] = Date.now() - started;
      expect(res.code, `${mode}: ${res.stdout}${res.stderr}`).toBe(0);
    }
    console.log(`[keys throughput] tykdr backup (zstd + age, local store, incl. CLI start): ${Object.entries(cli).map(([m, ms]) => `${m} ${ms} ms = ${rate(KEYS, ms)} keys/s`).join('; ')}`);

    const target = await startRedis();
    try {
      const work = await mkdtemp(path.join(tmpdir(), 'tykdr-keys-tp-'));
      dirs.push(work);
      const started = Date.now();
      const out = await restoreRedis({
        component: redisComponent(`port: ${src.port}\nmode: keys\nrestore: { target: { port: ${target.port} } }`),
        manifest: keys.manifest,
        rdbFile: keys.file,
        workDir: work,
        checks: ['redis-key-counts', 'redis-sample', 'redis-ttl'],
      });
      const total = Date.now() - started;
      for (const c of out.checks) expect(c.status, c.detail).toBe('passed');
      console.log(`[keys throughput] restore of the keys stream: ${String(out.details.keys_restored)} keys RESTOREd in ${String(out.details.write_ms)} ms = ${String(out.details.keys_per_second)} keys/s (whole restore with the validation pass and checks: ${total} ms)`);
    } finally {
      await target.stop();
    }
  });
});
