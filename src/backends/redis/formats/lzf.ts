import { IO_MAX, lzfKernel, type LzfKernel } from './lzf-kernel.js';

/**
 * LZF decompression (the format Redis uses for compressed RDB strings), bounded: it stops once `maxOut`
 * bytes are produced, so a long key can be decoded to its first bytes only.
 *
 * Format: a control byte c. c < 32: a literal run of c+1 bytes follows. Otherwise a back reference:
 * length (c >> 5) (7 means "7 + next byte"), plus 2; offset ((c & 31) << 8) + next byte, plus 1, back
 * from the current output position.
 *
 * Input that ends mid-token (cut at a capture bound, or corrupt) yields what was decoded so far: a caller
 * holding the whole input checks the length it gets against the length it expects. Returns null for a
 * reference before the start of the output.
 */
export function lzfDecompress(input: Uint8Array, maxOut: number): Buffer | null {
  const out = Buffer.allocUnsafe(maxOut);
  let ip = 0;
  let op = 0;
  const n = input.length;
  while (ip < n && op < maxOut) {
    const ctrl = input[ip++]!;
    if (ctrl < 32) {
      const len = ctrl + 1;
      if (ip + len > n) {
        // The compressed input may have been cut at our capture bound: keep what is there.
        const avail = Math.min(n - ip, maxOut - op);
        out.set(input.subarray(ip, ip + avail), op);
        return out.subarray(0, op + avail);
      }
      const take = Math.min(len, maxOut - op);
      out.set(input.subarray(ip, ip + take), op);
      op += take;
      ip += len;
    } else {
      let len = ctrl >> 5;
      if (len === 7) {
        if (ip >= n) break;
        len += input[ip++]!;
      }
      if (ip >= n) break;
      let ref = op - ((ctrl & 0x1f) << 8) - 1 - input[ip++]!;
      if (ref < 0) return null;
      len += 2;
      // Byte by byte: the reference may overlap the bytes being written.
      const stop = Math.min(op + len, maxOut);
      while (op < stop) out[op++] = out[ref++]!;
    }
  }
  return out.subarray(0, op);
}

/**
 * Decodes the LZF data src[ip, end) into dst[op, op + outLen) exactly, for a writer that knows the decoded length
 * (an RDB string's header gives it) and writes it in place: no buffer of its own. Returns op + outLen, or -1 when the
 * data does not decode to exactly outLen bytes (corrupt, cut short, a reference before dst[op], or a byte too many);
 * dst past op may then hold partial output. Values of 64 bytes to 64 KiB go through the WebAssembly kernel (lzf-kernel.ts), the rest through the loop below.
 */
export function lzfDecodeInto(src: Buffer, ip: number, end: number, dst: Buffer, op: number, outLen: number): number {
  if (outLen >= KERNEL_FROM && outLen <= IO_MAX && end - ip <= IO_MAX) {
    const k = kernel === undefined ? (kernel = lzfKernel()) : kernel;
    if (k !== null) {
      src.copy(k.input, 0, ip, end);
      return k.decode(end - ip, outLen) ? op + k.output.copy(dst, op, 0, outLen) : -1;
    }
  }
  return lzfDecodeIntoJs(src, ip, end, dst, op, outLen);
}

/** Output lengths from which the WebAssembly kernel decodes (a shorter value is a few tokens: the loop, without the copies). */
const KERNEL_FROM = 64;
let kernel: LzfKernel | null | undefined;

/**
 * lzfDecodeInto in JavaScript: for strings too long or too short for the kernel, and where it is unavailable. Literal
 * runs (at most 32 bytes) go byte by byte: on Tyk sessions a subarray and set() per run took 2.7 µs a value against 2.1.
 */
export function lzfDecodeIntoJs(src: Uint8Array, ip: number, end: number, dst: Uint8Array, op: number, outLen: number): number {
  const start = op;
  const outEnd = op + outLen;
  while (ip < end) {
    const ctrl = src[ip++]!;
    if (ctrl < 32) {
      let len = ctrl + 1;
      if (ip + len > end || op + len > outEnd) return -1;
      while (len-- > 0) dst[op++] = src[ip++]!;
    } else {
      let len = ctrl >> 5;
      if (len === 7) {
        if (ip >= end) return -1;
        len += src[ip++]!;
      }
      if (ip >= end) return -1;
      let ref = op - ((ctrl & 0x1f) << 8) - 1 - src[ip++]!;
      len += 2;
      if (ref < start || op + len > outEnd) return -1;
      if (len > 16 && ref + len <= op) {
        dst.copyWithin(op, ref, ref + len);
        op += len;
      } else {
        // Byte by byte: the reference may overlap the bytes being written.
        while (len-- > 0) dst[op++] = dst[ref++]!;
      }
    }
  }
  return op === outEnd ? op : -1;
}
