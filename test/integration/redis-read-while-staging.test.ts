import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Crc64 } from '../../src/backends/redis/formats/crc64.js';
import { runCli } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * A live restore of an RDB (RESTORE per key) reads the whole RDB before its first write: structure, CRC-64, counts and
 * the sample. That read is made as the RDB is staged (Target.readWhileStaging), not from the file afterwards. These
 * runs prove it is made, and that what it finds still stops the restore before the target is touched: a damaged RDB
 * (exit 5) and a module value (exit 2), each in an object that decrypts fine with a manifest that matches it.
 */
const sh = promisify(execFile);
let ws: Workspace;
let src: RedisServer;
let dst: RedisServer;
let snapshotId: string;
let cfg: string;

const str = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);

/** An RDB (version 9, as Redis 5+ loads) holding `records` in database 0, with its CRC-64 (wrong with `badCrc`). */
function rdb(records: Buffer[], badCrc = false): Buffer {
  const body = Buffer.concat([Buffer.from('REDIS0009'), Buffer.from([0xfe, 0]), ...records, Buffer.from([0xff])]);
  const crc = new Crc64();
  crc.update(body);
  const trailer = Buffer.from(crc.digestHex(), 'hex').reverse();
  if (badCrc) trailer[0] = trailer[0]! ^ 0xff;
  return Buffer.concat([body, trailer]);
}

/** A RedisJSON value: module type id "ReJSON-RL", encoding version 3, then an opaque payload and the EOF opcode. */
function moduleRecord(key: string): Buffer {
  const charset = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let id = 0n;
  for (const ch of 'ReJSON-RL') id = (id << 6n) | BigInt(charset.indexOf(ch));
  id = (id << 10n) | 3n;
  const idBytes = Buffer.alloc(9);
  idBytes[0] = 0x81;
  idBytes.writeBigUInt64BE(id, 1);
  return Buffer.concat([Buffer.from([7]), str(key), idBytes, Buffer.from([5]), str('{"a":1}'), Buffer.from([0])]);
}

/** Replaces the snapshot's RDB with `plain`, compressed and encrypted as a backup would, and the manifest to match. */
async function storeRdb(plain: Buffer, source: Record<string, unknown> = {}): Promise<() => Promise<void>> {
  const dir = path.join(ws.storeDir, 'snapshots', snapshotId);
  const obj = path.join(dir, 'redis.rdb.zst.age');
  const manifestFile = path.join(dir, 'manifest.json');
  const [savedObj, savedManifest] = await Promise.all([readFile(obj), readFile(manifestFile, 'utf8')]);
  await writeFile(`${obj}.plain`, plain);
  await sh('bash', ['-euo', 'pipefail', '-c', 'zstd -q -c "$OBJ.plain" | age -r "$R" > "$OBJ" && rm "$OBJ.plain"'], { env: { ...process.env, OBJ: obj, R: ws.recipient } });
  const bytes = await readFile(obj);
  const m = JSON.parse(savedManifest);
  Object.assign(m.components.redis.artifact, { sha256: createHash('sha256').update(bytes).digest('hex'), stored_bytes: bytes.length, plaintext_bytes: plain.length });
  for (const [k, v] of Object.entries(source)) {
    if (v === undefined) delete m.components.redis.source[k];
    else m.components.redis.source[k] = v;
  }
  await writeFile(manifestFile, JSON.stringify(m, null, 2));
  return async () => {
    await writeFile(obj, savedObj);
    await writeFile(manifestFile, savedManifest);
  };
}

beforeAll(async () => {
  ws = await makeWorkspace();
  src = await startRedis();
  dst = await startRedis();
  for (let i = 0; i < 300; i++) await src.cli('SET', `apikey-${String(i).padStart(32, '0')}`, JSON.stringify({ org_id: 'org1', n: i }), 'EX', '86400');
  await src.cli('SET', 'tyk-admin-api-policies', '[]');
  cfg = await ws.writeConfig(
    'tykdr.yaml',
    `store: { kind: local, path: ./store }
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    host: 127.0.0.1
    port: ${src.port}
    restore:
      mode: live
      load: restore
      target: { host: 127.0.0.1, port: ${dst.port} }
restore: { reportDir: ./reports }
`,
  );
  const b = await runCli(['backup', '-c', cfg, '--json']);
  expect(b.code, b.stderr).toBe(0);
  snapshotId = JSON.parse(b.stdout).id as string;
}, 120_000);

afterAll(async () => {
  await src?.stop();
  await dst?.stop();
  await ws?.cleanup();
});

