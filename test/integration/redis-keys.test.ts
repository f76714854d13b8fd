import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeysSource } from '../../src/backends/redis/source/keys-source.js';
import { RedisSource } from '../../src/backends/redis/source/redis-source.js';
import { restoreRedis } from '../../src/backends/redis/target/restore-redis.js';
import { TykdrError } from '../../src/core/errors.js';
import type { CheckResult } from '../../src/core/restore/types.js';
import { classifyKey, type KeyClass } from '../../src/core/tyk/key-classes.js';
import { runCli } from '../helpers/cli.js';
import { redisComponent, redisContents, seedTypes, takeSnapshot, type KeyState } from '../helpers/redis-cluster.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { seedTykRedis } from '../helpers/tyk-fixture.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';
import { useCleanups } from '../helpers/cleanups.js';

const ALL_CHECKS = ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl', 'redis-replicas'];
const { cleanups } = useCleanups();

async function server(opts: Parameters<typeof startRedis>[0] = {}): Promise<RedisServer> {
  const s = await startRedis(opts);
  cleanups.push(() => s.stop());
  return s;
}

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), prefix));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

const byName = (checks: CheckResult[]) => Object.fromEntries(checks.map((c) => [c.name, c]));
const clsOf = (k: string) => classifyKey(k.slice(k.indexOf('/') + 1));

async function rejects(p: Promise<unknown>): Promise<TykdrError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(TykdrError);
  return err as TykdrError;
}

/** Rewrites a keys stream's header payload version and re-signs it (so only the version check can refuse it). */
function withPayloadVersion(bytes: Buffer, version: number): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt16BE(version, 10);
  createHash('sha256').update(out.subarray(0, out.length - 32)).digest().copy(out, out.length - 32);
  return out;
}

