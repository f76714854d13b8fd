import type { CompletedPart, PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { sdk } from './s3-sdk.js';

const { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } = sdk;

/** The body failed (its source died, an integrity check in the pipeline threw): its own error, not the store's. */
export class BodyFailed extends Error {
  constructor(readonly original: unknown) {
    super('the upload body failed');
  }
}

export interface UploadOptions {
  client: S3Client;
  /** Bucket, Key (with the store prefix), content type, SSE, storage class, Object Lock. */
  params: Omit<PutObjectCommandInput, 'Body'> & { Bucket: string; Key: string };
  body: Readable;
  /** The first parts' size; it doubles every PARTS_PER_SIZE parts (see partSizeOf). */
  partSize: number;
  /** Tests only: parts per size instead of PARTS_PER_SIZE. */
  partsPerSize?: number;
  concurrency: number;
  /** Aborts everything (the caller's signal or a stall); every request carries it. */
  signal: AbortSignal;
  /** Aborts an unfinished multipart upload after a failure; bounded in time; resolves false when it could not. */
  abandon(uploadId: string): Promise<boolean>;
}

/** Why a failed upload may have left something behind. */
export interface UploadFailure {
  /** Set when a multipart upload was started and could not be aborted. */
  leftUploadId?: string;
}

/** Parts of one size before the size doubles: small objects keep small buffers, and no object runs out of S3's 10,000 parts. */
export const PARTS_PER_SIZE = 1000;
/** S3's largest part. */
const MAX_PART = 5 * 1024 ** 3;

/**
 * The size of part `n` (1-based): `first` for parts 1 to 1,000, twice that for 1,001 to 2,000, and so on (S3
 * allows parts of different sizes). With 5 MiB first parts, 1,000 parts hold 5 GB, and 10,000 parts 5.36 TB (near
 * S3's 5 TiB object limit); memory grows only for objects that need it.
 */
export function partSizeOf(n: number, first: number, perSize = PARTS_PER_SIZE): number {
  return Math.min(MAX_PART, first * 2 ** Math.floor((n - 1) / perSize));
}

/**
 * Streams `body` into one object: a single PutObject when it ends before `partSize` bytes, otherwise a
 * multipart upload with up to `concurrency` parts in flight (memory: about (concurrency + 1) parts).
 * Every part is a buffer, so the SDK can send a part again after a transient failure. On any failure or
 * abort, the parts in flight are cancelled and the multipart upload is aborted before this rejects (the
 * rejection carries `leftUploadId` if that abort failed too). Every part carries a CRC32 checksum (S3
 * requires one with Object Lock; asking for it explicitly holds whatever AWS_REQUEST_CHECKSUM_CALCULATION says).
 */
export async function uploadObject(o: UploadOptions): Promise<void> {
  const stop = new AbortController();
  const signal = AbortSignal.any([o.signal, stop.signal]);
  const opts = { abortSignal: signal };
  const { Bucket, Key } = o.params;

  const it = o.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const abortReason = () => (signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  // The read in progress is woken by an abort through one listener for the whole upload. A Promise.race per
  // chunk against one long-lived "aborted" promise would leave a reaction on it per chunk, and through that
  // reaction the race's promise and its chunk: every chunk read would stay in memory until the upload ended
  // (test/unit/s3-upload-memory.test.ts).
  let waiting: ((err: Error) => void) | null = null;
  const onAbort = () => waiting?.(abortReason());
  signal.addEventListener('abort', onAbort, { once: true });
  const nextChunk = (): Promise<IteratorResult<Buffer>> => {
    if (signal.aborted) return Promise.reject(abortReason());
    return new Promise((resolve, reject) => {
      waiting = reject;
      it.next().then(
        (r) => {
          waiting = null;
          resolve(r);
        },
        (err: unknown) => {
          waiting = null;
          reject(signal.aborted ? err : new BodyFailed(err));
        },
      );
    });
  };

  // Parts are filled in place in buffers of the part's size that are reused once their UploadPart settled (after
  // any retries): at most concurrency in flight plus one filling, and each byte is copied once.
  const free: Buffer[] = [];
  let cur: Buffer | null = null;
  let fill = 0;
  let filling = 1; // the number of the part being filled

  let uploadId: string | undefined;
  let partNumber = 0;
  const done: CompletedPart[] = [];
  const inflight = new Set<Promise<void>>();
  let partError: { err: unknown } | undefined;

  const sendPart = async (part: Buffer, size: number) => {
    const data = size === part.length ? part : part.subarray(0, size);
    if (uploadId === undefined) {
      const created = await o.client.send(new CreateMultipartUploadCommand({ ...o.params, ChecksumAlgorithm: 'CRC32' }), opts);
      if (!created.UploadId) throw new Error('CreateMultipartUpload answered without an upload id');
      uploadId = created.UploadId;
    }
    while (inflight.size >= o.concurrency) await Promise.race(inflight);
    if (partError) throw partError.err;
    const PartNumber = ++partNumber;
    const UploadId = uploadId;
    const p: Promise<void> = o.client
      .send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: data, ChecksumAlgorithm: 'CRC32' }), opts)
      .then((r) => {
        if (!r.ETag) throw new Error(`UploadPart ${PartNumber} answered without an ETag`);
        done.push({ PartNumber, ETag: r.ETag, ...(r.ChecksumCRC32 ? { ChecksumCRC32: r.ChecksumCRC32 } : {}) });
      })
      .catch((err: unknown) => {
        if (stop.signal.aborted) return; // cancelled because something else failed first
        partError ??= { err };
        stop.abort(err); // the other parts, and the read of the body, stop at once
      })
      .finally(() => {
        inflight.delete(p);
        free.push(part);
      });
    inflight.add(p);
  };

  try {
    for (;;) {
      const r = await nextChunk();
      if (r.done) break;
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      let at = 0;
      while (at < chunk.length) {
        if (cur === null) {
          const size = partSizeOf(filling, o.partSize, o.partsPerSize);
          // Buffers of an earlier, smaller size are dropped once the size has doubled.
          if (free.some((b) => b.length !== size)) free.splice(0, free.length, ...free.filter((b) => b.length === size));
          cur = free.pop() ?? Buffer.allocUnsafeSlow(size);
        }
        const n = chunk.copy(cur, fill, at);
        fill += n;
        at += n;
        if (fill === cur.length) {
          const part = cur;
          cur = null;
          fill = 0;
          filling++;
          await sendPart(part, part.length);
        }
      }
      if (partError) throw partError.err;
    }
    if (uploadId === undefined && partNumber === 0) {
      // The whole body fits in one part: a plain PutObject.
      const Body = cur === null ? Buffer.alloc(0) : cur.subarray(0, fill);
      await o.client.send(new PutObjectCommand({ ...o.params, Body, ChecksumAlgorithm: 'CRC32' }), opts);
      return;
    }
    if (cur !== null && fill > 0) await sendPart(cur, fill);
    await Promise.all(inflight);
    if (partError) throw partError.err;
    done.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await o.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: done } }), opts);
    uploadId = undefined;
  } catch (err) {
    stop.abort(err);
    await Promise.allSettled([...inflight]);
    void it.return?.().catch(() => undefined);
    // `err` is the first failure: a part's error reaches the loop as itself (or as the abort's reason).
    const first = err;
    if (uploadId !== undefined && !(await o.abandon(uploadId))) {
      throw Object.assign(first instanceof Error ? first : new Error(String(first)), { leftUploadId: uploadId } satisfies UploadFailure);
    }
    throw first;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** Commands whose body is the object's data (everything else sends a few hundred bytes at most). */
const DATA_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);

/**
 * Over https, object data goes out with SigV4's UNSIGNED-PAYLOAD instead of a SHA-256 of every byte in the
 * signature: TLS already protects the bytes in transit, and every part and PutObject still carries its
 * CRC32 checksum (x-amz-checksum-crc32), which the store checks before it accepts the bytes (and which S3
 * Object Lock requires). Saves hashing each uploaded byte once more (SHA-256 runs at about 1.2-1.9 GB/s on
 * the project machine, on the main thread). Over plain http the payload stays signed: there the signature's
 * hash is what keeps a tampering middlebox from changing the data together with its checksum.
 */
export function unsignedPayloadOverTls(client: S3Client): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request as { protocol?: string; headers?: Record<string, string> };
      if (req.protocol === 'https:' && req.headers && DATA_COMMANDS.has(context.commandName ?? '')) {
        req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { step: 'build', name: 'tykdrUnsignedPayloadOverTls', override: true },
  );
}
