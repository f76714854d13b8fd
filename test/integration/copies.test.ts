import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startMinio, type Minio } from '../helpers/minio.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

/**
 * Off-site copies (issue 13, part 3): a MinIO bucket as the primary store, a local folder and a second bucket
 * as copies. `tykdr copy` moves snapshots without decrypting them and writes the manifest last; restore and
 * drill fall back to a copy when the primary cannot be used; the daemon copies every new snapshot.
 */

let minio: Minio;
let source: RedisServer;
let target: RedisServer;
let ws: Workspace;
let config: string;
let filesRoot: string;

const offsiteDir = () => path.join(ws.dir, 'offsite');
/** A snapshot whose copy to offsite failed (its object was altered at the time): the daemon catches it up. */
let notCopied = '';

async function s3Objects(bucket: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const list = await minio.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  for (const o of list.Contents ?? []) {
    const got = await minio.client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
    out.set(o.Key!, Buffer.from(await got.Body!.transformToByteArray()));
  }
  return out;
}

async function folderObjects(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(path.relative(root, p), await readFile(p));
    }
  };
  if (existsSync(root)) await walk(root);
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function keyspace(port: number): Promise<Record<string, string>> {
  const r = new Redis({ port, lazyConnect: true });
  await r.connect();
  const out: Record<string, string> = {};
  for (const k of (await r.keys('*')).filter((k) => !k.startsWith('tykdr:'))) out[k] = sha((await r.dumpBuffer(k))!);
  r.disconnect();
  return out;
}

beforeAll(async () => {
  [minio, source, target, ws] = await Promise.all([startMinio(), startRedis(), startRedis(), makeWorkspace()]);
  await minio.createBucket('primary');
  await minio.createBucket('region2');
  const r = new Redis({ port: source.port });
  for (let i = 0; i < 200; i++) await r.set(`apikey-${i.toString(16).padStart(24, '0')}`, JSON.stringify({ org_id: 'o1', i }));
  await r.hset('tyk-admin-api-x', { a: '1', b: '2' });
  r.disconnect();
  filesRoot = path.join(ws.dir, 'tyk');
  await mkdir(path.join(filesRoot, 'apps'), { recursive: true });
  await writeFile(path.join(filesRoot, 'tyk.conf'), '{"listen_port": 8080}\n');
  // Big enough that a kill during the copy can land while bytes move.
  await writeFile(path.join(filesRoot, 'apps', 'blob.bin'), randomBytes(16 * 1024 * 1024));
  const s3 = (bucket: string, extra = '') =>
    `{ kind: s3, bucket: ${bucket}, endpoint: ${minio.endpoint}, forcePathStyle: true, accessKeyId: ${minio.accessKeyId}, secretAccessKey: "\${S3_SECRET}", maxAttempts: 1, connectTimeout: 2s, stallTimeout: 10s${extra} }`;
  config = await ws.writeConfig(
    'tykdr.yaml',
    `store: ${s3('primary')}
copies:
  offsite: { kind: local, path: ./offsite }
  region2: ${s3('region2', ', auto: false')}
encryption: { recipients: [${ws.recipient}], identityFile: ./identity.txt }
components:
  redis:
    kind: redis
    port: ${source.port}
    restore: { target: { port: ${target.port} } }
  config:
    kind: files
    roots: [${filesRoot}]
`,
  );
}, 180_000);

afterAll(async () => {
  await Promise.allSettled([minio?.stop(), source?.stop(), target?.stop()]);
  await ws?.cleanup();
});

const env = () => ({ S3_SECRET: minio.secretAccessKey });
const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) => runCli([...args, '--config', config], { ...opts, env: { ...env(), ...opts.env } });

