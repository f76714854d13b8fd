import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { parallelRanges, type DownloadOptions } from '../../src/backends/stores/s3-download.js';
import { Transfer } from '../../src/backends/stores/s3-transfer.js';
import { TykdrError } from '../../src/core/errors.js';

/**
 * parallelRanges against a stand-in for the S3 client (the unit layer: the real store is MinIO in
 * test/integration/s3-ranged-get.test.ts): bytes in order for many sizes, range sizes and concurrencies, bodies cut
 * into odd chunks; a store that answers a Range request with other bytes than asked is refused, naming what it sent.
 */
const transfers: Transfer[] = [];
afterEach(() => {
  for (const t of transfers.splice(0)) t.close();
});

/** `data` as a body in chunks of 1 to 700 bytes, so range edges fall inside chunks. */
function chunked(data: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; ) {
    const n = 1 + Math.floor(Math.random() * 700);
    parts.push(data.subarray(i, i + n));
    i += n;
  }
  return Readable.from(parts, { objectMode: false });
}

type Answer = (from: number, last: number) => { body: Buffer; contentRange?: string };

/** A client whose GetObject answers each Range with `answer` (default: what was asked), and the Ranges it was sent. */
function options(data: Buffer, answer?: Answer): { d: DownloadOptions; ranges: string[] } {
  const ranges: string[] = [];
  const honest: Answer = (from, last) => ({ body: data.subarray(from, last + 1), contentRange: `bytes ${from}-${last}/${data.length}` });
  const client = {
    send: async (cmd: { input: { Range?: string } }) => {
      const range = cmd.input.Range!;
      ranges.push(range);
      const m = /^bytes=(\d+)-(\d*)$/.exec(range)!;
      const from = Number(m[1]);
      const last = m[2] === '' ? data.length - 1 : Number(m[2]);
      const a = (answer ?? honest)(from, last);
      return { Body: chunked(a.body), ContentRange: a.contentRange };
    },
  } as unknown as S3Client;
  const transfer = new Transfer('download of x.bin', { stallMs: 60_000 }, () => undefined, () => new Error('stalled'));
  transfers.push(transfer);
  const d: DownloadOptions = { client, bucket: 'b', key: 'p/x.bin', name: 'x.bin', where: 's3://b/p/', etag: '"e"', transfer, maxAttempts: 3, signal: transfer.signal };
  return { d, ranges };
}

async function collect(gen: AsyncGenerator<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of gen) out.push(c);
  return Buffer.concat(out);
}

describe('parallelRanges', () => {
  it('gives every byte in order, whatever the size, range size and concurrency', async () => {
    for (const size of [1001, 1999, 2000, 2001, 7777, 20_000]) {
      for (const range of [1000, 1500]) {
        for (const concurrency of [2, 3, 5]) {
          if (size <= range) continue;
          const data = randomBytes(size);
          const { d, ranges } = options(data);
          const got = await collect(parallelRanges(d, chunked(data), size, range, concurrency));
          expect(got.equals(data), `size ${size}, range ${range}, concurrency ${concurrency}`).toBe(true);
          // The first range comes from the first body; every other is asked for once, in order.
          const count = Math.ceil(size / range);
          expect(ranges).toEqual(Array.from({ length: count - 1 }, (_, i) => `bytes=${(i + 1) * range}-${Math.min(size, (i + 2) * range) - 1}`));
        }
      }
    }
  });

  it('asks for a range past the first `concurrency` only when the reader has taken the oldest', async () => {
    const data = randomBytes(10_000);
    const { d, ranges } = options(data);
    const gen = parallelRanges(d, chunked(data), data.length, 1000, 3);
    await gen.next();
    await new Promise((r) => setTimeout(r, 50));
    expect(ranges).toEqual(['bytes=1000-1999', 'bytes=2000-2999']);
    await gen.return(undefined);
  });

  it('refuses a store that ignored the Range (the whole object), naming the download and what was asked', async () => {
    const data = randomBytes(3000);
    const { d } = options(data, () => ({ body: data }));
    const err = await collect(parallelRanges(d, chunked(data), data.length, 1000, 2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as Error).message).toMatch(/^download of x\.bin in s3:\/\/b\/p\/: the store answered a request for bytes=1000-1999 with the whole object$/);
  });

  it('refuses a range that starts right but runs to the end of the object', async () => {
    const data = randomBytes(3000);
    const { d } = options(data, (from) => ({ body: data.subarray(from), contentRange: `bytes ${from}-2999/3000` }));
    const err = await collect(parallelRanges(d, chunked(data), data.length, 1000, 2)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/the store answered a request for bytes=1000-1999 with "bytes 1000-2999\/3000"$/);
  });

  it('refuses a range that starts elsewhere', async () => {
    const data = randomBytes(3000);
    const { d } = options(data, (from, last) => ({ body: data.subarray(0, last - from + 1), contentRange: `bytes 0-${last - from}/3000` }));
    const err = await collect(parallelRanges(d, chunked(data), data.length, 1000, 2)).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/the store answered a request for bytes=1000-1999 with "bytes 0-999\/3000"$/);
  });
});