describe('a live restore reads the RDB as it is staged', () => {
  it('reads it while staging, and restores every key with every check passing', async () => {
    await dst.cli('FLUSHALL');
    const r = await runCli(['restore', '--plan', 'redis', '-c', cfg, '--yes', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const step = JSON.parse(r.stdout).report.steps.find((s: { component: string }) => s.component === 'redis');
    expect(step.details.redis.staged_read).toBe('while staging');
    // The backup checked the RDB's CRC-64 (manifest: rdb_checksum ok) and these are its bytes (SHA-256): not again.
    expect(step.details.redis.rdb_crc).toBe('checked by the backup (same bytes: SHA-256)');
    expect(step.details.redis.keys_restored).toBe(301);
    for (const c of step.checks) expect(c.status === 'passed' || c.name === 'redis-replicas', `${c.name}: ${c.detail}`).toBe(true);
    expect(await dst.cli('DBSIZE')).toBe('301');
    expect(await dst.cli('GET', `apikey-${'0'.repeat(32)}`)).toBe(JSON.stringify({ org_id: 'org1', n: 0 }));
  }, 60_000);

  it('a snapshot whose backup did not check the RDB\'s CRC-64: the restore checks it; a wrong one exits 5, the target untouched', async () => {
    const good = await storeRdb(rdb([Buffer.concat([Buffer.from([0]), str('apikey-x'), str('{"org_id":"o"}')])]), { rdb_checksum: undefined });
    try {
      await dst.cli('FLUSHALL');
      const r = await runCli(['restore', '--plan', 'redis', '-c', cfg, '--yes', '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const step = JSON.parse(r.stdout).report.steps.find((x: { component: string }) => x.component === 'redis');
      expect(step.details.redis.rdb_crc).toBe('checked');
      expect(await dst.cli('GET', 'apikey-x')).toBe('{"org_id":"o"}');
    } finally {
      await good();
    }
    const restoreFiles = await storeRdb(rdb([Buffer.concat([Buffer.from([0]), str('apikey-x'), str('{"org_id":"o"}')])], true), { rdb_checksum: undefined });
    try {
      await dst.cli('FLUSHALL');
      await dst.cli('SET', 'marker', 'untouched');
      const r = await runCli(['restore', '--plan', 'redis', '-c', cfg, '--yes']);
      expect(r.code, r.stdout + r.stderr).toBe(5);
      expect(r.stdout + r.stderr).toMatch(/RDB checksum mismatch/);
      expect(r.stdout + r.stderr).not.toMatch(/Unhandled|node:events/);
      expect(await dst.cli('DBSIZE')).toBe('1');
      expect(await dst.cli('GET', 'marker')).toBe('untouched');
    } finally {
      await restoreFiles();
    }
  }, 60_000);

  it('an RDB holding a module value: exit 2 naming the key and its module type, the target untouched', async () => {
    const restoreFiles = await storeRdb(rdb([Buffer.concat([Buffer.from([0]), str('apikey-y'), str('{"org_id":"o"}')]), moduleRecord('some-json')]));
    try {
      await dst.cli('FLUSHALL');
      await dst.cli('SET', 'marker', 'untouched');
      const r = await runCli(['restore', '--plan', 'redis', '-c', cfg, '--yes']);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stdout + r.stderr).toMatch(/holds "some-json" in database 0 that tykdr cannot restore key by key: a module value \(RDB type 7, module type "ReJSON-RL"/);
      expect(await dst.cli('DBSIZE')).toBe('1');
    } finally {
      await restoreFiles();
    }
  }, 60_000);

  it('an RDB of 40 MB with an unknown record type in its middle: exit 5 naming it, the target untouched (the tee waiting on a failed reader: test/unit/tee.test.ts)', async () => {
    // Larger than the reader's buffers (the tee waits for it to drain): a reader that fails mid-stream must not leave
    // staging waiting for a drain that never comes.
    const n = 800_000;
    const rec = (i: number) => Buffer.concat([Buffer.from([0]), str(`apikey-${String(i).padStart(24, '0')}`), str(`{"org_id":"o","n":${i}}`)]);
    const records: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      if (i === n / 2) records.push(Buffer.concat([Buffer.from([0x30]), str('k'), str('v')]));
      records.push(rec(i));
    }
    const plain = rdb(records);
    expect(plain.length).toBeGreaterThan(40_000_000);
    const restoreFiles = await storeRdb(plain);
    try {
      await dst.cli('FLUSHALL');
      await dst.cli('SET', 'marker', 'untouched');
      const t0 = Date.now();
      const r = await runCli(['restore', '--plan', 'redis', '-c', cfg, '--yes']);
      expect(r.code, r.stdout + r.stderr).toBe(5);
      expect(r.stdout + r.stderr).toMatch(/unknown record type 48/);
      expect(Date.now() - t0).toBeLessThan(60_000);
      expect(await dst.cli('DBSIZE')).toBe('1');
    } finally {
      await restoreFiles();
    }
  }, 120_000);

  it('a wrong identity (staging fails before the read ends): exit 5, no unhandled error, the target untouched', async () => {
    const other = await runCli(['key', 'generate', '--output', path.join(ws.dir, 'other-identity.txt'), '--json']);
    expect(other.code).toBe(0);
    await dst.cli('FLUSHALL');
    await dst.cli('SET', 'marker', 'untouched');
    const r = await runCli(['restore', '--plan', 'redis', '-c', cfg, '--yes', '--identity', path.join(ws.dir, 'other-identity.txt')]);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.stdout + r.stderr).not.toMatch(/Unhandled|node:events/);
    expect(await dst.cli('DBSIZE')).toBe('1');
  }, 60_000);
});
