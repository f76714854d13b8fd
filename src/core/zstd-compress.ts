import { Transform, type TransformCallback } from 'node:stream';
import type * as Binding from 'zstd-napi/binding.js';
import { zstdBinding } from './zstd-napi.js';

/** Compressed bytes are pushed in buffers of this size (the last one shorter). */
const OUT_SIZE = 256 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * zstd streaming compression (one frame) on zstd-napi's binding, as zstd-napi's CompressStream but with fewer,
 * fuller output buffers: CompressStream allocates a fresh ~128 KiB buffer after every output, however few bytes
 * it held (with a worker thread, many outputs are a few KiB), and each pushed view keeps its whole buffer alive
 * until the next garbage collection. Here output fills a 256 KiB buffer across calls and is pushed once full,
 * without a copy, so the garbage is the compressed bytes themselves. With nbWorkers > 0, compression runs on
 * zstd's own threads; a call blocks only while they are behind.
 */
export class ZstdCompressStream extends Transform {
  private readonly zstd = zstdBinding();
  private readonly cctx = new this.zstd.CCtx();
  private out = Buffer.allocUnsafe(OUT_SIZE);
  private fill = 0;

  /** jobSize: bytes per worker job (zstd's default at level 1 is 2 MiB; its input and output buffers scale with it). */
  constructor(opts: { level: number; nbWorkers: number; jobSize?: number }) {
    super();
    this.cctx.setParameter(this.zstd.CParameter.compressionLevel, opts.level);
    if (opts.nbWorkers > 0) this.cctx.setParameter(this.zstd.CParameter.nbWorkers, opts.nbWorkers);
    if (opts.nbWorkers > 0 && opts.jobSize !== undefined) this.cctx.setParameter(this.zstd.CParameter.jobSize, opts.jobSize);
  }

  private compress(input: Buffer, end: Binding.EndDirective): void {
    for (;;) {
      const [left, produced, consumed] = this.cctx.compressStream2(this.out.subarray(this.fill), input, end);
      this.fill += produced;
      if (this.fill === this.out.length) {
        this.push(this.out);
        this.out = Buffer.allocUnsafe(OUT_SIZE);
        this.fill = 0;
      }
      input = input.subarray(consumed);
      // Continue: done once the input is taken. End: done once zstd has nothing left to write (left === 0).
      if (input.length === 0 && (end === this.zstd.EndDirective.continue || left === 0)) return;
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.compress(chunk, this.zstd.EndDirective.continue);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb();
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.compress(EMPTY, this.zstd.EndDirective.end);
    } catch (err) {
      cb(err as Error);
      return;
    }
    if (this.fill > 0) this.push(this.out.subarray(0, this.fill));
    cb();
  }
}
