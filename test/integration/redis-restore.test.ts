import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxRdbVersion, minRedisForRdb } from '../../src/backends/redis/formats/rdb-versions.js';
import { restoreRedis } from '../../src/backends/redis/target/restore-redis.js';
import { Reservoir } from '../../src/backends/redis/target/reservoir.js';
import { fingerprintSample } from '../../src/backends/redis/target/snapshot-sample.js';
import { RedisPool } from '../../src/backends/redis/protocol/target-connection.js';
import { RdbInspector } from '../../src/backends/redis/formats/rdb-inspector.js';
import { parseConfig, type RedisComponent } from '../../src/core/config/load.js';
import { TykdrError } from '../../src/core/errors.js';
import type { ManifestComponent } from '../../src/core/manifest.js';
import type { CheckResult } from '../../src/core/restore/types.js';
import { classifyKey, emptyClassCounts, type KeyClass } from '../../src/core/tyk/key-classes.js';
import { checkKeyCounts, checkSample, checkTtl, observeSample } from '../../src/backends/redis/target/redis-checks.js';
import { KeyExpectation } from '../../src/backends/redis/target/key-expectation.js';
import { freePort } from '../helpers/net.js';
import { diffKeyspaces, readKeyspace } from '../helpers/redis-keyspace.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeTlsFiles } from '../helpers/tls.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { useCleanups } from '../helpers/cleanups.js';
import { waitFor } from '../helpers/wait.js';

const execFileP = promisify(execFile);
const ALL_CHECKS = ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl', 'redis-replicas'];
const { cleanups, tempDir } = useCleanups();

async function server(opts: Parameters<typeof startRedis>[0] = {}): Promise<RedisServer> {
  const s = await startRedis(opts);
  cleanups.push(() => s.stop());
  return s;
}

function client(port: number, db = 0, password?: string): Redis {
  const r = new Redis({ port, host: '127.0.0.1', db, password, lazyConnect: false });
  cleanups.push(async () => r.disconnect());
  return r;
}

