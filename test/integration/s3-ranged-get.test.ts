import { createHash, randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../src/backends/stores/s3-store.js';
import { TykdrError } from '../../src/core/errors.js';
import type { StoreEvent } from '../../src/core/interfaces/store.js';
import { useCleanups } from '../helpers/cleanups.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { minioStoreConfig, startMinioBehindProxy, type Minio } from '../helpers/minio.js';

/**
 * S3Store.get of an object larger than one range (partSizeMiB): ranges on up to downloadConcurrency connections at
 * once, against a real MinIO behind the TCP fault proxy (test/helpers/fault-proxy.ts). Every byte must come in
 * order; a broken range resumes; a range that fails for good, a stall and a changed object fail the download with
 * a store error; memory holds at most downloadConcurrency ranges; a reader that goes stops every range.
 */
const { cleanups } = useCleanups();
const BUCKET = 'ranges';
const MiB = 1024 * 1024;
const RANGE = 5 * MiB; // partSizeMiB 5: the smallest S3 allows, so the objects stay small

let minio: Minio;
let proxy: FaultProxy;

beforeAll(async () => {
  ({ minio, proxy } = await startMinioBehindProxy(BUCKET, cleanups));
});

/** A store behind the proxy, on connections of its own (a fresh agent), with the events it reports. */
function store(downloadConcurrency: number, over: { stallTimeout?: string; maxAttempts?: number } = {}) {
  const events: StoreEvent[] = [];
  const s = new S3Store(
    minioStoreConfig(minio, BUCKET, 'r', { endpoint: proxy.endpoint, downloadConcurrency, stallTimeout: over.stallTimeout ?? '2s', connectTimeout: '2s', maxAttempts: over.maxAttempts ?? 3 }),
    { onEvent: (e) => events.push(e) },
  );
  return { s, events };
}

/** Puts `data` at r/NAME straight into MinIO (not through the proxy). */
async function object(name: string, data: Buffer): Promise<string> {
  await minio.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `r/${name}`, Body: data }));
  return name;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * The GETs of `key` the proxy passes from now on, as the first byte each asks for (0: a GET without a Range).
 * Read off the requests as they go by (the proxy's freezeWhen hook, which never freezes here).
 */
function gets(key: string): number[] {
  const seen: number[] = [];
  proxy.freezeWhen((chunk, fromClient) => {
    const head = fromClient ? chunk.toString('latin1', 0, Math.min(chunk.length, 4096)) : '';
    if (head.startsWith(`GET /${BUCKET}/r/${key}`)) seen.push(Number(/\r\nrange: bytes=(\d+)-/i.exec(head)?.[1] ?? 0));
    return false;
  });
  return seen;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ranged downloads', () => {
  it('every byte in order, on several connections at once; downloadConcurrency 1 keeps one connection', async () => {
    proxy.setMode({ kind: 'pass' });
    const data = randomBytes(Math.round(3.4 * RANGE));
    const key = await object('big.bin', data);
    let seen = gets(key);
    const before = proxy.stats.connections;
    const four = store(4);
    expect(sha(await readAll(await four.s.get(key)))).toBe(sha(data));
    // Four ranges: the first from the plain GET that found the size, three more at once, each on a connection.
    expect(seen.sort((a, b) => a - b)).toEqual([0, RANGE, 2 * RANGE, 3 * RANGE]);
    expect(proxy.stats.connections - before).toBe(4);
    expect(four.events).toEqual([]);

    seen = gets(key);
    const mid = proxy.stats.connections;
    const one = store(1);
    expect(sha(await readAll(await one.s.get(key)))).toBe(sha(data));
    expect(seen).toEqual([0]);
    expect(proxy.stats.connections - mid).toBe(1);
    proxy.freezeWhen(undefined);
  });

  it('sizes at the edges of a range: empty, one byte, one range, one range and a byte', async () => {
    proxy.setMode({ kind: 'pass' });
    const { s } = store(4);
    for (const size of [0, 1, RANGE, RANGE + 1, 2 * RANGE]) {
      const data = randomBytes(size);
      const got = await readAll(await s.get(await object(`edge-${size}.bin`, data)));
      expect(got.length, `size ${size}`).toBe(size);
      expect(got.equals(data), `size ${size}`).toBe(true);
    }
  });

  it('a range whose connection resets mid-way resumes where it broke: every byte, and the retry reported', async () => {
    const data = randomBytes(Math.round(3.5 * RANGE));
    const key = await object('reset.bin', data);
    const { s, events } = store(3);
    proxy.setMode({ kind: 'reset', afterBytes: 2 * MiB, times: 1 });
    const resets = proxy.stats.resets;
    const got = await readAll(await s.get(key));
    proxy.setMode({ kind: 'pass' });
    expect(proxy.stats.resets - resets).toBe(1);
    expect(got.equals(data)).toBe(true);
    expect(events.filter((e) => e.type === 'retry')).toEqual([
      expect.objectContaining({ type: 'retry', operation: `download of ${key}`, attempt: 2, maxAttempts: 3, reason: expect.stringMatching(/^(ECONNRESET|EPIPE|\w+) after \d+ bytes$/) }),
    ]);
  });

  it('every range resumes on its own: each of four connections reset once, every byte comes', async () => {
    const data = randomBytes(Math.round(3.5 * RANGE));
    const key = await object('reset-each.bin', data);
    const { s, events } = store(4, { maxAttempts: 5 });
    proxy.setMode({ kind: 'reset', afterBytes: MiB, times: 4 });
    const resets = proxy.stats.resets;
    const got = await readAll(await s.get(key));
    proxy.setMode({ kind: 'pass' });
    expect(got.equals(data)).toBe(true);
    expect(proxy.stats.resets - resets).toBe(4);
    const retries = events.filter((e) => e.type === 'retry') as Array<Extract<StoreEvent, { type: 'retry' }>>;
    expect(retries).toHaveLength(4);
    // Resumed where each broke: offsets inside later ranges, not only the first.
    const offsets = retries.map((e) => Number(/after (\d+) bytes/.exec(e.reason)![1]));
    expect(offsets.some((o) => o > RANGE)).toBe(true);
  });

  it('a store that resets every connection mid-range: a store error naming the download and the store, and every range stops', async () => {
    const data = randomBytes(Math.round(3.5 * RANGE));
    const key = await object('reset-always.bin', data);
    const { s } = store(3);
    // Three attempts of at most 1 MiB each cannot carry a 5 MiB range.
    proxy.setMode({ kind: 'reset', afterBytes: MiB });
    const err = await readAll(await s.get(key)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('storeError');
    expect((err as Error).message).toMatch(new RegExp(`download of ${key} in s3://${BUCKET}/r/ \\(endpoint http://127\\.0\\.0\\.1:\\d+\\): the connection to the store broke \\((ECONNRESET|EPIPE)\\)`));
    // Nothing is asked for after the failure, and once what was in flight has drained (the aborted requests' sockets
    // close a moment after the error reaches the reader), nothing moves.
    const seen = gets(key);
    await pause(300);
    const bytes = proxy.stats.bytes;
    await pause(1000);
    expect(seen).toEqual([]);
    expect(proxy.stats.bytes).toBe(bytes);
    proxy.freezeWhen(undefined);
    proxy.setMode({ kind: 'pass' });
  });

  it("the caller's abort mid-download ends it at once with the caller's reason; nothing more is asked for", async () => {
    proxy.setMode({ kind: 'pass' });
    const data = randomBytes(8 * RANGE);
    const key = await object('abort.bin', data);
    const { s } = store(2, { stallTimeout: '30s' });
    const ac = new AbortController();
    const body = await s.get(key, { signal: ac.signal });
    const it = body[Symbol.asyncIterator]();
    await it.next();
    const seen = gets(key);
    const reason = new Error('operator pressed Ctrl-C');
    const t0 = Date.now();
    ac.abort(reason);
    const err = await (async () => {
      for (let n = await it.next(); !n.done; n = await it.next());
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, String((err as Error)?.message)).toBe(reason);
    expect(Date.now() - t0).toBeLessThan(2000);
    await pause(500);
    expect(seen).toEqual([]);
    proxy.freezeWhen(undefined);
  });

  it('a reader that goes while a range hangs: the stream closes at once, not at stallTimeout', async () => {
    const data = randomBytes(4 * RANGE);
    const key = await object('gone-hung.bin', data);
    const { s } = store(3, { stallTimeout: '30s' });
    proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: MiB, times: 1 });
    const stalls = proxy.stats.stalls;
    const body = await s.get(key);
    // Read until nothing more comes: every byte before the hung range is taken, so the download waits on it.
    const it = body[Symbol.asyncIterator]();
    let pending = it.next();
    for (;;) {
      const n = await Promise.race([pending, pause(500).then(() => 'idle' as const)]);
      if (n === 'idle') break;
      expect(n.done).toBe(false);
      pending = it.next();
    }
    pending.catch(() => undefined);
    expect(proxy.stats.stalls - stalls).toBe(1);
    const closed = new Promise<number>((resolve) => body.once('close', () => resolve(Date.now())));
    const t0 = Date.now();
    body.destroy();
    const at = await Promise.race([closed, pause(5000).then(() => Infinity)]);
    proxy.setMode({ kind: 'pass' });
    expect(at - t0).toBeLessThan(2000);
  });

  it('a range that stops moving fails the download at stallTimeout, naming the stall', async () => {
    const data = randomBytes(Math.round(3.5 * RANGE));
    const key = await object('stall.bin', data);
    const { s } = store(3);
    proxy.setMode({ kind: 'stall', ms: Infinity, afterBytes: 2 * MiB, times: 1 });
    const t0 = Date.now();
    const err = await readAll(await s.get(key)).then(
      () => undefined,
      (e: unknown) => e,
    );
    proxy.setMode({ kind: 'pass' });
    expect((err as TykdrError).kind).toBe('storeError');
    expect((err as Error).message).toMatch(new RegExp(`download of ${key} in s3://${BUCKET}/r/ .*: no progress for [23]s \\(store\\.stallTimeout is 2s\\)`));
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('memory holds at most downloadConcurrency ranges: a reader that pauses stops the download there', async () => {
    proxy.setMode({ kind: 'pass' });
    const data = randomBytes(8 * RANGE);
    const key = await object('bounded.bin', data);
    const { s, events } = store(2, { stallTimeout: '1s' });
    const seen = gets(key);
    const body = await s.get(key);
    const it = body[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    // The reader is busy for longer than stallTimeout: the first two ranges come, nothing more is asked for.
    await pause(1500);
    expect(seen).toEqual([0, RANGE]);
    const chunks = [first.value as Buffer];
    for (let n = await it.next(); !n.done; n = await it.next()) chunks.push(n.value as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * RANGE));
    proxy.freezeWhen(undefined);
    // Waiting on the reader is not a stall.
    expect(events).toEqual([]);
  });

  it('a reader that goes mid-way stops every range: nothing more moves', async () => {
    proxy.setMode({ kind: 'pass' });
    const data = randomBytes(6 * RANGE);
    const key = await object('gone.bin', data);
    const { s } = store(4);
    const seen = gets(key);
    const body = await s.get(key);
    for await (const _ of body) break; // destroys the stream after its first chunk
    await pause(300);
    const asked = seen.length;
    expect(asked).toBeLessThanOrEqual(4);
    // The ranges under way stop: their connections close, and nothing moves on them.
    const bytes = proxy.stats.bytes;
    await pause(700);
    expect(proxy.stats.bytes).toBe(bytes);
    expect(seen.length).toBe(asked);
    proxy.freezeWhen(undefined);
  });

  it('an object replaced while it is read: the next range is refused (If-Match), a store error says it changed', async () => {
    proxy.setMode({ kind: 'pass' });
    const data = randomBytes(4 * RANGE);
    const key = await object('changed.bin', data);
    const { s } = store(2);
    const body = await s.get(key);
    const it = body[Symbol.asyncIterator]();
    await it.next(); // ranges 1 and 2 are under way; range 3 is asked for once the reader has taken range 1
    await object('changed.bin', randomBytes(4 * RANGE));
    const err = await (async () => {
      for (let n = await it.next(); !n.done; n = await it.next());
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as TykdrError).kind).toBe('storeError');
    expect((err as Error).message).toMatch(new RegExp(`download of ${key} in s3://${BUCKET}/r/ .*: the object changed while it was being read`));
  });
});
