import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/backends/stores/s3-store.js';
import { listSnapshots } from '../../src/core/catalog.js';
import type { S3Store as S3StoreConfig } from '../../src/core/config/load.js';
import { TykdrError } from '../../src/core/errors.js';
import { newSnapshotId } from '../../src/core/layout.js';
import { runCli } from '../helpers/cli.js';
import { minioStoreConfig, startMinio, type Minio } from '../helpers/minio.js';
import { makeWorkspace, type Workspace } from '../helpers/workspace.js';

const DAY = 86_400_000;
let minio: Minio;
let ws: Workspace;
let tree: string;

const env = () => ({ TEST_S3_KEY: minio.accessKeyId, TEST_S3_SECRET: minio.secretAccessKey });

function store(bucket: string, over: Partial<S3StoreConfig> = {}): S3Store {
  return new S3Store(minioStoreConfig(minio, bucket, '', { objectLock: { mode: 'GOVERNANCE', days: 1 }, ...over }));
}

async function versions(bucket: string, prefix: string) {
  const out = await minio.client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix }));
  return { versions: out.Versions ?? [], markers: out.DeleteMarkers ?? [] };
}

async function head(bucket: string, key: string) {
  return minio.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
}

/** Only to let a retention date pass in real time (MinIO checks it against its own clock, to the second): that is the point there. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  [minio, ws] = await Promise.all([startMinio(), makeWorkspace()]);
  await minio.createBucket('locked', { objectLock: true });
  await minio.createBucket('plain');
  tree = await mkdtemp(path.join(tmpdir(), 'tykdr-lock-tree-'));
  await mkdir(path.join(tree, 'gw'));
  await writeFile(path.join(tree, 'gw', 'tyk.conf'), JSON.stringify({ listen_port: 8080, secret: 'lock-test' }));
});

afterAll(async () => {
  await Promise.all([minio?.stop(), ws?.cleanup(), tree && rm(tree, { recursive: true, force: true })]);
});

describe('S3 Object Lock: the store', () => {
  it('check() fails with a clear storeError when the bucket has no Object Lock', async () => {
    const err = (await store('plain').check().catch((e: unknown) => e)) as TykdrError;
    expect(err).toBeInstanceOf(TykdrError);
    expect(err.kind).toBe('storeError');
    expect(err.message).toBe('bucket "plain" does not have Object Lock enabled, but store.objectLock is set (s3://plain/)');
    expect(err.fix).toContain('--object-lock-enabled-for-bucket');
    await store('locked').check();
    await store('plain', { objectLock: undefined }).check();
  });

  it('every upload carries the configured retention, single-part and multipart', async () => {
    const s = store('locked', { prefix: 'put' });
    const before = Date.now();
    await s.put('small', Readable.from([Buffer.from('hello')]));
    await s.put('big', Readable.from([randomBytes(6 * 1024 * 1024), randomBytes(5 * 1024 * 1024)]));
    for (const k of ['put/small', 'put/big']) {
      const h = await head('locked', k);
      expect(h.ObjectLockMode).toBe('GOVERNANCE');
      const until = h.ObjectLockRetainUntilDate!.getTime();
      expect(until).toBeGreaterThanOrEqual(before + DAY - 1000);
      expect(until).toBeLessThanOrEqual(Date.now() + DAY + 1000);
    }
    expect((await head('locked', 'put/big')).ContentLength).toBe(11 * 1024 * 1024);
    const info = await s.stat('small');
    expect(info?.lock).toEqual({ mode: 'GOVERNANCE', until: (await head('locked', 'put/small')).ObjectLockRetainUntilDate });
  });

  it('a plain DeleteObject of a locked object "succeeds" with a delete marker and frees nothing', async () => {
    const s = store('locked', { prefix: 'trap' });
    await s.put('obj', Readable.from([Buffer.from('still here')]));
    const out = await minio.client.send(new DeleteObjectCommand({ Bucket: 'locked', Key: 'trap/obj' }));
    expect(out.DeleteMarker).toBe(true);
    expect(await s.stat('obj')).toBeNull(); // hidden...
    const v = await versions('locked', 'trap/obj');
    expect(v.versions).toHaveLength(1); // ...but every byte is still stored
    expect(v.markers).toHaveLength(1);
  });

  it('Store.delete removes by version id: a locked version is refused and reported, never deleted', async () => {
    const s = store('locked', { prefix: 'del' });
    await s.put('obj', Readable.from([Buffer.from('locked bytes')]));
    const until = (await head('locked', 'del/obj')).ObjectLockRetainUntilDate!;
    const r = await s.delete('obj');
    expect(r).toEqual({ status: 'locked', lock: { mode: 'GOVERNANCE', until } });
    const v = await versions('locked', 'del/obj');
    expect(v.versions).toHaveLength(1);
    expect(v.markers).toHaveLength(0); // no delete marker hides it
    const body = await s.get('obj');
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('locked bytes');
  });

  it('Store.delete of an object whose retention has ended removes every version and marker', async () => {
    const s = store('locked', { prefix: 'expired' });
    // Room for the PUTs, the DELETE and the first Store.delete on a loaded machine (MinIO keeps whole seconds).
    const soon = new Date(Date.now() + 4000);
    for (const body of ['v1', 'v2']) {
      await minio.client.send(
        new PutObjectCommand({ Bucket: 'locked', Key: 'expired/obj', Body: body, ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: soon }),
      );
    }
    await minio.client.send(new DeleteObjectCommand({ Bucket: 'locked', Key: 'expired/obj' })); // a marker on top
    expect((await s.delete('obj')).status).toBe('locked');
    await sleep(Math.max(0, soon.getTime() - Date.now()) + 1200);
    expect(await s.delete('obj')).toEqual({ status: 'deleted' });
    expect(await versions('locked', 'expired/obj')).toEqual({ versions: [], markers: [] });
    expect(await s.delete('obj')).toEqual({ status: 'missing' });
  });

  it('Store.delete in a bucket without versioning deletes plainly', async () => {
    const s = store('plain', { prefix: 'x', objectLock: undefined });
    await s.put('obj', Readable.from([Buffer.from('bye')]));
    expect(await s.delete('obj')).toEqual({ status: 'deleted' });
    expect(await s.stat('obj')).toBeNull();
    expect(await s.delete('obj')).toEqual({ status: 'missing' });
  });
});

describe('S3 Object Lock: backup and prune', () => {
  const cfg = (name: string, keepLast: number) =>
    ws.writeConfig(
      name,
      `store:
  kind: s3
  bucket: locked
  prefix: tyk
  endpoint: ${minio.endpoint}
  forcePathStyle: true
  accessKeyId: \${TEST_S3_KEY}
  secretAccessKey: \${TEST_S3_SECRET}
  objectLock: { mode: GOVERNANCE, days: 1 }
encryption: { recipients: [${ws.recipient}] }
retention: { keepLast: ${keepLast}, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: 1h }
components:
  config: { kind: files, roots: [${path.join(tree, 'gw')}] }
`,
    );
  const cli = (...args: string[]) => runCli(args, { env: env() });
  let first: string;
  let second: string;

  beforeAll(async () => {
    await cfg('lock.yaml', 1);
    const a = await cli('backup', '-c', path.join(ws.dir, 'lock.yaml'), '--json');
    expect(a.code, a.stderr).toBe(0);
    const b = await cli('backup', '-c', path.join(ws.dir, 'lock.yaml'), '--json');
    expect(b.code, b.stderr).toBe(0);
    first = JSON.parse(a.stdout).id;
    second = JSON.parse(b.stdout).id;
  });

  it('backup uploads every object of a snapshot under retention', async () => {
    const listed = await minio.client.send(new ListObjectsV2Command({ Bucket: 'locked', Prefix: `tyk/snapshots/${first}/` }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!).sort();
    expect(keys).toEqual([`tyk/snapshots/${first}/config.tar.zst.age`, `tyk/snapshots/${first}/manifest.json`]);
    for (const k of keys) {
      const h = await head('locked', k);
      expect(h.ObjectLockMode).toBe('GOVERNANCE');
      expect(h.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + DAY - 5 * 60_000);
    }
  });

  it('a dry run says the locked snapshot will be skipped', async () => {
    const res = await cli('prune', '-c', path.join(ws.dir, 'lock.yaml'));
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`would remove\\s+${first}`));
    expect(res.stdout).toMatch(new RegExp(`snapshots/${first}/manifest\\.json is locked until \\d{4}-\\d\\d-\\d\\d \\(GOVERNANCE\\): it will be skipped`));
  });

  it('prune --confirm skips a locked snapshot, reports it, counts nothing, and does not fail', async () => {
    const res = await cli('prune', '-c', path.join(ws.dir, 'lock.yaml'), '--confirm', '--json');
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    const entry = out.snapshots.find((e: any) => e.id === first);
    const until = (await head('locked', `tyk/snapshots/${first}/manifest.json`)).ObjectLockRetainUntilDate!;
    expect(entry.removal).toEqual({
      status: 'locked',
      objects: 0,
      bytes: 0,
      locked: [
        {
          key: `snapshots/${first}/manifest.json`,
          mode: 'GOVERNANCE',
          until: until.toISOString(),
          detail: `locked until ${until.toISOString().slice(0, 10)} (GOVERNANCE)`,
        },
      ],
    });
    expect(out.totals).toMatchObject({ toRemove: 1, removed: 0, locked: 1, failed: 0, objects: 0, bytes: 0 });
    // Kept whole: still complete, nothing hidden behind delete markers.
    const list = await listSnapshots(store('locked', { prefix: 'tyk' }));
    expect(list.map((s) => [s.id, s.complete])).toEqual([
      [second, true],
      [first, true],
    ]);
    expect((await versions('locked', `tyk/snapshots/${first}/`)).markers).toEqual([]);

    const text = await cli('prune', '-c', path.join(ws.dir, 'lock.yaml'), '--confirm');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`LOCKED \\(kept\\)\\s+${first}`));
    expect(text.stdout).toMatch(/manifest\.json is locked until \d{4}-\d\d-\d\d \(GOVERNANCE\)/);
    expect(text.stdout).toContain('Removed 0 snapshot(s): 0 objects deleted, 0 B freed; 1 locked (skipped until their retention ends)');
  });

  /** Copies a snapshot under a new id (taken at `at`) with its own retention per object. */
  async function cloneWithRetention(srcId: string, at: Date, retain: (name: string) => Date): Promise<string> {
    const id = newSnapshotId(at);
    for (const name of ['config.tar.zst.age', 'manifest.json']) {
      const got = await minio.client.send(new GetObjectCommand({ Bucket: 'locked', Key: `tyk/snapshots/${srcId}/${name}` }));
      let body = Buffer.from(await got.Body!.transformToByteArray());
      if (name === 'manifest.json') {
        const m = JSON.parse(body.toString());
        m.id = id;
        m.created_at = at.toISOString();
        body = Buffer.from(JSON.stringify(m));
      }
      await minio.client.send(
        new PutObjectCommand({
          Bucket: 'locked',
          Key: `tyk/snapshots/${id}/${name}`,
          Body: body,
          ObjectLockMode: 'GOVERNANCE',
          ObjectLockRetainUntilDate: retain(name),
        }),
      );
    }
    return id;
  }

  it('once retention ends, prune really removes the data (every version), and a partly locked snapshot loses its manifest first', async () => {
    // Still ahead when the two clones' PUTs are sent, on a loaded machine too.
    const soon = new Date(Date.now() + 5000);
    const later = new Date(Date.now() + DAY);
    const expired = await cloneWithRetention(second, new Date(Date.now() - 3 * DAY), () => soon);
    const mixed = await cloneWithRetention(second, new Date(Date.now() - 2 * DAY), (n) => (n === 'manifest.json' ? soon : later));
    await sleep(Math.max(0, soon.getTime() - Date.now()) + 1200);

    const res = await cli('prune', '-c', path.join(ws.dir, 'lock.yaml'), '--confirm', '--json');
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    const byId = Object.fromEntries(out.snapshots.map((e: any) => [e.id, e]));
    expect(byId[expired].removal).toMatchObject({ status: 'removed', objects: 2, locked: [] });
    expect(byId[expired].removal.bytes).toBeGreaterThan(0);
    expect(await versions('locked', `tyk/snapshots/${expired}/`)).toEqual({ versions: [], markers: [] });

    expect(byId[mixed].removal).toMatchObject({ status: 'partly-removed', objects: 1 });
    expect(byId[mixed].removal.locked).toEqual([expect.objectContaining({ key: `snapshots/${mixed}/config.tar.zst.age`, mode: 'GOVERNANCE' })]);
    const after = await listSnapshots(store('locked', { prefix: 'tyk' }));
    expect(after.find((s) => s.id === mixed)).toMatchObject({ complete: false, objects: 1 });
    expect(after.find((s) => s.id === expired)).toBeUndefined();
    expect(out.totals).toMatchObject({ removed: 1, locked: 2, failed: 0, objects: 3 });
  });
});
