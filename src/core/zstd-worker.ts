import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';

/**
 * Compressed bytes gathered before one message to the worker (fewer, larger hand-overs). 1 MiB and 3 in flight
 * rather than 256 KiB and 2: staging a 690 MB RDB (181 MB stored) took a median 0.90x the time, 10 of 10 runs
 * faster in pairs; 1 MiB alone gave 0.96x (the worker waited less often for the main thread's next message).
 */
const IN_BYTES = 1 << 20;
/** Decompressed bytes per chunk the worker hands back (and the stream pushes). */
const OUT_BYTES = 1 << 20;
/** Messages the worker may have queued: it decompresses one while the main thread prepares the next ones. */
const MAX_IN_FLIGHT = 3;

/*
 * The worker: a zstd DCtx from zstd-napi's binding, fed whole messages. Output is gathered into OUT_BYTES
 * buffers, which are transferred (not copied) back with the acknowledgement of the input that filled them;
 * 'end' returns the rest and whether the stream stopped inside a frame. After a failure it ignores input.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const binding = require(workerData.binding);
const dctx = new binding.DCtx();
const OUT = workerData.outBytes;
let out = Buffer.allocUnsafeSlow(OUT);
let fill = 0;
let inFrame = false;
let failed = false;
parentPort.on('message', (m) => {
  if (failed) return;
  const done = [];
  try {
    if (m.input) {
      let src = Buffer.from(m.input, 0, m.len);
      for (;;) {
        const [ret, produced, consumed] = dctx.decompressStream(out.subarray(fill), src);
        fill += produced;
        src = src.subarray(consumed);
        if (fill === out.length) {
          done.push(out.buffer);
          out = Buffer.allocUnsafeSlow(OUT);
          fill = 0;
          continue;
        }
        if (src.length === 0) {
          inFrame = ret !== 0;
          break;
        }
      }
    }
  } catch (err) {
    failed = true;
    parentPort.postMessage({ error: { message: String(err && err.message || err), name: err && err.name } });
    return;
  }
  const lens = done.map((b) => b.byteLength);
  if (m.end && fill > 0) {
    done.push(out.buffer);
    lens.push(fill);
  }
  // The input's buffer goes back too, for the next input: the worker keeps no garbage its GC may not see soon.
  const transfer = m.input ? done.concat([m.input]) : done;
  parentPort.postMessage({ out: done, lens, back: m.input, end: m.end, inFrame }, transfer);
});
`;

/**
 * zstd decompression on a worker thread, as a Transform: the main thread only hands compressed bytes over
 * and pushes what comes back, so decryption, hashing and file writes overlap the decompression instead of
 * waiting for it (zstd-napi's DecompressStream decompresses synchronously on the calling thread).
 * Memory: at most MAX_IN_FLIGHT inputs of IN_BYTES and their output, one OUT_BYTES buffer, and the
 * readable side's high-water mark (downstream backpressure holds further input back). The same failures as
 * DecompressStream: the worker's decompression error, or "Stream ended in middle of compressed data frame".
 */
export class WorkerDecompressStream extends Transform {
  private readonly worker: Worker;
  private pending: Buffer = Buffer.allocUnsafeSlow(IN_BYTES);
  /** Input buffers the worker handed back, for reuse. */
  private readonly spare: ArrayBuffer[] = [];
  private pendingFill = 0;
  private inFlight = 0;
  /** The chunk being written, from restOff on, and its write callback. */
  private rest: Buffer | null = null;
  private restOff = 0;
  private waiting: TransformCallback | null = null;
  private flushed: TransformCallback | null = null;
  private failed = false;
  /** The worker answered the end: everything was decompressed. */
  private ended = false;

  constructor() {
    super({ readableHighWaterMark: OUT_BYTES });
    const binding = createRequire(import.meta.url).resolve('zstd-napi/binding');
    // execArgv []: the source is CommonJS whatever flags started the process (--input-type=module, loaders, --cpu-prof).
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { binding, outBytes: OUT_BYTES } });
    this.worker.on('message', (m: WorkerReply) => this.onReply(m));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.destroyed && !this.ended) this.fail(new Error(`zstd worker exited (code ${code}) before the stream ended`));
    });
    // Referenced only while it holds work this stream waits for: an abandoned stream never keeps the process alive.
    // (After the listeners: adding a 'message' listener references the worker's port again.)
    this.worker.unref();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.rest = chunk;
    this.restOff = 0;
    this.waiting = done;
    this.pump();
  }

  override _flush(done: TransformCallback): void {
    this.flushed = done;
    this.send(true);
  }

  override _read(size: number): void {
    // Readable calls _read before it takes the buffered bytes out: the consumer wants more, whatever readableLength says.
    this.pump(true);
    super._read(size);
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    void this.worker.terminate();
    done(err);
  }

  private send(end: boolean): void {
    // The pending buffer itself is transferred (allocUnsafeSlow: it owns its whole ArrayBuffer); the worker hands it back.
    const len = this.pendingFill;
    const input = len > 0 ? (this.pending.buffer as ArrayBuffer) : null;
    if (input) this.pending = Buffer.from(this.spare.pop() ?? new ArrayBuffer(IN_BYTES));
    this.pendingFill = 0;
    if (this.inFlight++ === 0) this.worker.ref();
    this.worker.postMessage({ input, len, end }, input ? [input] : []);
  }

  /** The worker has room and downstream wants more (`wanted`: _read asked): the next input may go. */
  private canSend(wanted: boolean): boolean {
    return this.inFlight < MAX_IN_FLIGHT && (wanted || this.readableLength < this.readableHighWaterMark);
  }

  /** Moves the current chunk into inputs as far as the worker may take them; the write completes once it is all taken. */
  private pump(wanted = false): void {
    const chunk = this.rest;
    if (chunk === null || this.failed) return;
    while (this.restOff < chunk.length) {
      if (this.pendingFill === IN_BYTES) {
        if (!this.canSend(wanted)) return;
        this.send(false);
      }
      const n = Math.min(chunk.length - this.restOff, IN_BYTES - this.pendingFill);
      chunk.copy(this.pending, this.pendingFill, this.restOff, this.restOff + n);
      this.pendingFill += n;
      this.restOff += n;
    }
    if (this.pendingFill === IN_BYTES && this.canSend(wanted)) this.send(false);
    this.rest = null;
    const cb = this.waiting!;
    this.waiting = null;
    cb();
  }

  private onReply(m: WorkerReply): void {
    if (this.failed || this.destroyed) return;
    if (m.error) {
      const err = new Error(m.error.message);
      if (m.error.name) err.name = m.error.name;
      this.fail(err);
      return;
    }
    if (--this.inFlight === 0) this.worker.unref();
    if (m.back && this.spare.length <= MAX_IN_FLIGHT) this.spare.push(m.back);
    for (let i = 0; i < m.out!.length; i++) this.push(Buffer.from(m.out![i]!, 0, m.lens![i]));
    if (m.end) {
      this.ended = true;
      const cb = this.flushed!;
      if (m.inFrame) cb(new Error('Stream ended in middle of compressed data frame'));
      else cb();
      return;
    }
    this.pump();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.destroy(err);
  }
}

interface WorkerReply {
  out?: ArrayBuffer[];
  lens?: number[];
  back?: ArrayBuffer | null;
  end?: boolean;
  inFrame?: boolean;
  error?: { message: string; name?: string };
}
