import type { S3Client } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { storeError } from '../../core/errors.js';
import { abortError, sleep } from '../../core/util/abort.js';
import { sdk } from './s3-sdk.js';
import { backoffDelay, currentTransfer, describeFailure, isTransientNetworkError, type Transfer } from './s3-transfer.js';

const { GetObjectCommand } = sdk;

/** One download: where the object is, the version every range is pinned to, and what watches it. */
export interface DownloadOptions {
  client: S3Client;
  bucket: string;
  /** The object's key in the bucket (with the store prefix). */
  key: string;
  /** The key as messages show it (without the prefix). */
  name: string;
  /** The store as messages show it: "s3://bucket/prefix/ (endpoint ...)". */
  where: string;
  /** The ETag of the first response: every later request carries If-Match on it, so no range comes from another version. */
  etag: string | undefined;
  /** Watches the download's requests and bytes (stall clock, retries). */
  transfer: Transfer;
  /** Attempts per range, the first included. */
  maxAttempts: number;
  /** Aborts every request: the transfer's signal (a stall, the caller's abort) and the reader going. */
  signal: AbortSignal;
}

/**
 * Bytes [start, end) of the object (end undefined: to its end), from `body` when one is already open at `start`
 * (`longer`: it holds more than the range, and the rest is dropped).
 * A connection broken mid-way (reset, timeout, a body that ends short) is resumed with a Range request for the rest,
 * pinned to the same version, up to maxAttempts in all; a stall or the caller's abort is never retried. Pulled: no
 * byte is read before the reader asks for it.
 */
export async function* readRange(d: DownloadOptions, start: number, end: number | undefined, body?: Readable, longer = false): AsyncGenerator<Buffer> {
  const want = end === undefined ? undefined : end - start;
  let got = 0;
  let attempts = 1;
  let current = body;
  try {
    current ??= await openRange(d, start, end);
    for (;;) {
      try {
        for await (const c of current) {
          let chunk = c as Buffer;
          if (want !== undefined && got + chunk.length > want) chunk = chunk.subarray(0, want - got);
          got += chunk.length;
          if (chunk.length > 0) yield chunk;
          // A longer body is dropped here; any other is read to its end, so its connection goes back to the pool
          // rather than being closed (a new TLS handshake for every range).
          if (want !== undefined && got >= want && longer && current === body) return;
        }
        if (want === undefined || got >= want) return;
        throw Object.assign(new Error(`the connection closed after ${start + got} of ${start + want} bytes`), { code: 'ECONNRESET' });
      } catch (err) {
        const t = d.transfer;
        if (t.stallError || t.callerAborted || d.signal.aborted || !isTransientNetworkError(err) || attempts >= d.maxAttempts) throw err;
      }
      const delayMs = backoffDelay(attempts, false);
      const reason = describeFailure((current as { errored?: unknown }).errored ?? { code: 'ECONNRESET' });
      d.transfer.retrying({ attempt: ++attempts, maxAttempts: d.maxAttempts, reason: `${reason} after ${start + got} bytes`, delayMs });
      current.destroy();
      await sleep(delayMs, d.signal);
      current = await openRange(d, start + got, end);
    }
  } finally {
    current?.destroy();
  }
}

/** A GET of bytes [from, end) (end undefined: to the end), pinned to the download's version; the store must answer with that range. */
async function openRange(d: DownloadOptions, from: number, end: number | undefined): Promise<Readable> {
  const Range = `bytes=${from}-${end === undefined ? '' : end - 1}`;
  const out = await currentTransfer.run(d.transfer, () =>
    d.client.send(new GetObjectCommand({ Bucket: d.bucket, Key: d.key, Range, IfMatch: d.etag }), { abortSignal: d.signal }),
  );
  if (!(out.Body instanceof Readable)) throw storeError(`object ${d.name} has no readable body`);
  const answered = /^bytes (\d+)-(\d+)\/(?:\d+|\*)$/.exec(out.ContentRange ?? '');
  if (!answered || Number(answered[1]) !== from || (end !== undefined && Number(answered[2]) !== end - 1)) {
    out.Body.destroy();
    throw storeError(
      `download of ${d.name} in ${d.where}: the store answered a request for ${Range} with ${out.ContentRange ? `"${out.ContentRange}"` : 'the whole object'}`,
      'the store must support HTTP Range requests (every S3-compatible store does); check what sits between tykdr and the store, or set store.downloadConcurrency: 1',
    );
  }
  return out.Body;
}

/** The chunks of one range as they arrive, for the reader to take in order. */
class Slot {
  readonly chunks: Buffer[] = [];
  done = false;
  #wake: (() => void) | undefined;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.wake();
  }

  finish(): void {
    this.done = true;
    this.wake();
  }

  wake(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  next(): Promise<void> {
    return new Promise((resolve) => (this.#wake = resolve));
  }
}

/**
 * The object's bytes in order, fetched as ranges of `rangeSize` on up to `concurrency` connections at once, as the
 * AWS CLI and S3's own performance guidance do: a store serves each connection at a limited rate, so several ranges
 * at once multiply what one connection gets. `first` is the body of the plain GET that found the object's size;
 * the first range is read from it and the rest of it is dropped.
 *
 * Every range runs readRange (resume, retries, If-Match). Each range is read as fast as it comes into its own
 * buffer, so memory is at most `concurrency` ranges; a range after them is asked for only when the reader has
 * taken the whole of the oldest one. The first range that fails for good stops every other range, and its error is
 * what the reader gets.
 */
export async function* parallelRanges(d: DownloadOptions, first: Readable, total: number, rangeSize: number, concurrency: number): AsyncGenerator<Buffer> {
  const count = Math.ceil(total / rangeSize);
  const stop = new AbortController();
  const ranged: DownloadOptions = { ...d, signal: AbortSignal.any([d.signal, stop.signal]) };
  const slots = new Map<number, Slot>();
  let launched = 0;
  let failed = false;
  let failure: unknown;

  const launch = (): void => {
    const i = launched++;
    const slot = new Slot();
    slots.set(i, slot);
    const start = i * rangeSize;
    void (async () => {
      try {
        for await (const chunk of readRange(ranged, start, Math.min(total, start + rangeSize), i === 0 ? first : undefined, i === 0)) slot.push(chunk);
      } catch (err) {
        if (!failed) {
          failed = true;
          failure = err;
        }
        stop.abort();
        for (const s of slots.values()) s.wake();
      } finally {
        slot.finish();
      }
    })();
  };

  try {
    while (launched < Math.min(count, concurrency)) launch();
    for (let k = 0; k < count; k++) {
      const slot = slots.get(k)!;
      for (;;) {
        if (failed) throw failure;
        // Aborted with every range already buffered (nothing in flight to fail): no more bytes go to the reader.
        if (ranged.signal.aborted) throw abortError(ranged.signal);
        const chunk = slot.chunks.shift();
        if (chunk) yield chunk;
        else if (slot.done) break;
        else await slot.next();
      }
      slots.delete(k);
      if (launched < count) launch();
    }
  } finally {
    // The reader is done or gone, or a range failed: nothing more is asked for, and what is in flight stops.
    stop.abort();
    first.destroy();
  }
}