/** A component as `tykdr.yaml` would give it (defaults applied by the real schema). */
function component(redisYaml: string): RedisComponent {
  const yaml = `store: { kind: local, path: /tmp/unused }\nencryption: { recipients: [] }\ncomponents:\n  redis:\n    kind: redis\n${redisYaml
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;
  return parseConfig(yaml, '/tmp/tykdr-test.yaml').components.redis as RedisComponent;
}

/** Streams the source's RDB like `redis-cli --rdb` and builds the manifest entry the backup would write. */
async function snapshot(src: RedisServer): Promise<{ rdbFile: string; manifest: ManifestComponent; dir: string }> {
  const dir = await tempDir('tykdr-rr-snap-');
  const rdbFile = path.join(dir, 'staged.rdb');
  await execFileP('redis-cli', ['-p', String(src.port), '--rdb', rdbFile]);
  const classes: Record<string, Record<KeyClass, number>> = {};
  const inspector = new RdbInspector({ onKey: (db, key) => (classes[db] ??= emptyClassCounts())[classifyKey(key)]++ });
  await pipeline(createReadStream(rdbFile), inspector, new Writable({ write: (_c, _e, cb) => cb() }));
  const f = inspector.facts();
  const manifest: ManifestComponent = {
    kind: 'redis',
    tier: 'critical',
    objective: { rto_seconds: 900, rpo_seconds: 300 },
    consistent_at: new Date().toISOString(),
    started_at: new Date().toISOString(),
    duration_ms: 1,
    artifact: { name: 'redis.rdb.zst.age', format: 'rdb', compression: 'zstd', encryption: 'age', plaintext_bytes: f.bytes, stored_bytes: f.bytes, sha256: '0'.repeat(64) },
    source: { redis_version: (await src.cli('INFO', 'server')).match(/redis_version:(\S+)/)![1], rdb_version: f.rdbVersion, databases: f.databases, total_keys: f.totalKeys, key_classes: classes, tyk_db: 0 },
  };
  return { rdbFile, manifest, dir };
}

/** A private copy of the staged file (rdb-file mode moves it). */
async function stagedCopy(snap: { rdbFile: string }): Promise<{ rdbFile: string; workDir: string }> {
  const dir = await tempDir('tykdr-rr-stage-');
  const rdbFile = path.join(dir, 'staged.rdb');
  await copyFile(snap.rdbFile, rdbFile);
  const workDir = path.join(dir, 'work');
  return { rdbFile, workDir };
}

/** Every key of a server (all databases, binary-safe) with a type-aware value and its absolute expiry. */
async function contents(port: number, dbs: number[], password?: string): Promise<Map<string, { value: string; expireAt: number }>> {
  const out = new Map<string, { value: string; expireAt: number }>();
  const hex = (v: unknown): unknown => (Buffer.isBuffer(v) ? v.toString('hex') : Array.isArray(v) ? v.map(hex) : v);
  for (const db of dbs) {
    const r = client(port, db, password);
    for (const key of await r.keysBuffer('*')) {
      const type = await r.type(key);
      let value: unknown;
      if (type === 'string') value = await r.getBuffer(key);
      else if (type === 'hash') value = await r.callBuffer('HGETALL', key);
      else if (type === 'list') value = await r.lrangeBuffer(key, 0, -1);
      else if (type === 'set') value = ((await r.smembersBuffer(key)) as Buffer[]).sort(Buffer.compare);
      else if (type === 'zset') value = await r.callBuffer('ZRANGE', key, '0', '-1', 'WITHSCORES');
      else if (type === 'stream') value = await r.callBuffer('XRANGE', key, '-', '+');
      out.set(`${db}/${key.toString('latin1')}`, { value: `${type}:${JSON.stringify(hex(value))}`, expireAt: Number(await r.call('PEXPIRETIME', key)) });
    }
    r.disconnect();
  }
  return out;
}

const byName = (checks: CheckResult[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

async function expectRejects(p: Promise<unknown>): Promise<TykdrError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TykdrError);
  return err as TykdrError;
}

describe('live mode', () => {
  let src: RedisServer;
  let snap: Awaited<ReturnType<typeof snapshot>>;
  let sourceData: Map<string, { value: string; expireAt: number }>;

  beforeAll(async () => {
    src = await server();
    await seedTykRedis(src.port, { sessions: 40 });
    await seedTykRedis(src.port, { sessions: 5, db: 3 });
    const r = client(src.port);
    await r.hset('coprocess-data:hash', { a: '1', b: Buffer.from([0, 255, 1]) });
    await r.xadd('app-events', '*', 'k', 'v');
    await r.set(Buffer.from([0x61, 0x70, 0x69, 0x6b, 0x65, 0x79, 0x2d, 0xff, 0x00]), 'binary-named key');
    // Values far larger than a socket read: replies span many chunks; both are over the sample's 1 MiB limit.
    await r.set('coprocess-data:big', randomBytes(3 * 1024 * 1024), 'EX', 7200);
    const big = r.pipeline();
    for (let i = 0; i < 20_000; i++) big.rpush('app-big-list', `element-${i}-${'x'.repeat(100)}`);
    await big.exec();
    snap = await snapshot(src);
    sourceData = await contents(src.port, [0, 3]);
  });

  it('copies must/should/other keys with values and TTLs, leaves the rest, keeps extra keys, and every check passes', async () => {
    const target = await server();
    const t = client(target.port);
    const replaced = 'apikey-00000000000000000000000000000000';
    await t.set(replaced, 'stale value', 'EX', 5);
    await t.set('apikey-created-after-snapshot', 'new');
    await t.set('rate-limit-old', '9');
    const staged = await stagedCopy(snap);
    const phases = new Set<string>();
    const out = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, sample: 1000 }`),
      manifest: snap.manifest,
      ...staged,
      checks: [...ALL_CHECKS, 'gateway-hello'],
      progress: (e) => phases.add(e.phase),
    });
    const checks = byName(out.checks);
    expect(Object.keys(checks)).toEqual(ALL_CHECKS);
    for (const name of ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl']) expect(checks[name]!.status, JSON.stringify(checks[name])).toBe('passed');
    expect(checks['redis-replicas']!.status).toBe('skipped');
    expect(checks['redis-key-counts']!.detail).toContain('at least as many as the snapshot holds per class (1 more');
    expect(checks['redis-sample']!.evidence).toMatchObject({ mismatched: 0 });
    expect((checks['redis-sample']!.evidence as { matched: number }).matched).toBeGreaterThan(50);
    // Values are cut from the staged RDB and RESTOREd directly: no scratch server, no second copy of the data.
    expect([...phases]).toEqual(expect.arrayContaining(['preflight', 'inspect', 'restore', 'verify']));
    expect([...phases]).not.toContain('scratch-load');

    const restored = await contents(target.port, [0, 3]);
    for (const [key, v] of sourceData) {
      const cls = classifyKey(key.slice(key.indexOf('/') + 1));
      if (['must', 'should', 'other'].includes(cls)) expect(restored.get(key), key).toEqual(v);
      else expect(restored.has(key), key).toBe(false);
    }
    expect(restored.get(`0/${replaced}`)!.value).not.toContain('stale');
    expect(restored.has('0/apikey-created-after-snapshot')).toBe(true);
    expect(restored.has('0/rate-limit-old')).toBe(true);
    expect(await client(target.port, 3).exists('apikey-canary0000000000000000000000000')).toBe(1);
    expect(out.details).toMatchObject({ mode: 'live', target: `127.0.0.1:${target.port}`, databases: [0, 3] });
    const copied = out.details.restored as Record<KeyClass, number>;
    const skipped = out.details.skipped as Record<KeyClass, number>;
    expect(copied.quota).toBe(0);
    expect(skipped.quota).toBe(2);
    expect(skipped.analytics).toBe(2);
    expect(copied.must + copied.should + copied.other).toBe([...sourceData.keys()].filter((k) => ['must', 'should', 'other'].includes(classifyKey(k.slice(2)))).length);

    const text = JSON.stringify(out);
    expect(text).not.toContain('apikey-0000');
    expect(text).not.toContain('oauth-data.api1');
  });

  it('restores quota counters too when quota is among the classes', async () => {
    const target = await server();
    const staged = await stagedCopy(snap);
    const out = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, classes: [must, should, quota, other] }`),
      manifest: snap.manifest,
      ...staged,
      checks: ['redis-key-counts'],
    });
    expect(out.checks[0]!.status, out.checks[0]!.detail).toBe('passed');
    // The target held no key: DBSIZE proves the count of the restored classes (the snapshot's ephemeral rate-limit key is not among them).
    expect(out.checks[0]!.evidence).toMatchObject({ counted_by: 'dbsize', restored_classes: ['must', 'should', 'quota', 'other'] });
    expect(out.checks[0]!.detail).toContain('the target held no key before the restore');
    const restored = await contents(target.port, [0, 3]);
    expect(restored.get('0/quota-abc')).toEqual(sourceData.get('0/quota-abc'));
    expect(restored.get('0/quota-abc')!.expireAt).toBeGreaterThan(Date.now());
    expect(restored.has('0/rate-limit-abc')).toBe(false);
  });

  it('redis-key-counts into a target that held no key: DBSIZE when it matches, else a SCAN per class that says what differs', async () => {
    const target = await server();
    const staged = await stagedCopy(snap);
    const restoreWith = (progress?: (p: { phase: string }) => void) =>
      restoreRedis({
        component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} } }`),
        manifest: snap.manifest,
        ...staged,
        checks: ['redis-key-counts'],
        ...(progress ? { progress } : {}),
      });
    // A writer adds a key between the copy and the checks (redis-cli runs to completion before the checks start).
    const out = await restoreWith((p) => {
      if (p.phase === 'verify') execFileSync('redis-cli', ['-p', String(target.port), 'SET', 'apikey-written-meanwhile', 'v']);
    });
    const counts = out.checks[0]!;
    expect(counts.status, counts.detail).toBe('passed');
    expect(counts.evidence).toMatchObject({ comparison: 'at-least' });
    expect((counts.evidence as { counted_by?: string }).counted_by).toBeUndefined();
    expect(counts.detail).toContain('at least as many as the snapshot holds per class (1 more');
    // The same restore into an emptied target counts with DBSIZE.
    await target.cli('FLUSHALL');
    const again = (await restoreWith()).checks[0]!;
    expect(again.status, again.detail).toBe('passed');
    expect(again.evidence).toMatchObject({ comparison: 'exact', counted_by: 'dbsize' });
    const dbsizes = Number(await target.cli('-n', '0', 'DBSIZE')) + Number(await target.cli('-n', '3', 'DBSIZE'));
    expect(again.evidence).toMatchObject({ expected_total: dbsizes, actual_total: dbsizes });
  });

  it('refuses a target too old for the snapshot RDB version and leaves it untouched', async () => {
    const target = await server();
    const t = client(target.port);
    await t.set('apikey-existing', 'keep me');
    const before = { size: await t.dbsize(), value: await t.get('apikey-existing') };
    const staged = await stagedCopy(snap);
    const err = await expectRejects(
      restoreRedis({
        component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} } }`),
        manifest: { ...snap.manifest, source: { ...snap.manifest.source, rdb_version: 99, redis_version: '99.0.0', server: 'Redis 99.0.0' } },
        ...staged,
        checks: ALL_CHECKS,
      }),
    );
    expect(err.kind).toBe('targetError');
    expect(err.message).toMatch(/target Redis 7\.\d+\.\d+ at 127\.0\.0\.1:\d+ cannot load RDB version 99 \(written by Redis 99\.0\.0\)/);
    expect(err.fix).toContain('restore into Redis');
    expect({ size: await t.dbsize(), value: await t.get('apikey-existing') }).toEqual(before);
    await expect(readdir(staged.workDir)).rejects.toThrow(); // no scratch server was even started
  });

  it('a wrong target password is a targetError naming the user, never the password', async () => {
    const target = await server({ password: 'right-password-1' });
    const staged = await stagedCopy(snap);
    const err = await expectRejects(
      restoreRedis({
        component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port}, password: "wrong-password-2" } }`),
        manifest: snap.manifest,
        ...staged,
        checks: ALL_CHECKS,
      }),
    );
    expect(err.kind).toBe('targetError');
    expect(err.exitCode).toBe(6);
    expect(err.message).toContain('user "default"');
    expect(err.fix).toContain('components.redis.restore.target.password');
    expect(`${err.message} ${err.fix}`).not.toContain('wrong-password-2');
    expect(await target.cli('DBSIZE')).toBe('0');
  });

  it('redis-sample and redis-ttl catch a value and a TTL changed on the target', async () => {
    const target = await server();
    const staged = await stagedCopy(snap);
    await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} } }`),
      manifest: snap.manifest,
      ...staged,
      checks: [],
    });
    // The snapshot side, as the restore takes it: a sample drawn from a server holding the snapshot.
    const drawn = new Reservoir<{ db: number; key: Buffer; cls: KeyClass }>(3);
    for (const k of ['apikey-00000000000000000000000000000001', 'orgkey.org1', 'oauth-data.api1.oauth-access.token1']) drawn.offer({ db: 0, key: Buffer.from(k), cls: 'must' });
    const srcPool = new RedisPool(async (db) => client(src.port, db));
    const sample = await fingerprintSample(srcPool, drawn, 3, true);
    const t = client(target.port);
    await t.set('apikey-00000000000000000000000000000001', '{"tampered":true}', 'KEEPTTL');
    await t.pexpire('orgkey.org1', 100_000); // had no expiry
    await t.pexpire('oauth-data.api1.oauth-access.token1', 100_000); // had one hour
    const targetPool = new RedisPool(async (db) => client(target.port, db));
    const obs = await observeSample((db) => targetPool.db(db), sample, true);
    const s = await checkSample(sample, obs, 5000);
    expect(s.status).toBe('failed');
    expect(s.evidence).toMatchObject({ sampled: 3, matched: 2, mismatched: 1 });
    expect(s.detail).toMatch(/1 of 3 sampled keys differ .*must:[0-9a-f]{12}: (content differs|size \d+)/);
    expect(JSON.stringify(s)).not.toContain('apikey-');
    const ttl = await checkTtl(obs, 5000);
    expect(ttl.status).toBe('failed');
    expect(ttl.evidence).toMatchObject({ checked: 3, within: 1, outside: 2 });
    expect(JSON.stringify(ttl)).not.toContain('orgkey');
  });

  it('redis-key-counts by DBSIZE (rdb-file): passes on the snapshot\'s count, fails on a key more or less, never naming a key', async () => {
    const target = await server();
    const t = client(target.port);
    const now = Date.now();
    const exp = new KeyExpectation(now);
    for (let i = 0; i < 5; i++) {
      await t.set(`apikey-dbsize-${i}`, 'v');
      exp.add(0, classifyKey(Buffer.from(`apikey-dbsize-${i}`)), null);
    }
    await t.set('apikey-dbsize-expiring', 'v', 'PX', 3_600_000);
    exp.add(0, 'must', now + 3_600_000);
    exp.add(0, 'must', now - 1000); // expired before the file was read: not expected on the target
    const pool = new RedisPool((db) => Promise.resolve(client(target.port, db)));
    cleanups.push(async () => pool.close());
    exp.add(0, 'analytics', null); // a class not restored (live mode's restore.classes): not in the expected DBSIZE
    const opts = { db: (n: number) => pool.db(n), targetDbs: [0], expectation: exp, restored: new Set<KeyClass>(['must', 'should', 'other']), exact: true, skewMs: 5000, countBy: 'dbsize' as const };
    const ok = await checkKeyCounts(opts);
    expect(ok.status, ok.detail).toBe('passed');
    expect(ok.evidence).toMatchObject({ comparison: 'exact', counted_by: 'dbsize', expected_total: 6, actual_total: 6 });
    await t.set('apikey-dbsize-extra', 'v');
    const more = await checkKeyCounts(opts);
    expect(more.status).toBe('failed');
    expect(more.detail).toContain('db 0: expected 6 keys (DBSIZE), found 7');
    await t.del('apikey-dbsize-extra', 'apikey-dbsize-0');
    const less = await checkKeyCounts(opts);
    expect(less.status).toBe('failed');
    expect(less.detail).toContain('found 5');
    expect(JSON.stringify([ok, more, less])).not.toContain('apikey-');
    t.disconnect();
  });

  it('waits for the replica of a Sentinel-managed master to catch up (redis-replicas)', async () => {
    const master = await server();
    const replica = await server({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    const sentinelPort = await freePort();
    const dir = await tempDir('tykdr-rr-sentinel-');
    const conf = path.join(dir, 'sentinel.conf');
    await writeFile(conf, `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor tykmaster 127.0.0.1 ${master.port} 1\nsentinel down-after-milliseconds tykmaster 30000\n`);
    const proc = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
    cleanups.push(async () => proc.kill('SIGKILL'));
    const deadline = Date.now() + 20_000;
    while ((await execFileP('redis-cli', ['-p', String(sentinelPort), 'ping']).then((o) => o.stdout.trim(), () => '')) !== 'PONG') {
      if (Date.now() > deadline) throw new Error('sentinel did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    while (!/master_link_status:up/.test(await replica.cli('INFO', 'replication'))) {
      if (Date.now() > deadline) throw new Error('replica did not connect');
      await new Promise((r) => setTimeout(r, 100));
    }
    const staged = await stagedCopy(snap);
    const out = await restoreRedis({
      // load auto: a master found through Sentinel is never made a replica (Sentinel would see it turn): RESTORE per key.
      component: component(
        `sentinel: { masterName: tykmaster, sentinels: [{ host: 127.0.0.1, port: ${sentinelPort} }] }\nrestore: { replicaCatchUpTimeout: 30s, load: auto, classes: [must, should, quota, ephemeral, analytics, mdcb, other] }`,
      ),
      manifest: snap.manifest,
      ...staged,
      checks: ['redis-ping', 'redis-replicas'],
    });
    expect(out.details).toMatchObject({ target: `127.0.0.1:${master.port}`, resolved_via: 'sentinel master tykmaster', replicas_before: 1 });
    expect(out.details.load).toBeUndefined();
    expect(out.details.warnings).toEqual(expect.arrayContaining([expect.stringContaining('restore.load is auto: keys were written with RESTORE, because Sentinel watches the target')]));
    const rep = byName(out.checks)['redis-replicas']!;
    expect(rep.status, rep.detail).toBe('passed');
    expect((rep.evidence as { replicas: unknown[] }).replicas).toHaveLength(1);
    expect(await replica.cli('DBSIZE')).toBe(await master.cli('DBSIZE'));
  });

  it('needs no redis-server binary on the restore host: values are cut from the RDB and RESTOREd', async () => {
    const target = await server();
    const staged = await stagedCopy(snap);
    const out = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, redisServer: /nonexistent/redis-server }`),
      manifest: snap.manifest,
      ...staged,
      checks: ALL_CHECKS,
    });
    for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).not.toBe('failed');
    expect(byName(out.checks)['redis-key-counts']!.status).toBe('passed');
    expect(Number(out.details.keys_restored)).toBeGreaterThan(0);
    expect(out.details.scratch_redis_version).toBeUndefined();
  });

  it('strings go in by SET ... PXAT, replacing a key of another type and an expiry the target had; a target with SET renamed away takes them by RESTORE and the report says why: every key, value and expiry equal either way', async () => {
    const all = 'classes: [must, should, quota, ephemeral, analytics, mdcb, other]';
    const source = await server();
    await seedTykRedis(source.port, { sessions: 40 });
    const s = client(source.port);
    // Strings of every RDB encoding: LZF past the 64 KiB the WebAssembly kernel takes, raw, empty, integers.
    await s.set('apikey-big-lzf', 'tyk-session-'.repeat(20_000), 'PX', 3_600_000);
    await s.set('apikey-big-raw', randomBytes(100_000));
    await s.set('apikey-empty', '');
    await s.set('apikey-int-neg', '-2147483648');
    await s.set('apikey-int-small', '7', 'PX', 3_600_000);
    const snap2 = await snapshot(source);
    const expected = await readKeyspace(source.port);
    const strings = [...expected.values()].filter((k) => k.type === 'string').length;
    expect(strings).toBeGreaterThan(10);
    expect(expected.size).toBeGreaterThan(strings);
    for (const args of [[], ['--rename-command', 'SET', '']]) {
      const target = await server({ args });
      // What the target holds of those keys before: another type, an expiry the snapshot's key lacks, none where it has one.
      const t = client(target.port);
      await t.hset('apikey-big-raw', 'field', 'value');
      await t.pexpire('apikey-big-raw', 3_600_000);
      await t.rpush('apikey-empty', 'x');
      await t.call('RESTORE', 'apikey-int-small', '0', (await s.dumpBuffer('apikey-int-neg'))!);
      const out = await restoreRedis({
        component: component(`port: ${source.port}\nrestore: { ${all}, target: { port: ${target.port} } }`),
        manifest: snap2.manifest,
        ...(await stagedCopy(snap2)),
        checks: ALL_CHECKS,
      });
      for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).not.toBe('failed');
      expect(out.details.keys_restored).toBe(expected.size);
      if (args.length === 0) {
        expect(out.details.keys_written_with_set).toBe(strings);
        expect(out.details.set_not_used).toBeUndefined();
      } else {
        expect(out.details.keys_written_with_set).toBe(0);
        expect(out.details.set_not_used).toMatch(/^database 0 of 127\.0\.0\.1:\d+ answered ERR unknown command/);
      }
      expect(diffKeyspaces(expected, await readKeyspace(target.port))).toEqual([]);
    }
  });

  it('an abort during the writes rejects with an AbortError and leaves no process behind', async () => {
    const target = await server();
    const staged = await stagedCopy(snap);
    const ac = new AbortController();
    const err = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} } }`),
      manifest: snap.manifest,
      ...staged,
      checks: ALL_CHECKS,
      signal: ac.signal,
      progress: (e) => {
        if (e.phase === 'restore') ac.abort();
      },
    }).then(() => null, (e: unknown) => e as Error);
    expect(err?.name).toBe('AbortError');
    expect(await readdir(staged.workDir).catch(() => [])).not.toContain('scratch');
  });

  it('copies 200,000 small keys in live mode, every check passing (throughput: bench/redis-restore.ts)', async () => {
    const big = await server();
    const r = client(big.port);
    for (let i = 0; i < 200_000; i += 10_000) {
      const p = r.pipeline();
      for (let j = i; j < i + 10_000; j++) p.set(`apikey-${j.toString(16).padStart(32, '0')}`, `{"org_id":"org1","alias":"u${j}"}`, 'EX', 86_400);
      await p.exec();
    }
    const bigSnap = await snapshot(big);
    const target = await server();
    const staged = await stagedCopy(bigSnap);
    const out = await restoreRedis({
      component: component(`port: ${big.port}\nrestore: { target: { port: ${target.port} } }`),
      manifest: bigSnap.manifest,
      ...staged,
      checks: ['redis-key-counts', 'redis-sample', 'redis-ttl'],
    });
    for (const c of out.checks) expect(c.status, c.detail).toBe('passed');
    expect(out.details.keys_restored).toBe(200_000);
    expect(Number(await target.cli('DBSIZE'))).toBe(200_000);
  });
});

describe('a TLS target with ACL users', () => {
  let src: RedisServer;
  let snap: Awaited<ReturnType<typeof snapshot>>;
  let target: RedisServer;
  let tlsPort: number;
  let ca: string;

  beforeAll(async () => {
    src = await server();
    await seedTykRedis(src.port, { sessions: 20 });
    snap = await snapshot(src);
    const tls = await makeTlsFiles();
    cleanups.push(() => rm(tls.dir, { recursive: true, force: true }));
    ca = tls.ca;
    tlsPort = await freePort();
    target = await server({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no'],
      aclUsers: ['restorer on >restore-pass-1 ~* +@connection +info +select +restore +@read', 'weak on >weak-pass-1 ~* +@connection +info +select +@read'],
    });
  });

  const tlsComponent = (user: string, pass: string) =>
    component(`port: ${src.port}\nrestore: { target: { port: ${tlsPort}, username: ${user}, password: ${pass}, tls: { ca: ${ca} } } }`);

  it('restores over TLS as a least-privilege ACL user', async () => {
    const staged = await stagedCopy(snap);
    const out = await restoreRedis({ component: tlsComponent('restorer', 'restore-pass-1'), manifest: snap.manifest, ...staged, checks: ALL_CHECKS });
    for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).not.toBe('failed');
    expect(out.details.keys_restored).toBeGreaterThan(20);
    expect(JSON.stringify(out)).not.toContain('restore-pass-1');
  });

  it('a user without +restore gets a targetError naming the user and the permission', async () => {
    const staged = await stagedCopy(snap);
    const err = await expectRejects(restoreRedis({ component: tlsComponent('weak', 'weak-pass-1'), manifest: snap.manifest, ...staged, checks: ALL_CHECKS }));
    expect(err.kind).toBe('targetError');
    expect(err.message).toMatch(/user "weak" may not RESTORE keys on .*\(NOPERM.*restore/);
    expect(err.fix).toContain('+restore');
    expect(`${err.message} ${err.fix}`).not.toContain('weak-pass-1');
  });
});

/** A daemonized redis-server managed only through shell commands, as rdb-file mode sees it. */
async function daemon(args = ''): Promise<{ port: number; dir: string; start: string; stop: string; pid: () => Promise<number> }> {
  const dir = await tempDir('tykdr-rr-daemon-');
  const port = await freePort();
  const start = `redis-server --port ${port} --bind 127.0.0.1 --dir ${dir} --dbfilename dump.rdb --daemonize yes --pidfile ${dir}/redis.pid --logfile ${dir}/redis.log --save '' ${args}`;
  const stop = `redis-cli -p ${port} shutdown nosave`;
  const pid = async () => Number((await readFile(path.join(dir, 'redis.pid'), 'utf8')).trim());
  await execFileP('sh', ['-c', start]);
  cleanups.push(async () => {
    const p = await pid().catch(() => 0);
    if (p > 0) process.kill(p, 'SIGKILL');
  });
  await waitFor(async () => (await execFileP('redis-cli', ['-p', String(port), 'ping']).then((o) => o.stdout.trim(), () => '')) === 'PONG', {
    timeoutMs: 10_000,
    what: `the daemonized redis-server on port ${port} to answer PING`,
    detail: () => readFile(path.join(dir, 'redis.log'), 'utf8').catch(() => ''),
  });
  return { port, dir, start, stop, pid };
}

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

describe('live mode, load by replication (restore.load)', () => {
  const ALL_CLASSES = '[must, should, quota, ephemeral, analytics, mdcb, other]';
  let src: RedisServer;
  let snap: Awaited<ReturnType<typeof snapshot>>;
  let alive: Map<string, { value: string; expireAt: number }>;

  beforeAll(async () => {
    src = await server();
    await seedTykRedis(src.port, { sessions: 200 });
    await seedTykRedis(src.port, { sessions: 5, db: 3 });
    const r = client(src.port);
    await r.set('coprocess-data:big', randomBytes(2 * 1024 * 1024), 'EX', 7200);
    // Expires after the snapshot, before the restore: a replica loads it anyway, and Redis evicts it once asked.
    await r.set('apikey-expires-soon', 'v', 'PX', 1500);
    snap = await snapshot(src);
    await r.del('apikey-expires-soon');
    alive = await contents(src.port, [0, 3]);
    await new Promise((res) => setTimeout(res, 1600));
  });

  const configs = async (port: number) => {
    const t = client(port);
    const get = async (name: string) => ((await t.config('GET', name)) as string[])[1];
    const out = { role: (await t.info('replication')).match(/role:(\w+)/)![1], masterauth: await get('masterauth'), diskless: await get('repl-diskless-load') };
    t.disconnect();
    return out;
  };

  it('an empty target loads the staged RDB as a replica of tykdr, is a master again, its settings as before; every check passes and every key equals the source', async () => {
    const target = await server();
    await target.cli('CONFIG', 'SET', 'masterauth', 'orig-auth-1');
    const staged = await stagedCopy(snap);
    const out = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: replication, classes: ${ALL_CLASSES} }`),
      manifest: snap.manifest,
      ...staged,
      checks: ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl'],
    });
    for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).toBe('passed');
    expect(out.details).toMatchObject({ load: 'replication', diskless_load: true, keys_restored: alive.size + 1 });
    expect(await contents(target.port, [0, 3])).toEqual(alive);
    expect(await configs(target.port)).toEqual({ role: 'master', masterauth: 'orig-auth-1', diskless: 'disabled' });
    // tykdr's listener is closed.
    const [host, port] = String(out.details.replication_address).split(':');
    const refused = await new Promise<boolean>((res) => {
      const sock = createConnection({ host, port: Number(port) });
      sock.on('connect', () => (sock.destroy(), res(false)));
      sock.on('error', () => res(true));
    });
    expect(refused).toBe(true);
    expect(JSON.stringify(out)).not.toContain('orig-auth-1');
  });

  it('a target with a replica of its own: the replica follows it through the load, and redis-replicas passes', async () => {
    const target = await server();
    const follower = await server({ args: ['--replicaof', '127.0.0.1', String(target.port)] });
    await waitFor(async () => /master_link_status:up/.test(await follower.cli('INFO', 'replication')), { timeoutMs: 30_000, what: 'the replica to be in sync' });
    const out = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: replication, classes: ${ALL_CLASSES} }`),
      manifest: snap.manifest,
      ...(await stagedCopy(snap)),
      checks: ['redis-key-counts', 'redis-replicas'],
    });
    for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).toBe('passed');
    expect(out.details.load).toBe('replication');
    expect((await configs(target.port)).role).toBe('master');
    expect(await contents(follower.port, [0, 3])).toEqual(alive);
  });

  /** The staged RDB as restore.load replication stages it: decrypted but still zstd-compressed. */
  async function compressedCopy(): Promise<{ rdbFile: string; workDir: string; stagedCompression: 'zstd' }> {
    const plain = await stagedCopy(snap);
    await execFileP('zstd', ['-q', '-1', plain.rdbFile, '-o', `${plain.rdbFile}.zst`]);
    return { rdbFile: `${plain.rdbFile}.zst`, workDir: plain.workDir, stagedCompression: 'zstd' };
  }

  it('staged still compressed: decompressed into the target as it loads, read for the evidence on the way; every check passes', async () => {
    const target = await server();
    const out = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: replication, classes: ${ALL_CLASSES} }`),
      manifest: snap.manifest,
      ...(await compressedCopy()),
      checks: ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl'],
    });
    for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).toBe('passed');
    expect(out.details).toMatchObject({ load: 'replication', evidence_from: 'staged RDB' });
    expect(await contents(target.port, [0, 3])).toEqual(alive);
  });

  it('staged still compressed but not the size the manifest lists: an integrityError saying what the target, a master again, holds', async () => {
    const target = await server();
    const manifest = { ...snap.manifest, artifact: { ...snap.manifest.artifact, plaintext_bytes: snap.manifest.artifact.plaintext_bytes + 1 } };
    const err = await expectRejects(
      restoreRedis({
        component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: replication, classes: ${ALL_CLASSES} }`),
        manifest,
        ...(await compressedCopy()),
        checks: ['redis-key-counts'],
      }),
    );
    expect(err.kind).toBe('integrityError');
    // The RDB itself is whole (one byte short of what was announced): the target may have loaded it before the link closed.
    const m = /could not be sent whole by replication: the staged RDB holds \d+ bytes, the manifest lists \d+; it is a master again and holds (\d+) key\(s\)/.exec(err.message);
    expect(m, err.message).not.toBeNull();
    expect(await configs(target.port)).toMatchObject({ role: 'master', diskless: 'disabled' });
    const dbsizes = Number(await target.cli('-n', '0', 'DBSIZE')) + Number(await target.cli('-n', '3', 'DBSIZE'));
    // The snapshot holds apikey-expires-soon, already expired: loaded as a replica, it is evicted once the target is a
    // master again, so it may have gone between the message's count and this one (and only it).
    expect(dbsizes, err.message).toBeLessThanOrEqual(Number(m![1]));
    expect(dbsizes, err.message).toBeGreaterThanOrEqual(Number(m![1]) - 1);
  });

  it('staged still compressed for a path that reads a file (RESTORE per key): inflated first, size checked', async () => {
    const target = await server();
    const out = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, classes: ${ALL_CLASSES} }`),
      manifest: snap.manifest,
      ...(await compressedCopy()),
      checks: ['redis-key-counts', 'redis-sample'],
    });
    for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).toBe('passed');
    expect(out.details.load).toBeUndefined();
    const bad = { ...snap.manifest, artifact: { ...snap.manifest.artifact, plaintext_bytes: 7 } };
    const err = await expectRejects(restoreRedis({ component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} } }`), manifest: bad, ...(await compressedCopy()), checks: [] }));
    expect(err.message).toMatch(/components\.redis: the staged artifact decompressed to \d+ bytes, the manifest says 7/);
  });

  it('load replication into a target that holds a key: a targetError naming why, and nothing changed', async () => {
    const target = await server();
    await target.cli('SET', 'other-key', 'kept');
    const staged = await stagedCopy(snap);
    const err = await expectRejects(
      restoreRedis({
        component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: replication, classes: ${ALL_CLASSES} }`),
        manifest: snap.manifest,
        ...staged,
        checks: ['redis-key-counts'],
      }),
    );
    expect(err.kind).toBe('targetError');
    expect(err.message).toMatch(/restore\.load is replication, but the target at 127\.0\.0\.1:\d+ cannot load the snapshot that way: the target holds 1 key\(s\).*Nothing was changed/);
    expect(err.fix).toContain('restore.load to auto');
    expect(await target.cli('DBSIZE')).toBe('1');
    expect((await configs(target.port)).role).toBe('master');
  });

  it('load auto: RESTORE per key, with a warning saying why, when the snapshot holds classes not restored or the user may not run CONFIG', async () => {
    const target = await server({ aclUsers: ['restorer on >restore-pass-2 ~* +@connection +info +select +restore +@read +set +del'] });
    const staged = await stagedCopy(snap);
    const classes = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: auto }`),
      manifest: snap.manifest,
      ...staged,
      checks: ['redis-key-counts'],
    });
    expect(classes.checks[0]!.status, classes.checks[0]!.detail).toBe('passed');
    expect(classes.details.load).toBeUndefined();
    expect(classes.details.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/restore\.load is auto: keys were written with RESTORE, because the snapshot holds keys of classes not restored \(.*ephemeral/)]));
    await target.cli('FLUSHALL');
    const acl = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port}, username: restorer, password: restore-pass-2 }, load: auto, classes: ${ALL_CLASSES} }`),
      manifest: snap.manifest,
      ...(await stagedCopy(snap)),
      checks: ['redis-key-counts'],
    });
    expect(acl.checks[0]!.status, acl.checks[0]!.detail).toBe('passed');
    expect(acl.details.load).toBeUndefined();
    expect(acl.details.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/restore\.load is auto: keys were written with RESTORE, because user "restorer" may not read the target's replication settings \(CONFIG GET\)/)]));
    expect(JSON.stringify(acl)).not.toContain('restore-pass-2');
  });

  it('a target with maxmemory set: load replication is refused before anything changed (a replica loads past the limit); auto writes with RESTORE and says why', async () => {
    const target = await server();
    await target.cli('CONFIG', 'SET', 'maxmemory', '500mb');
    await target.cli('CONFIG', 'SET', 'masterauth', 'orig-auth-4');
    const err = await expectRejects(
      restoreRedis({
        component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: replication, classes: ${ALL_CLASSES} }`),
        manifest: snap.manifest,
        ...(await stagedCopy(snap)),
        checks: ['redis-key-counts'],
      }),
    );
    expect(err.kind).toBe('targetError');
    expect(err.message).toMatch(/cannot load the snapshot that way: the target has maxmemory 524288000 bytes: as a replica it would load past it.*CONFIG SET maxmemory 0.*Nothing was changed/);
    expect(await configs(target.port)).toEqual({ role: 'master', masterauth: 'orig-auth-4', diskless: 'disabled' });
    expect(await target.cli('DBSIZE')).toBe('0');
    const auto = await restoreRedis({
      component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: auto, classes: ${ALL_CLASSES} }`),
      manifest: snap.manifest,
      ...(await stagedCopy(snap)),
      checks: ['redis-key-counts'],
    });
    expect(auto.checks[0]!.status, auto.checks[0]!.detail).toBe('passed');
    expect(auto.details.load).toBeUndefined();
    expect(auto.details.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/restore\.load is auto: keys were written with RESTORE, because the target has maxmemory 524288000 bytes/)]));
    expect((await configs(target.port)).role).toBe('master');
  });

  it('load replication where tykdr cannot listen: a targetError naming the address, and the target untouched', async () => {
    const target = await server();
    await target.cli('CONFIG', 'SET', 'masterauth', 'orig-auth-3');
    const err = await expectRejects(
      restoreRedis({
        component: component(`port: ${src.port}\nrestore: { target: { port: ${target.port} }, load: replication, replicationAddress: '192.0.2.1:7', classes: ${ALL_CLASSES} }`),
        manifest: snap.manifest,
        ...(await stagedCopy(snap)),
        checks: ['redis-key-counts'],
      }),
    );
    expect(err.message).toMatch(/tykdr cannot listen on 192\.0\.2\.1:7 for the target \(EADDRNOTAVAIL.*Nothing was changed/);
    expect(await configs(target.port)).toEqual({ role: 'master', masterauth: 'orig-auth-3', diskless: 'disabled' });
    expect(await target.cli('DBSIZE')).toBe('0');
  });
});

