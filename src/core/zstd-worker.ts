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
/**
 * Chunks of OUT_BYTES one reply may carry. An input that decompresses to more (a PostgreSQL dump compresses about
 * 90:1, zeros far more) is answered in parts, the next one only when the stream asks for it: memory stays bounded
 * by these numbers whatever the compression ratio. 8, not 4: an RDB of sessions (about 4:1) then never waits on a
 * part (staging one, 4 took about 0.95x the time of 64 and 8 about the same as 64; bench/restore-stage.ts machinery).
 */
const OUT_PER_REPLY = 8;
/** Messages the worker may have queued: it decompresses one while the main thread prepares the next ones. */
const MAX_IN_FLIGHT = 3;
/**
 * Output buffers given back by recycle() that the worker keeps for reuse, and how many are gathered before one message
 * takes them back. Each new 1 MiB output buffer is memory the process has not touched yet: staging a 690 MB RDB made
 * 33,000-54,000 page faults against zstd's 1,200, half of them the worker's output, and on a VM whose balloon driver
 * had reported that memory to the host each one faults on the host too (bench/README.md, eighth session).
 */
const MAX_FREE = 16;
const SPARE_BATCH = 4;

/*
 * The worker: a zstd DCtx from zstd-napi's binding, fed inputs in order. Output is gathered into OUT_BYTES
 * buffers, transferred (not copied) back. An input is answered once it is all decompressed (its buffer goes back
 * with the answer); when OUT_PER_REPLY buffers fill first, the worker answers with them as a part ("partial") and
 * waits for { more } before it goes on. An input with end answers with the rest and whether the stream stopped
 * inside a frame. After a failure it ignores everything.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const binding = require(workerData.binding);
const dctx = new binding.DCtx();
const OUT = workerData.outBytes;
const PER_REPLY = workerData.outPerReply;
const MAX_FREE = workerData.maxFree;
const EMPTY = Buffer.alloc(0);
/** Output buffers the main thread gave back (recycle()), reused before new ones are made. */
const free = [];
let reused = 0;
const next = () => (free.length > 0 ? (reused++, Buffer.from(free.pop())) : Buffer.allocUnsafeSlow(OUT));
let out = next();
let fill = 0;
let failed = false;
/** The last input ended inside a frame (zstd asked for more input). */
let inFrame = false;
/** Inputs not yet answered whole, in order: { input, src (what is left of it), end }. */
const queue = [];
/** The first input was answered in part: nothing more until { more }. */
let paused = false;
parentPort.on('message', (m) => {
  if (failed) return;
  if (m.spare) {
    for (const b of m.spare) if (free.length < MAX_FREE) free.push(b);
    return;
  }
  if (m.more) paused = false;
  else queue.push({ input: m.input, src: m.input ? Buffer.from(m.input, 0, m.len) : EMPTY, end: m.end });
  work();
});
function work() {
  while (!paused && !failed && queue.length > 0) {
    const h = queue[0];
    const done = [];
    // An empty input (the end, with nothing left to send) is not given to zstd: after a whole frame it would ask for
    // the next frame's header and look like a stream cut inside one.
    let finished = !h.started && h.src.length === 0;
    h.started = true;
    try {
      while (!finished) {
        const [ret, produced, consumed] = dctx.decompressStream(out.subarray(fill), h.src);
        fill += produced;
        h.src = h.src.subarray(consumed);
        inFrame = ret !== 0;
        const full = fill === out.length;
        if (full) {
          done.push(out.buffer);
          out = next();
          fill = 0;
        }
        // Done with this input once it is all taken and zstd holds no more output for it: the frame ended (ret 0:
        // decoded and flushed; calling again would ask for the next frame), or the output had room left.
        if (h.src.length === 0 && (ret === 0 || !full)) finished = true;
        else if (full && done.length >= PER_REPLY) break;
      }
    } catch (err) {
      failed = true;
      parentPort.postMessage({ error: { message: String(err && err.message || err), name: err && err.name } });
      return;
    }
    const lens = done.map((b) => b.byteLength);
    if (!finished) {
      paused = true;
      parentPort.postMessage({ out: done, lens, partial: true, reused }, done);
      return;
    }
    queue.shift();
    if (h.end && fill > 0) {
      done.push(out.buffer);
      lens.push(fill);
      out = next();
      fill = 0;
    }
    // The input's buffer goes back too, for the next input: the worker keeps no garbage its GC may not see soon.
    const transfer = h.input ? done.concat([h.input]) : done;
    parentPort.postMessage({ out: done, lens, back: h.input, end: h.end, inFrame, reused }, transfer);
  }
}
`;

/**
 * zstd decompression on a worker thread, as a Transform: the main thread only hands compressed bytes over
 * and pushes what comes back, so decryption, hashing and file writes overlap the decompression instead of
 * waiting for it (zstd-napi's DecompressStream decompresses synchronously on the calling thread).
 * Memory: at most MAX_IN_FLIGHT inputs of IN_BYTES, their replies of OUT_PER_REPLY buffers, the output buffers given
 * back by recycle() (up to MAX_FREE in the worker, fewer than SPARE_BATCH gathered here; more are left to the garbage
 * collector), and the readable side's high-water mark: downstream backpressure holds further input back, and the next part of an input that
 * decompresses to more than one reply is asked for only while less than a reply's worth waits to be read. The same failures as
 * DecompressStream: the worker's decompression error, or "Stream ended in middle of compressed data frame".
 */
export class WorkerDecompressStream extends Transform {
  private readonly worker: Worker;
  private pending: Buffer = Buffer.allocUnsafeSlow(IN_BYTES);
  /** Input buffers the worker handed back, for reuse. */
  private readonly spare: ArrayBuffer[] = [];
  /** The output buffers this stream pushed (recycle() gives back only these) and those gathered to go back. */
  private readonly pushed = new WeakSet<ArrayBuffer>();
  private returning: ArrayBuffer[] = [];
  /** Output buffers the worker has decompressed into again (from recycle()), as of its last reply. */
  reusedBuffers = 0;
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
  /** The worker answered an input in part and waits for { more }. */
  private workerWaits = false;

  constructor() {
    super({ readableHighWaterMark: OUT_BYTES });
    const binding = createRequire(import.meta.url).resolve('zstd-napi/binding');
    // execArgv []: the source is CommonJS whatever flags started the process (--input-type=module, loaders, --cpu-prof).
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { binding, outBytes: OUT_BYTES, outPerReply: OUT_PER_REPLY, maxFree: MAX_FREE } });
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
    if (this.workerWaits) this.askMore();
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
    this.inFlight++;
    this.updateRef();
    this.worker.postMessage({ input, len, end }, input ? [input] : []);
  }

  /** The worker goes on with the input it answered in part. */
  private askMore(): void {
    if (this.failed || this.destroyed) return;
    this.workerWaits = false;
    this.updateRef();
    this.worker.postMessage({ more: true });
  }

  /** Referenced only while an answer will come without the stream asking (not while the worker waits for { more }). */
  private updateRef(): void {
    if (this.inFlight > 0 && !this.workerWaits) this.worker.ref();
    else this.worker.unref();
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
    if (m.reused !== undefined) this.reusedBuffers = m.reused;
    for (let i = 0; i < m.out!.length; i++) {
      this.pushed.add(m.out![i]!);
      this.push(Buffer.from(m.out![i]!, 0, m.lens![i]));
    }
    if (m.partial) {
      // The rest of that input while less than one more reply waits to be read (so the worker keeps busy while
      // this one is taken), else when downstream asks (_read).
      this.workerWaits = true;
      if (this.readableLength < OUT_PER_REPLY * OUT_BYTES) this.askMore();
      else this.updateRef();
      return;
    }
    this.inFlight--;
    this.updateRef();
    if (m.back && this.spare.length <= MAX_IN_FLIGHT) this.spare.push(m.back);
    if (m.end) {
      this.ended = true;
      const cb = this.flushed!;
      if (m.inFrame) cb(new Error('Stream ended in middle of compressed data frame'));
      else cb();
      return;
    }
    this.pump();
  }

  /**
   * Gives a chunk this stream pushed back to the worker, to decompress into again. Only for a consumer that holds no
   * reference to the chunk (nor to any view of its memory) once it is done with it: the memory moves to the worker,
   * and every view of it here becomes empty. Anything else is ignored.
   */
  recycle(chunk: Buffer): void {
    const b = chunk.buffer as ArrayBuffer;
    if (this.failed || this.destroyed || !this.pushed.has(b) || b.byteLength !== OUT_BYTES) return;
    this.pushed.delete(b);
    this.returning.push(b);
    if (this.returning.length < SPARE_BATCH) return;
    const spare = this.returning;
    this.returning = [];
    this.worker.postMessage({ spare }, spare);
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
  /** A part of an input's output: the worker waits for { more }. */
  partial?: boolean;
  back?: ArrayBuffer | null;
  end?: boolean;
  inFrame?: boolean;
  /** Output buffers reused so far (given back by recycle()). */
  reused?: number;
  error?: { message: string; name?: string };
}
