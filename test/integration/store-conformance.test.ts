import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { S3Store } from '../../src/backends/stores/s3-store.js';
import type { Store, UnfinishedUpload } from '../../src/core/interfaces/store.js';
import { Secret } from '../../src/core/secret.js';
import { TykdrError } from '../../src/core/errors.js';
import { minioStoreConfig, startMinio, type Minio } from '../helpers/minio.js';

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

async function unfinished(store: Store, prefix: string): Promise<UnfinishedUpload[]> {
  const out: UnfinishedUpload[] = [];
  for await (const u of store.listUnfinished(prefix)) out.push(u);
  return out.sort((a, b) => (a.key < b.key ? -1 : 1));
}

/**
 * A store under test, and how to leave behind what a crashed write leaves in it (a ".partial-" file, an
 * S3 multipart upload with a part and no completion): only the fixture knows the backend's layout.
 */
interface StoreFixture {
  store: Store;
  leaveUnfinished(key: string): Promise<void>;
}

/** The contract every store must keep (see src/core/interfaces/store.ts). */
function conformance(name: string, make: () => Promise<StoreFixture>) {
  describe(`${name} store conformance`, () => {
    let store: Store;
    let fx: StoreFixture;
    beforeAll(async () => {
      fx = await make();
      store = fx.store;
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

    it('stores a body of many small and large chunks byte for byte (several MiB: a local put writes in batches)', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 12_345);
      const chunks: Buffer[] = [];
      for (let o = 0, i = 0; o < data.length; i++) {
        const n = i % 2 === 0 ? 65_536 : 16; // as age writes: a sealed chunk, then its tag
        chunks.push(data.subarray(o, o + n));
        o += n;
      }
      const put = await store.put('snapshots/m/many.bin', Readable.from(chunks));
      expect(put.bytes).toBe(data.length);
      expect((await readAll(await store.get('snapshots/m/many.bin'))).equals(data)).toBe(true);
      await store.delete('snapshots/m/many.bin');
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

    it('a body that fails leaves no object and no unfinished write behind', async () => {
      await expect(store.put('snapshots/d/broken', failingBody(6 * 1024 * 1024))).rejects.toThrow(/source died/);
      expect(await store.stat('snapshots/d/broken')).toBeNull();
      expect(await keys(store, 'snapshots/d/')).toEqual([]);
      expect(await unfinished(store, 'snapshots/d/')).toEqual([]);
    });

    it('an aborted put leaves no object and no unfinished write behind', async () => {
      const ac = new AbortController();
      let sent = 0;
      const endless = new Readable({
        read() {
          sent += 65536;
          // Abort once more than a part (5 MiB) went in, so an S3 store is mid-way through a multipart upload.
          if (sent > 7 * 1024 * 1024 && !ac.signal.aborted) ac.abort();
          this.push(randomBytes(65536));
        },
      });
      await expect(store.put('snapshots/f/aborted', endless, { signal: ac.signal })).rejects.toThrow();
      expect(await store.stat('snapshots/f/aborted')).toBeNull();
      expect(await unfinished(store, 'snapshots/f/')).toEqual([]);
    });

    it('a put reports its retries (none here)', async () => {
      const put = await store.put('snapshots/r/one', Readable.from([Buffer.from('x')]));
      expect(put).toEqual({ bytes: 1, retries: 0 });
    });

    it('lists unfinished writes under a prefix (never finished objects), and removes one at a time', async () => {
      const before = Date.now();
      await store.put('snapshots/u/done', Readable.from([Buffer.from('finished')]));
      await fx.leaveUnfinished('snapshots/u/obj.bin');
      await fx.leaveUnfinished('other/x.bin');
      const found = await unfinished(store, 'snapshots/u/');
      expect(found.map((u) => u.key)).toEqual(['snapshots/u/obj.bin']);
      expect(found[0]!.since.getTime()).toBeGreaterThan(before - 60_000);
      expect(found[0]!.since.getTime()).toBeLessThan(Date.now() + 60_000);
      expect(typeof found[0]!.id).toBe('string');
      // Never seen as an object...
      expect(await keys(store, 'snapshots/u/')).toEqual(['snapshots/u/done']);
      expect(await store.stat('snapshots/u/obj.bin')).toBeNull();
      // ...and a wider prefix finds the others.
      expect((await unfinished(store, '')).map((u) => u.key)).toEqual(expect.arrayContaining(['snapshots/u/obj.bin', 'other/x.bin']));
      expect(await store.removeUnfinished(found[0]!)).toBe('removed');
      expect(await store.removeUnfinished(found[0]!)).toBe('missing');
      expect(await unfinished(store, 'snapshots/u/')).toEqual([]);
      expect((await readAll(await store.get('snapshots/u/done'))).toString()).toBe('finished');
      for (const u of await unfinished(store, 'other/')) expect(await store.removeUnfinished(u)).toBe('removed');
      expect(await unfinished(store, '')).toEqual([]);
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

conformance('local', async () => {
  const root = path.join(localDir, 'store');
  return {
    store: new LocalStore(root),
    // What a killed put leaves: the partial file it was writing.
    leaveUnfinished: async (key) => {
      const file = path.join(root, ...key.split('/'));
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(`${file}.partial-0badc0de`, randomBytes(1000));
    },
  };
});
const s3 = (over: Partial<ConstructorParameters<typeof S3Store>[0]> = {}) =>
  new S3Store(minioStoreConfig(minio, 'conformance', 'tenant-a', over));

/** What a killed multipart upload leaves: an upload with a part, never completed or aborted. */
async function leaveMultipart(Key: string): Promise<void> {
  const { UploadId } = await minio.client.send(new CreateMultipartUploadCommand({ Bucket: 'conformance', Key }));
  await minio.client.send(new UploadPartCommand({ Bucket: 'conformance', Key, UploadId, PartNumber: 1, Body: randomBytes(1000) }));
}

conformance('s3 (MinIO)', async () => ({ store: s3(), leaveUnfinished: (key) => leaveMultipart(`tenant-a/${key}`) }));

describe('store specifics', () => {
  it('local: a failed write leaves no partial file, nor the folders it made', async () => {
    const store = new LocalStore(path.join(localDir, 'partials'));
    await expect(store.put('snapshots/x/y', failingBody(200_000))).rejects.toThrow();
    expect(await readdir(path.join(localDir, 'partials'))).toEqual([]);
  });

  it('local: unfinished writes are partial files of the key, and nothing else can be removed as one', async () => {
    const root = path.join(localDir, 'partials2');
    const store = new LocalStore(root);
    await mkdir(path.join(root, 'snapshots', 'p'), { recursive: true });
    await writeFile(path.join(root, 'snapshots', 'p', 'a.age.partial-0123abcd'), 'xx');
    await writeFile(path.join(root, 'snapshots', 'p', 'b.age'), 'not partial');
    const [u] = await unfinished(store, 'snapshots/');
    expect(u).toMatchObject({ key: 'snapshots/p/a.age', id: 'a.age.partial-0123abcd', bytes: 2 });
    await expect(store.removeUnfinished({ ...u!, id: 'b.age' })).rejects.toThrow(/is not a partial file of/);
    await expect(store.removeUnfinished({ ...u!, id: '../../x.partial-0123abcd' })).rejects.toThrow(/is not a partial file of/);
    expect(await readdir(path.join(root, 'snapshots', 'p'))).toEqual(['a.age.partial-0123abcd', 'b.age']);
  });

  it('s3: unfinished uploads outside the store prefix are never listed', async () => {
    await leaveMultipart('tenant-b/snapshots/u/elsewhere.bin');
    const store = s3();
    expect((await unfinished(store, '')).map((u) => u.key)).not.toContain('snapshots/u/elsewhere.bin');
    const all = await minio.client.send(new ListMultipartUploadsCommand({ Bucket: 'conformance' }));
    expect(all.Uploads?.map((u) => u.Key)).toContain('tenant-b/snapshots/u/elsewhere.bin');
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