describe('mode keys: backup and restore of a standalone Redis', () => {
  let src: RedisServer;
  let snap: Awaited<ReturnType<typeof takeSnapshot>>;
  let before: Map<string, KeyState>;

  beforeAll(async () => {
    src = await server();
    await seedTykRedis(src.port, { sessions: 60 });
    await seedTykRedis(src.port, { sessions: 5, db: 3 });
    await seedTypes(src.port);
    before = await redisContents(src.port, [0, 3]);
    snap = await takeSnapshot(new KeysSource(redisComponent(`port: ${src.port}\nmode: keys`)));
  });

  it('takes every database, only the configured classes, and records the facts', () => {
    const f = snap.facts;
    expect(snap.manifest.artifact.format).toBe('keys');
    expect(f).toMatchObject({ transfer: 'keys', keys_format_version: 1, payload_rdb_version: 10, expiry_source: 'pexpiretime', classes: ['must', 'should', 'quota', 'other'] });
    const expected: Record<string, Record<KeyClass, number>> = {};
    for (const k of before.keys()) {
      const db = k.slice(0, k.indexOf('/'));
      const cls = clsOf(k);
      if (['ephemeral', 'analytics', 'mdcb'].includes(cls)) continue;
      (expected[db] ??= { must: 0, should: 0, quota: 0, ephemeral: 0, analytics: 0, mdcb: 0, other: 0 })[cls]++;
    }
    expect(f.key_classes).toEqual(expected);
    expect(f.total_keys).toBe(Object.values(expected).flatMap((c) => Object.values(c)).reduce((a, b) => a + b, 0));
    const skipped = f.skipped_classes as Record<KeyClass, number>;
    expect(skipped.ephemeral).toBeGreaterThan(0);
    expect(skipped.analytics).toBe(2);
    expect(skipped.mdcb).toBe(2);
    expect(skipped.must + skipped.should + skipped.quota + skipped.other).toBe(0);
    expect((f.keyspace_at_start as Record<string, { keys: number }>)['0']!.keys).toBe([...before.keys()].filter((k) => k.startsWith('0/')).length);
    expect(JSON.stringify(f)).not.toContain('apikey-');
  });

  it('restores into an empty Redis: values, types and expiry times, and every check passes', async () => {
    const target = await server();
    const staged = await tempDir('tykdr-keys-stage-');
    const out = await restoreRedis({
      component: redisComponent(`port: ${src.port}\nmode: keys\nrestore: { target: { port: ${target.port} }, classes: [must, should, quota, other], sample: 1000 }`),
      manifest: snap.manifest,
      rdbFile: snap.file,
      workDir: staged,
      checks: ALL_CHECKS,
    });
    const checks = byName(out.checks);
    for (const n of ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl']) expect(checks[n]!.status, JSON.stringify(checks[n])).toBe('passed');
    expect(checks['redis-replicas']!.status).toBe('skipped');
    // Hash-table encoded hashes and sets serialize in hash order, which differs between processes: decoded, they match.
    expect(checks['redis-sample']!.evidence).toMatchObject({ mismatched: 0, not_decoded: 0 });
    expect((checks['redis-sample']!.evidence as { matched: number }).matched).toBeGreaterThan(50);
    const after = await redisContents(target.port, [0, 3]);
    for (const [k, v] of before) {
      if (['ephemeral', 'analytics', 'mdcb'].includes(clsOf(k))) expect(after.has(k), k).toBe(false);
      else expect(after.get(k), k).toEqual(v);
    }
    expect(out.details).toMatchObject({ mode: 'live', format: 'keys', snapshot_payload_rdb_version: 10, databases: [0, 3] });
    expect(JSON.stringify(out)).not.toContain('apikey-0000');
  });

  it('restores the default classes into a Redis that has data: keeps extra keys, replaces stale ones, leaves quota out', async () => {
    const target = await server();
    await target.cli('SET', 'apikey-00000000000000000000000000000001', 'stale');
    await target.cli('SET', 'apikey-only-on-target', 'keep');
    const out = await restoreRedis({
      component: redisComponent(`port: ${src.port}\nmode: keys\nrestore: { target: { port: ${target.port} } }`),
      manifest: snap.manifest,
      rdbFile: snap.file,
      workDir: await tempDir('tykdr-keys-stage-'),
      checks: ALL_CHECKS,
    });
    for (const c of out.checks) expect(c.status, `${c.name}: ${c.detail}`).not.toBe('failed');
    expect(byName(out.checks)['redis-key-counts']!.detail).toMatch(/at least as many as the snapshot holds per class \(1 more/);
    const after = await redisContents(target.port, [0, 3]);
    expect(after.get('0/apikey-00000000000000000000000000000001')).toEqual(before.get('0/apikey-00000000000000000000000000000001'));
    expect(after.has('0/apikey-only-on-target')).toBe(true);
    expect(after.has('0/quota-abc')).toBe(false);
    expect((out.details.skipped as Record<KeyClass, number>).quota).toBe(2);
  });

  it('a truncated stream is an integrity error before the target is touched', async () => {
    const target = await server();
    await target.cli('SET', 'marker', '1');
    const dir = await tempDir('tykdr-keys-cut-');
    const bytes = await readFile(snap.file);
    const cut = path.join(dir, 'redis.keys');
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const err = await rejects(
      restoreRedis({
        component: redisComponent(`port: ${src.port}\nmode: keys\nrestore: { target: { port: ${target.port} } }`),
        manifest: snap.manifest,
        rdbFile: cut,
        workDir: path.join(dir, 'work'),
        checks: ALL_CHECKS,
      }),
    );
    expect(err.kind).toBe('integrityError');
    expect(err.exitCode).toBe(5);
    expect(err.message).toMatch(/keys stream ends after \d+ bytes, inside record #\d+: it was cut short/);
    expect(await target.cli('DBSIZE')).toBe('1');
  });

  it('refuses a target older than the DUMP payloads, explaining why, and changes nothing', async () => {
    const target = await server();
    await target.cli('SET', 'marker', '1');
    const dir = await tempDir('tykdr-keys-newer-');
    const file = path.join(dir, 'redis.keys');
    await writeFile(file, withPayloadVersion(await readFile(snap.file), 12));
    const err = await rejects(
      restoreRedis({
        component: redisComponent(`port: ${src.port}\nmode: keys\nrestore: { target: { port: ${target.port} } }`),
        manifest: snap.manifest,
        rdbFile: file,
        workDir: path.join(dir, 'work'),
        checks: ALL_CHECKS,
      }),
    );
    expect(err.kind).toBe('targetError');
    expect(err.message).toMatch(/target Redis 7\.0\.\d+ at 127\.0\.0\.1:\d+ cannot RESTORE this snapshot: its DUMP payloads are RDB version 12 \(taken from Redis 7\.0\.\d+\), and it loads up to version 10/);
    expect(err.message).toContain('A DUMP payload only loads into the same or a newer Redis. Nothing was changed');
    expect(err.fix).toContain('restore into Redis 7.4 or newer');
    expect(await target.cli('DBSIZE')).toBe('1');
  });

  it('refuses file restore modes for a key-level snapshot', async () => {
    const err = await rejects(
      restoreRedis({
        component: redisComponent(`port: ${src.port}\nmode: keys\nrestore: { mode: rdb-file, dataDir: /tmp, stopCommand: "true", startCommand: "true" }`),
        manifest: snap.manifest,
        rdbFile: snap.file,
        workDir: await tempDir('tykdr-keys-mode-'),
        checks: [],
      }),
    );
    expect(err.kind).toBe('badInput');
    expect(err.message).toContain('components.redis.restore.mode is rdb-file, but this snapshot of components.redis is a key-level stream');
    expect(err.fix).toContain('live');
  });

  it('takes only the listed databases and classes', async () => {
    const s = await takeSnapshot(new KeysSource(redisComponent(`port: ${src.port}\nmode: keys\nkeys: { databases: [3], classes: [must] }`)));
    expect(Object.keys(s.facts.databases as object)).toEqual(['3']);
    const must = [...before.keys()].filter((k) => k.startsWith('3/') && clsOf(k) === 'must').length;
    expect(s.facts.key_classes).toEqual({ 3: { must, should: 0, quota: 0, ephemeral: 0, analytics: 0, mdcb: 0, other: 0 } });
    expect(s.facts.skipped_classes).toMatchObject({ should: [...before.keys()].filter((k) => k.startsWith('3/') && clsOf(k) === 'should').length });
  });
});

describe('mode keys: permissions, and a refused SYNC points at it', () => {
  it('works as a least-privilege ACL user, and names the missing permission otherwise', async () => {
    const s = await server({
      aclUsers: [
        'reader on >reader-pass-1 ~* +@connection +info +select +scan +dump +pttl +pexpiretime',
        'nodump on >nodump-pass-1 ~* +@connection +info +select +scan +pttl +pexpiretime',
      ],
    });
    await s.cli('SET', 'apikey-acl', '1');
    await s.cli('SET', 'coprocess-data:x', '2', 'EX', '600');
    const ok = await takeSnapshot(new KeysSource(redisComponent(`port: ${s.port}\nmode: keys\nusername: reader\npassword: reader-pass-1`)));
    expect(ok.facts.total_keys).toBeGreaterThan(0);
    const src = new KeysSource(redisComponent(`port: ${s.port}\nmode: keys\nusername: nodump\npassword: nodump-pass-1`));
    const err = await rejects(src.check());
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toMatch(/user "nodump" may not .*NOPERM/);
    expect(err.fix).toContain('+dump');
    expect(`${err.message} ${err.fix}`).not.toContain('nodump-pass-1');
  });

  it('mode rdb against a Redis that renamed SYNC away (as managed services do) says to use mode: keys', async () => {
    const s = await server({ args: ['--rename-command', 'SYNC', ''] });
    const err = await rejects(new RedisSource(redisComponent(`port: ${s.port}`)).open());
    expect(err.kind).toBe('sourceUnreachable');
    expect(err.message).toMatch(/refused SYNC: ERR unknown command/);
    expect(err.fix).toContain('mode: keys');
  });

  it('mode rdb as an ACL user without +sync says to grant it or use mode: keys', async () => {
    const s = await server({ aclUsers: ['nosync on >nosync-pass-1 ~* +@all -sync -psync'] });
    const err = await rejects(new RedisSource(redisComponent(`port: ${s.port}\nusername: nosync\npassword: nosync-pass-1`)).open());
    expect(err.message).toMatch(/refused SYNC for user "nosync": NOPERM/);
    expect(err.fix).toMatch(/\+sync \+replconf.*mode: keys/);
  });
});

describe('tykdr backup and restore with mode: keys (CLI)', () => {
  let ws: Workspace;
  let src: RedisServer;
  let renamed: RedisServer;
  let snapshotId: string;
  let backedUp: Map<string, KeyState>;

  beforeAll(async () => {
    [ws, src, renamed] = await Promise.all([makeWorkspace(), server(), server({ args: ['--rename-command', 'SYNC', ''] })]);
    cleanups.push(() => ws.cleanup());
    await seedTykRedis(src.port, { sessions: 100 });
    await seedTypes(src.port);
  });

  it('a refused SYNC fails the backup with exit 3 and points at mode: keys', async () => {
    const file = await ws.writeConfig('rdb.yaml', `store: { kind: local, path: ./store }\nencryption: { recipients: [${ws.recipient}] }\ncomponents:\n  redis: { kind: redis, port: ${renamed.port} }\n`);
    const res = await runCli(['backup', '-c', file]);
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toContain('refused SYNC');
    expect(res.stderr).toContain('mode: keys');
  });

  it('backs up, survives a FLUSHALL, and restores with the redis plan', async () => {
    const file = await ws.writeConfig(
      'keys.yaml',
      `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${src.port}
    mode: keys
    restore: { classes: [must, should, quota, other] }
restore: { reportDir: ./reports }
`,
    );
    const before = await redisContents(src.port, [0]);
    const b = await runCli(['backup', '-c', file, '--json']);
    expect(b.code, b.stderr).toBe(0);
    const id = JSON.parse(b.stdout).id as string;
    snapshotId = id;
    backedUp = before;
    const manifest = JSON.parse(await readFile(path.join(ws.storeDir, 'snapshots', id, 'manifest.json'), 'utf8'));
    expect(manifest.components.redis.artifact).toMatchObject({ name: 'redis.keys.zst.age', format: 'keys' });
    expect(manifest.components.redis.source).toMatchObject({ transfer: 'keys', payload_rdb_version: 10 });
    expect(await readdir(path.join(ws.storeDir, 'snapshots', id))).toContain('redis.keys.zst.age');

    await src.cli('FLUSHALL');
    const r = await runCli(['restore', '--plan', 'redis', '-c', file, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout).report;
    const checks = Object.fromEntries(report.steps.flatMap((s: any) => s.checks.map((c: any) => [c.name, c.status])));
    for (const c of ['redis-ping', 'redis-key-counts', 'redis-sample', 'redis-ttl']) expect(checks[c], c).toBe('passed');
    // The stream was read whole (checksums, counts, sample) as it was staged, not from the file afterwards.
    expect(report.steps.find((s: any) => s.component === 'redis').details.redis.staged_read).toBe('while staging');
    const after = await redisContents(src.port, [0]);
    for (const [k, v] of before) {
      if (['ephemeral', 'analytics', 'mdcb'].includes(clsOf(k))) expect(after.has(k), k).toBe(false);
      else expect(after.get(k), k).toEqual(v);
    }
  });

  it('a keys object that decrypts fine but holds a cut stream: restore exits 5 before touching Redis', async () => {
    // As if a backup had stored a truncated stream: re-encrypted, with a manifest that matches the object.
    const dir = path.join(ws.storeDir, 'snapshots', snapshotId);
    const obj = path.join(dir, 'redis.keys.zst.age');
    const manifestFile = path.join(dir, 'manifest.json');
    const [savedObj, savedManifest] = await Promise.all([readFile(obj), readFile(manifestFile, 'utf8')]);
    try {
      const sh = promisify(execFile);
      await sh('bash', ['-euo', 'pipefail', '-c', `age -d -i "$ID" "$OBJ" | zstd -d -q -o "$OBJ.plain" && head -c 3000 "$OBJ.plain" | zstd -q | age -r "$R" > "$OBJ.cut" && mv "$OBJ.cut" "$OBJ" && rm "$OBJ.plain"`], {
        env: { ...process.env, ID: ws.identityFile, OBJ: obj, R: ws.recipient },
      });
      const bytes = await readFile(obj);
      const m = JSON.parse(savedManifest);
      Object.assign(m.components.redis.artifact, { sha256: createHash('sha256').update(bytes).digest('hex'), stored_bytes: bytes.length, plaintext_bytes: 3000 });
      await writeFile(manifestFile, JSON.stringify(m, null, 2));
      await src.cli('FLUSHALL');
      await src.cli('SET', 'marker', 'untouched');
      const file = path.join(ws.dir, 'keys.yaml');
      const r = await runCli(['restore', '--plan', 'redis', '-c', file, '--yes']);
      expect(r.code, r.stdout + r.stderr).toBe(5);
      // The cut falls inside a record, or (when SCAN's order puts a record boundary at byte 3000) between two.
      expect(r.stdout + r.stderr).toMatch(/keys stream ends after 3000 bytes, (inside record #\d+|after record #\d+, before its trailer): it was cut short/);
      expect(await src.cli('DBSIZE')).toBe('1');
    } finally {
      await writeFile(obj, savedObj);
      await writeFile(manifestFile, savedManifest);
    }
  });

  it('docs/KEYS-FORMAT.md: the hand-restore runbook works verbatim (age, zstd, python3, redis-cli)', async () => {
    const doc = await readFile(path.join(__dirname, '../../docs/KEYS-FORMAT.md'), 'utf8');
    const blocks = [...doc.matchAll(/```sh runbook\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(1);
    const target = await server();
    const work = await tempDir('tykdr-keys-runbook-');
    const res = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', blocks[0]!], {
      env: { ...process.env, SNAP: path.join(ws.storeDir, 'snapshots', snapshotId), IDENTITY: ws.identityFile, WORK: work, PORT: String(target.port) },
    });
    expect(res.stdout).toMatch(/errors: 0, replies: \d+/);
    expect(res.stderr).toMatch(/\d+ records checked/);
    const after = await redisContents(target.port, [0]);
    for (const [k, v] of backedUp) {
      if (['ephemeral', 'analytics', 'mdcb'].includes(clsOf(k))) expect(after.has(k), k).toBe(false);
      else expect(after.get(k), k).toEqual(v);
    }
  });
});
