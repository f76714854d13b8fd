import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Crc64, hexLE64 } from '../../src/backends/redis/formats/crc64.js';
import { crc64Kernel, INPUT_MAX } from '../../src/backends/redis/formats/crc64-kernel.js';

/** Bit-at-a-time reference: reflected Jones polynomial, init 0, no final xor. */
function reference(buf: Uint8Array): bigint {
  const poly = 0x95ac9329ac4bc9b5n; // 0xad93d23594c935a9 bit-reversed
  let crc = 0n;
  for (const byte of buf) {
    crc ^= BigInt(byte);
    for (let i = 0; i < 8; i++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return crc;
}

function crcOf(buf: Uint8Array): Crc64 {
  const c = new Crc64();
  c.update(buf);
  return c;
}

describe('Crc64', () => {
  it('long inputs go through the WebAssembly kernel, which matches the reference across its 64 KiB pieces', () => {
    expect(crc64Kernel(new Int32Array(16 * 256), new Int32Array(16 * 256), 16)).not.toBeNull();
    const data = randomBytes(INPUT_MAX + 40_003);
    for (const off of [0, 1, 3]) {
      const view = data.subarray(off);
      expect(crcOf(view).digestHex(), `offset ${off}`).toBe(reference(view).toString(16).padStart(16, '0'));
    }
  });

  it('updateRange over buf[start, end) equals update over that view, short and long, across the kernel\'s pieces, and after reset()', () => {
    const data = randomBytes(2 * INPUT_MAX + 1000);
    const c = new Crc64();
    for (const [start, end] of [[0, 0], [5, 20], [3, 600], [0, 511], [1, 513], [7, INPUT_MAX + 9], [100, 2 * INPUT_MAX + 999]] as const) {
      c.reset().update(Buffer.from('dirty state'));
      c.reset().updateRange(data, start, end);
      expect(c.digestHex(), `${start}..${end}`).toBe(reference(data.subarray(start, end)).toString(16).padStart(16, '0'));
    }
    // Incremental: two ranges in a row are the CRC of both.
    c.reset().updateRange(data, 0, 700);
    c.updateRange(data, 700, 70_000);
    expect(c.digestHex()).toBe(crcOf(data.subarray(0, 70_000)).digestHex());
  });

  it('gives the Redis check value for "123456789"', () => {
    expect(crcOf(Buffer.from('123456789')).digestHex()).toBe('e9c6d914c4b8d9ca');
    expect(crcOf(Buffer.alloc(0)).digestHex()).toBe('0000000000000000');
  });

  it('matches a bit-by-bit reference for every length around the 16-byte stride', () => {
    const data = randomBytes(300);
    for (let n = 0; n <= 300; n += n < 40 ? 1 : 37) {
      expect(crcOf(data.subarray(0, n)).digestHex()).toBe(reference(data.subarray(0, n)).toString(16).padStart(16, '0'));
    }
  });

  it('matches the reference at every alignment of the input (from 512 bytes it reads 4-byte words once aligned)', () => {
    const data = randomBytes(1200);
    for (let off = 0; off < 8; off++) {
      for (const n of [0, 1, 15, 16, 17, 100, 511, 512, 513, 514, 515, 527, 528, 529, 1000, 1027]) {
        const view = new Uint8Array(data.buffer, data.byteOffset + off, n);
        expect(crcOf(view).digestHex(), `offset ${off}, ${n} bytes`).toBe(reference(view).toString(16).padStart(16, '0'));
      }
    }
  });

  it('gives the same result incrementally, whatever the split', () => {
    const data = randomBytes(100_003);
    const whole = crcOf(data).digestHex();
    for (const step of [1, 3, 15, 16, 17, 4096, 65536]) {
      const c = new Crc64();
      for (let o = 0; o < data.length; o += step) c.update(data.subarray(o, o + step));
      expect(c.digestHex(), `step ${step}`).toBe(whole);
    }
    // uneven random splits
    const c = new Crc64();
    let o = 0;
    while (o < data.length) {
      const n = 1 + Math.floor(Math.random() * 200);
      c.update(data.subarray(o, o + n));
      o += n;
    }
    expect(c.digestHex()).toBe(whole);
  });

  it('compares against a little-endian trailer as Redis writes it', () => {
    const c = crcOf(Buffer.from('123456789'));
    const le = Buffer.from('cad9b8c414d9c6e9', 'hex');
    expect(c.equalsLE(le)).toBe(true);
    expect(hexLE64(le)).toBe('e9c6d914c4b8d9ca');
    le[3] = le[3]! ^ 1;
    expect(c.equalsLE(le)).toBe(false);
    expect(c.equalsLE(le.subarray(0, 7))).toBe(false);
  });
});
