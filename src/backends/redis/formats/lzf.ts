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
