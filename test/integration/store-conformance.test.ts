import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { S3Store } from '../../src/backends/stores/s3-store.js';
import type { Store } from '../../src/core/interfaces/store.js';
import { Secret } from '../../src/core/secret.js';
import { TykdrError } from '../../src/core/errors.js';
import { startMinio, type Minio } from '../helpers/minio.js';

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function keys(store: Store, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
}

/** A body that yields some bytes, then fails, as a source that dies mid-dump would. */
function failingBody(after: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= after) this.destroy(new Error('source died'));
      else {
        sent += 65536;
        this.push(randomBytes(65536));
      }
    },
  });
}

/** The contract every store must keep (see src/backends/stores/store.ts). */
function conformance(name: string, make: () => Promise<Store>) {
  describe(`${name} store conformance`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await make();
      await store.check();
    });

    it('puts, stats, gets, lists and deletes', async () => {
      const data = randomBytes(300_000);
      const put = await store.put('snapshots/a/obj.bin', Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
      expect(put.bytes).toBe(data.length);
      expect((await store.stat('snapshots/a/obj.bin'))?.size).toBe(data.length);
      expect(await store.stat('snapshots/a/missing')).toBeNull();
      expect((await readAll(await store.get('snapshots/a/obj.bin'))).equals(data)).toBe(true);
      await store.put('snapshots/b/x.json', Readable.from([Buffer.from('{}')]));
      expect(await keys(store, 'snapshots/')).toEqual(['snapshots/a/obj.bin', 'snapshots/b/x.json']);
      expect(await keys(store, 'snapshots/a/')).toEqual(['snapshots/a/obj.bin']);
      await store.delete('snapshots/a/obj.bin');
      await store.delete('snapshots/a/obj.bin'); // deleting a missing key succeeds
      expect(await store.stat('snapshots/a/obj.bin')).toBeNull();
    });

    it('stores an empty object', async () => {
      await store.put('snapshots/e/empty', Readable.from([]));
      expect((await store.stat('snapshots/e/empty'))?.size).toBe(0);
      expect((await readAll(await store.get('snapshots/e/empty'))).length).toBe(0);
    });

    it('never overwrites an object', async () => {
      await store.put('snapshots/c/once', Readable.from([Buffer.from('first')]));
      await expect(store.put('snapshots/c/once', Readable.from([Buffer.from('second')]))).rejects.toThrow(/already exists/);
      expect((await readAll(await store.get('snapshots/c/once'))).toString()).toBe('first');
    });

    it('a body that fails leaves no object behind', async () => {
      await expect(store.put('snapshots/d/broken', failingBody(6 * 1024 * 1024))).rejects.toThrow(/source died/);
      expect(await store.stat('snapshots/d/broken')).toBeNull();
      expect(await keys(store, 'snapshots/d/')).toEqual([]);
    });

    it('an aborted put leaves no object behind', async () => {
      const ac = new AbortController();
      // Aborted once the store has taken 6 MiB: past the first 5 MiB part of a multipart upload (S3), mid-file (local).
      let pulled = 0;
      const endless = new Readable({
        read() {
          pulled += 65536;
          if (pulled === 6 * 1024 * 1024) setImmediate(() => ac.abort());
          this.push(randomBytes(65536));
        },
      });
      await expect(store.put('snapshots/f/aborted', endless, { signal: ac.signal })).rejects.toThrow();
      expect(await store.stat('snapshots/f/aborted')).toBeNull();
    });

    it('get of a missing object is a storeError', async () => {
      const err = await store.get('snapshots/zz/nothing').then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(TykdrError);
      expect((err as TykdrError).kind).toBe('storeError');
    });

    it('refuses keys that climb out of the root', async () => {
      await expect(store.put('../escape', Readable.from([]))).rejects.toThrow(/invalid object key/);
    });
  });
}

let localDir: string;
let minio: Minio;

beforeAll(async () => {
  localDir = await mkdtemp(path.join(tmpdir(), 'tykdr-store-'));
  minio = await startMinio();
  await minio.createBucket('conformance');
});

afterAll(async () => {
  await minio?.stop();
  if (localDir) await rm(localDir, { recursive: true, force: true });
});

conformance('local', async () => new LocalStore(path.join(localDir, 'store')));
const s3 = (over: Partial<ConstructorParameters<typeof S3Store>[0]> = {}) =>
  new S3Store({
    kind: 's3',
    bucket: 'conformance',
    prefix: 'tenant-a',
    region: 'us-east-1',
    endpoint: minio.endpoint,
    forcePathStyle: true,
    accessKeyId: minio.accessKeyId,
    secretAccessKey: new Secret(minio.secretAccessKey),
    partSizeMiB: 5,
    uploadConcurrency: 2,
    ...over,
  });

conformance('s3 (MinIO)', async () => s3());

describe('store specifics', () => {
  it('local: a failed write leaves no partial file', async () => {
    const store = new LocalStore(path.join(localDir, 'partials'));
    await expect(store.put('snapshots/x/y', failingBody(200_000))).rejects.toThrow();
    expect(await readdir(path.join(localDir, 'partials', 'snapshots', 'x'))).toEqual([]);
  });

  it('s3: a missing bucket is a storeError that names the bucket and the fix', async () => {
    const store = s3({ bucket: 'no-such-bucket', prefix: '' });
    const err = (await store.check().catch((e: unknown) => e)) as TykdrError;
    expect(err.kind).toBe('storeError');
    expect(err.message).toContain('"no-such-bucket" does not exist');
    expect(err.fix).toContain('create the bucket');
  });

  it('s3: wrong credentials are a storeError that does not contain the secret', async () => {
    const store = s3({ secretAccessKey: new Secret('wrong-secret-value-123') });
    const err = (await store.check().catch((e: unknown) => e)) as TykdrError;
    expect(err.kind).toBe('storeError');
    expect(err.message).toMatch(/access denied|HTTP 403/);
    expect(err.message).not.toContain('wrong-secret-value-123');
  });
});