describe('tykdr copy', () => {
  let first: string;

  it('copies a snapshot byte for byte, manifest last, and finds it complete on a rerun', async () => {
    const b = await cli(['backup', '--json']);
    expect(b.code, b.stderr).toBe(0);
    first = (JSON.parse(b.stdout) as { id: string }).id;

    const c = await cli(['copy', 'latest', '--to', 'offsite', '--check', '--json']);
    expect(c.code, c.stderr).toBe(0);
    const out = JSON.parse(c.stdout) as { ok: boolean; snapshots: Array<{ id: string; manifest: string; objects: Array<{ status: string }>; checked?: { objects: number } }> };
    expect(out.ok).toBe(true);
    expect(out.snapshots).toHaveLength(1);
    expect(out.snapshots[0]!.id).toBe(first);
    expect(out.snapshots[0]!.manifest).toBe('written');
    expect(out.snapshots[0]!.objects.map((o) => o.status)).toEqual(['copied', 'copied']);
    expect(out.snapshots[0]!.checked?.objects).toBe(2);

    // Every object the primary holds for the snapshot is at the copy with the same bytes.
    const primary = await s3Objects('primary');
    const copy = await folderObjects(offsiteDir());
    const ofFirst = [...primary.keys()].filter((k) => k.startsWith(`snapshots/${first}/`));
    expect(ofFirst.length).toBeGreaterThanOrEqual(3);
    for (const k of ofFirst) expect(sha(copy.get(k)!), k).toBe(sha(primary.get(k)!));

    const again = await cli(['copy', first, '--to', 'offsite', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const a = JSON.parse(again.stdout) as { snapshots: Array<{ manifest: string; bytes_copied: number; objects: Array<{ status: string }> }> };
    expect(a.snapshots[0]!.manifest).toBe('present');
    expect(a.snapshots[0]!.bytes_copied).toBe(0);
    expect(a.snapshots[0]!.objects.every((o) => o.status === 'present')).toBe(true);

    const listed = await cli(['snapshots', '--store', 'offsite', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { snapshots: Array<{ id: string; complete: boolean }> }).snapshots).toEqual([
      expect.objectContaining({ id: first, complete: true }),
    ]);
  });

  it('a copy killed with SIGKILL leaves no manifest at the destination; the rerun finishes it', async () => {
    let killed = false;
    const k = await cli(['copy', first, '--to', 'region2'], {
      onStderr: (chunk, kill) => {
        if (!killed && chunk.includes('config.tar')) {
          killed = true;
          kill('SIGKILL');
        }
      },
    });
    expect(k.signal).toBe('SIGKILL');
    const held = await s3Objects('region2');
    expect([...held.keys()].filter((key) => key.endsWith('manifest.json'))).toEqual([]);
    const listed = await cli(['snapshots', '--store', 'region2', '--json']);
    const rows = (JSON.parse(listed.stdout) as { snapshots: Array<{ complete: boolean }> }).snapshots;
    expect(rows.every((r) => !r.complete)).toBe(true);

    const rerun = await cli(['copy', first, '--to', 'region2', '--check', '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect((JSON.parse(rerun.stdout) as { snapshots: Array<{ manifest: string; checked?: { objects: number } }> }).snapshots[0]).toMatchObject({
      manifest: 'written',
      checked: { objects: 2 },
    });
    const v = await cli(['verify', first, '--store', 'region2', '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('refuses an object altered in the source store: exit 5 naming it, and no complete snapshot at the destination', async () => {
    const b = await cli(['backup', '--json', '--component', 'redis']);
    expect(b.code, b.stderr).toBe(0);
    const id = (JSON.parse(b.stdout) as { id: string }).id;
    notCopied = id;
    const objects = await s3Objects('primary');
    const rdbKey = [...objects.keys()].find((k) => k.startsWith(`snapshots/${id}/redis.`))!;
    const bytes = Buffer.from(objects.get(rdbKey)!);
    bytes[bytes.length >> 1]! ^= 0xff;
    await minio.client.send(new PutObjectCommand({ Bucket: 'primary', Key: rdbKey, Body: bytes }));

    const before = await folderObjects(offsiteDir());
    const c = await cli(['copy', id, '--to', 'offsite']);
    expect(c.code).toBe(5);
    expect(c.stderr).toContain(path.basename(rdbKey));
    expect(c.stderr).toContain('sha256 check failed');
    const after = await folderObjects(offsiteDir());
    expect([...after.keys()].filter((k) => k.includes(id))).toEqual([]);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    // Put the good bytes back for the tests that follow.
    bytes[bytes.length >> 1]! ^= 0xff;
    await minio.client.send(new PutObjectCommand({ Bucket: 'primary', Key: rdbKey, Body: bytes }));
  });

  it('names an unknown store and the ones there are', async () => {
    const c = await cli(['copy', 'latest', '--to', 'elsewhere']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('no store named "elsewhere"');
    expect(c.stderr).toContain('primary, offsite, region2');
  });
});

describe('the daemon copies every new snapshot', () => {
  it('backs up, copies to the auto copy store and checks it there; leaves the other copy store alone', async () => {
    const before = (await s3Objects('region2')).size;
    // An older snapshot in the primary whose manifest is damaged (prune keeps it): it cannot be copied, and it is said,
    // never a reason to leave the new snapshot or the caught-up one uncopied.
    const damaged = '20200101T000000Z-0000dd';
    await minio.client.send(new PutObjectCommand({ Bucket: 'primary', Key: `snapshots/${damaged}/manifest.json`, Body: '{"format": 1}' }));
    const d = await cli(['daemon', '--once', '--job', 'backup', '--no-leader']);
    await minio.client.send(new DeleteObjectCommand({ Bucket: 'primary', Key: `snapshots/${damaged}/manifest.json` }));
    expect(d.stdout + d.stderr).toMatch(new RegExp(`"an earlier snapshot missing from a copy store could not be copied; the new one is copied anyway".*"snapshot":"${damaged}"`));
    expect(d.code, d.stdout + d.stderr).toBe(0);
    const copied = (d.stdout + d.stderr).split('\n').find((l) => l.includes('snapshot copied'));
    expect(copied, d.stdout + d.stderr).toBeDefined();
    const id = /"snapshot":"([^"]+)"/.exec(copied!)![1]!;
    expect(existsSync(path.join(offsiteDir(), 'snapshots', id, 'manifest.json'))).toBe(true);
    expect((await s3Objects('region2')).size).toBe(before);
    // The snapshot whose copy failed earlier is caught up in the same run.
    expect(d.stdout + d.stderr).toMatch(new RegExp(`"snapshot copied".*"snapshot":"${notCopied}".*"caught_up":true`));
    expect(existsSync(path.join(offsiteDir(), 'snapshots', notCopied, 'manifest.json'))).toBe(true);
  });
});

describe('restore and drill fall back to a copy when the primary store is down', () => {
  let wanted: Record<string, string>;

  beforeAll(async () => {
    // The newest snapshot everywhere is the daemon's, copied to offsite; the primary goes away.
    wanted = await keyspace(source.port);
    await minio.stop();
  }, 60_000);

  it('restore says the primary cannot be used and restores from the copy', async () => {
    const r = await cli(['restore', '--plan', 'redis', '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { store: string; store_fallback: Array<{ name: string; reason: string }>; report: { status: string; warnings: string[] } };
    expect(out.store).toBe('offsite');
    expect(out.store_fallback.map((s) => s.name)).toEqual(['primary']);
    const report = out.report;
    expect(report.status).toBe('succeeded');
    expect(report.warnings.join('\n')).toContain('store "primary" (s3://primary/) was not used');
    expect(await keyspace(target.port)).toEqual(wanted);
    // The report went to the store it read, the copy.
    const reports = [...(await folderObjects(offsiteDir())).keys()].filter((k) => k.includes('report'));
    expect(reports.length).toBeGreaterThan(0);
  });

  it('drill proves the copy', async () => {
    const r = await cli(['drill', '--plan', 'redis']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/store "primary" \(s3:\/\/primary\/\) cannot be used/);
    expect(r.stderr).toContain('using store "offsite"');
    expect(r.stdout).toContain('DR drill');
    expect(r.stdout).toContain('SUCCEEDED');
  });

  it('--no-fallback keeps to the primary and fails with the store exit code', async () => {
    const r = await cli(['restore', '--plan', 'redis', '--yes', '--no-fallback']);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('primary');
  });

  it('--store picks a store directly; with no store holding a snapshot the error names each and why', async () => {
    const direct = await cli(['restore', '--plan', 'redis', '--yes', '--store', 'offsite', '--no-fallback', '--json']);
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.stderr).not.toContain('cannot be used');

    await rm(offsiteDir(), { recursive: true, force: true });
    await mkdir(offsiteDir());
    const r = await cli(['restore', '--plan', 'redis', '--yes', '--store', 'offsite']);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('no store will do');
    expect(r.stderr).toMatch(/"offsite" \([^)]*\): it holds no complete snapshot/);
    expect(r.stderr).toContain('"primary"');
    expect(r.stderr).toContain('"region2"');
  });
});