describe('rdb-file mode', () => {
  let src: RedisServer;
  let snap: Awaited<ReturnType<typeof snapshot>>;
  let sourceData: Map<string, { value: string; expireAt: number }>;

  beforeAll(async () => {
    src = await server();
    await seedTykRedis(src.port, { sessions: 30 });
    await seedTykRedis(src.port, { sessions: 3, db: 3 });
    snap = await snapshot(src);
    sourceData = await contents(src.port, [0, 3]);
  });

  const rdbComponent = (d: { port: number; dir: string; start: string; stop: string }, extra = '') =>
    component(`port: ${d.port}\nrestore:\n  mode: rdb-file\n  dataDir: ${d.dir}\n  stopCommand: "${d.stop}"\n  startCommand: "${d.start}"\n  loadTimeout: 20s\n${extra}`);

  it('stops Redis, keeps the old dump.rdb aside, loads the snapshot and passes every check', async () => {
    const d = await daemon();
    const t = client(d.port);
    await t.set('apikey-old-data', 'old');
    await t.save();
    t.disconnect();
    const oldHash = await sha256(path.join(d.dir, 'dump.rdb'));
    const staged = await stagedCopy(snap);
    const out = await restoreRedis({ component: rdbComponent(d), manifest: snap.manifest, ...staged, checks: ALL_CHECKS });
    const checks = byName(out.checks);
    for (const name of ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl']) expect(checks[name]!.status, JSON.stringify(checks[name])).toBe('passed');
    expect(checks['redis-key-counts']!.evidence).toMatchObject({ comparison: 'exact' });
    const previous = out.details.previous_rdb as string;
    expect(previous).toMatch(new RegExp(`^${d.dir}/dump\\.rdb\\.tykdr-\\d{8}T\\d{6}Z\\.bak$`));
    expect(await sha256(previous)).toBe(oldHash);
    expect(await sha256(path.join(d.dir, 'dump.rdb'))).toBe(await sha256(snap.rdbFile));
    expect(await contents(d.port, [0, 3])).toEqual(sourceData);
    expect(out.details).toMatchObject({ mode: 'rdb-file', placed_by: 'rename' });
    // The evidence (expected counts, sample) comes from the staged RDB read while the target loads it: no scratch server.
    expect(out.details.evidence_from).toBe('staged RDB');
    expect(checks['redis-key-counts']!.evidence).toMatchObject({ counted_by: 'dbsize', expected_total: sourceData.size, actual_total: sourceData.size });
    expect(out.details.scratch_redis_version).toBeUndefined();
    expect(checks['redis-sample']!.evidence).toMatchObject({ mismatched: 0, not_decoded: 0 });
    expect((checks['redis-sample']!.evidence as { matched: number }).matched).toBeGreaterThan(20);
    expect(await readdir(staged.workDir).catch(() => [])).not.toContain('scratch');
  });

  it('refuses a target with AOF enabled and leaves it untouched', async () => {
    const d = await daemon('--appendonly yes');
    const t = client(d.port);
    await t.set('apikey-old-data', 'old');
    const pidBefore = await d.pid();
    const staged = await stagedCopy(snap);
    const err = await expectRejects(restoreRedis({ component: rdbComponent(d), manifest: snap.manifest, ...staged, checks: ALL_CHECKS }));
    expect(err.kind).toBe('targetError');
    expect(err.message).toContain('has AOF enabled (aof_enabled:1)');
    expect(err.fix).toContain('mode: live');
    expect(await d.pid()).toBe(pidBefore);
    expect(await t.dbsize()).toBe(1);
    expect(await t.get('apikey-old-data')).toBe('old');
    expect((await readdir(d.dir)).filter((f) => f.includes('tykdr'))).toEqual([]);
    expect(await stat(staged.rdbFile)).toBeTruthy();
  });

  it('puts the old dump.rdb back and restarts Redis when the start command fails', async () => {
    const d = await daemon();
    const t = client(d.port);
    await t.set('apikey-old-data', 'old');
    await t.save();
    t.disconnect();
    const oldHash = await sha256(path.join(d.dir, 'dump.rdb'));
    const marker = path.join(d.dir, 'failed-once');
    // Fails the first time (the restore), works the second (the rollback).
    const flaky = { ...d, start: `if [ ! -f ${marker} ]; then touch ${marker}; echo 'cannot start: simulated' >&2; exit 3; fi; ${d.start}` };
    const staged = await stagedCopy(snap);
    const stagedHash = await sha256(staged.rdbFile);
    const err = await expectRejects(restoreRedis({ component: rdbComponent(flaky), manifest: snap.manifest, ...staged, checks: ALL_CHECKS }));
    expect(err.kind).toBe('targetError');
    expect(err.message).toContain('components.redis.restore.startCommand failed with exit code 3; it printed: cannot start: simulated');
    expect(err.message).toContain('Rolled back: the previous dump.rdb was put back and Redis at');
    expect(await sha256(path.join(d.dir, 'dump.rdb'))).toBe(oldHash);
    expect((await readdir(d.dir)).filter((f) => f.includes('.tykdr-'))).toEqual([]);
    expect(await sha256(staged.rdbFile)).toBe(stagedHash); // handed back to the caller
    const after = client(d.port);
    expect(await after.get('apikey-old-data')).toBe('old');
    expect(await after.dbsize()).toBe(1);
  });

  it('restores into a Redis that is down (a disaster), with a warning that its version could not be checked', async () => {
    const d = await daemon();
    await execFileP('sh', ['-c', d.stop]);
    const staged = await stagedCopy(snap);
    const out = await restoreRedis({ component: rdbComponent({ ...d, stop: `${d.stop} || true` }), manifest: snap.manifest, ...staged, checks: ['redis-ping', 'redis-key-counts'] });
    expect((out.details.warnings as string[]).join()).toContain('was not running before the restore');
    expect(out.details.previous_rdb).toBeNull();
    for (const c of out.checks) expect(c.status, c.detail).toBe('passed');
    expect(await contents(d.port, [0, 3])).toEqual(sourceData);
  });

  it('needs dataDir, stopCommand and startCommand (badInput naming the path)', async () => {
    const staged = await stagedCopy(snap);
    const err = await expectRejects(restoreRedis({ component: component(`restore: { mode: rdb-file, dataDir: /tmp }`), manifest: snap.manifest, ...staged, checks: [] }));
    expect(err.kind).toBe('badInput');
    expect(err.message).toContain('components.redis.restore.stopCommand is not set');
  });
});

describe('RDB versions a target loads', () => {
  it('maps Redis releases to the newest RDB version they load, and back', () => {
    expect(['3.2.12', '4.0.14', '5.0.7', '6.0.20', '6.2.14', '7.0.15', '7.2.4', '7.4.1', '8.0.2', '8.4.0', '8.6.0', '9.0.0'].map((v) => maxRdbVersion(v))).toEqual([
      7, 8, 9, 9, 9, 10, 11, 12, 12, 12, 13, 13,
    ]);
    expect(maxRdbVersion('not-a-version')).toBeNull();
    expect([9, 10, 11, 12, 13, 14].map(minRedisForRdb)).toEqual(['5.0', '7.0', '7.2', '7.4', '8.6', null]);
  });
});
