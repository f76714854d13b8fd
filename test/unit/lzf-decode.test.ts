import { describe, expect, it } from 'vitest';
import { lzfDecodeInto, lzfDecodeIntoJs, lzfDecompress } from '../../src/backends/redis/formats/lzf.js';
import { IO_MAX, lzfKernel } from '../../src/backends/redis/formats/lzf-kernel.js';
import { PayloadString, rdbStringLength, writeRdbString } from '../../src/backends/redis/formats/string-value.js';
import { CommandEncoder } from '../../src/backends/redis/protocol/resp-pipe.js';
import { buildPayload } from '../../src/backends/redis/formats/dump-payload.js';
import { probeKey } from '../../src/backends/redis/target/keys-restore.js';

/**
 * The decoders that write a live restore's strings into its SET commands: the WebAssembly kernel, the JavaScript
 * loop, and the RDB string encodings around them, against LZF written here by a small compressor of the format
 * (liblzf's: literal runs of 1..32 bytes; back references of 3..264 bytes at distances 1..8192). Redis's own
 * LZF strings go through them in the live restore tests against real servers.
 */

/** Greedy LZF: a back reference wherever the next 3 bytes occurred within 8192 bytes, the longest one found. */
function lzfCompress(input: Buffer): Buffer {
  const out: number[] = [];
  let lit: number[] = [];
  const flush = () => {
    while (lit.length > 0) {
      const run = lit.splice(0, 32);
      out.push(run.length - 1, ...run);
    }
  };
  const last = new Map<number, number>();
  let i = 0;
  while (i < input.length) {
    let best = 0;
    let at = -1;
    if (i + 3 <= input.length) {
      const h = input.readUIntBE(i, 3);
      const cand = last.get(h);
      last.set(h, i);
      if (cand !== undefined && i - cand <= 8192) {
        let n = 0;
        while (n < 264 && i + n < input.length && input[cand + n] === input[i + n]) n++;
        if (n >= 3) {
          best = n;
          at = cand;
        }
      }
    }
    if (best === 0) {
      lit.push(input[i]!);
      i++;
      continue;
    }
    flush();
    const len = best - 2;
    const off = i - at - 1;
    if (len < 7) out.push((len << 5) | (off >> 8), off & 0xff);
    else out.push((7 << 5) | (off >> 8), len - 7, off & 0xff);
    i += best;
  }
  flush();
  return Buffer.from(out);
}

/** Deterministic bytes: JSON-like text with repeats near and far, runs of one byte (overlapping references), noise. */
function sample(seed: number, n: number): Buffer {
  let s = seed * 2654435761 || 1;
  const r = () => ((s = (s ^ (s << 13)) >>> 0), (s = (s ^ (s >>> 17)) >>> 0), (s = (s ^ (s << 5)) >>> 0), s / 4294967296);
  const words = ['"access_rights":', '"org_id":"5e9d', 'apikey-', '{"allowance":1000,', '"expires":0,', 'x'];
  const parts: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const k = r();
    const b =
      k < 0.4 ? Buffer.from(words[Math.floor(r() * words.length)]!) :
      k < 0.6 ? Buffer.alloc(1 + Math.floor(r() * 300), 0x61 + Math.floor(r() * 3)) :
      k < 0.8 ? Buffer.from(Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 256))) :
      parts.length > 0 ? parts[Math.floor(r() * parts.length)]! : Buffer.from('{');
    parts.push(b);
    len += b.length;
  }
  return Buffer.concat(parts).subarray(0, n);
}

describe('lzfDecodeInto', () => {
  it('the compressor here writes what the reference decoder reads', () => {
    const v = sample(1, 5000);
    expect(lzfDecompress(lzfCompress(v), v.length)!.equals(v)).toBe(true);
  });

  it('decodes exactly, at an offset, with the kernel (64 B..64 KiB) and the JavaScript loop (outside that) alike', () => {
    expect(lzfKernel()).not.toBeNull();
    for (const n of [1, 3, 33, 63, 64, 65, 790, 4096, 8193, 30_000, IO_MAX, IO_MAX + 1, 200_000]) {
      for (const seed of [1, 2, 3]) {
        const v = sample(seed * 1000 + n, n);
        const c = lzfCompress(v);
        // The compressed bytes inside a larger buffer, as they lie inside a chunk of the RDB file.
        const src = Buffer.concat([Buffer.from('head'), c, Buffer.from('tail')]);
        for (const decode of [lzfDecodeInto, lzfDecodeIntoJs]) {
          const dst = Buffer.alloc(n + 20, 0xee);
          expect(decode(src, 4, 4 + c.length, dst, 9, n)).toBe(9 + n);
          expect(dst.subarray(9, 9 + n).equals(v)).toBe(true);
          // Nothing written around the output.
          expect(dst.subarray(0, 9).every((b) => b === 0xee)).toBe(true);
          expect(dst.subarray(9 + n).every((b) => b === 0xee)).toBe(true);
        }
      }
    }
  });

  it('answers -1 for a wrong length, data cut short, or a reference before the output', () => {
    const v = sample(7, 2000);
    const c = lzfCompress(v);
    for (const decode of [lzfDecodeInto, lzfDecodeIntoJs]) {
      const dst = Buffer.alloc(4000);
      expect(decode(c, 0, c.length, dst, 0, v.length - 1)).toBe(-1); // more output than said
      expect(decode(c, 0, c.length, dst, 0, v.length + 1)).toBe(-1); // less
      expect(decode(c, 0, c.length - 1, dst, 0, v.length)).toBe(-1); // cut in the last token
      // A back reference 2 bytes back after a 1-byte literal; at any output offset (a decoder must not read before it).
      const bad = Buffer.from([0x00, 0x61, 0x20, 0x01]);
      expect(decode(bad, 0, bad.length, dst, 100, 4)).toBe(-1);
      // A literal run that says 32 bytes where 3 follow.
      const cut = Buffer.from([31, 1, 2, 3]);
      expect(decode(cut, 0, cut.length, dst, 0, 100)).toBe(-1);
    }
  });

  it('repeats overlapping references byte by byte (distances 2 and 7), copies a far one whole', () => {
    const c = Buffer.from([
      0x01, 0x61, 0x62, // literal "ab"
      0xe0, 255, 0x01, // 264 bytes from distance 2
      0x06, ...Buffer.from('xyzuvwq'), // literal of 7
      0xe0, 91, 0x06, // 100 bytes from distance 7
      0xe1, 191, 43, // 200 bytes from distance 300
    ]);
    let want = Buffer.concat([Buffer.from('ab'.repeat(133)), Buffer.from('xyzuvwq'.repeat(16)).subarray(0, 107)]);
    want = Buffer.concat([want, want.subarray(want.length - 300, want.length - 100)]);
    expect(lzfDecompress(c, want.length)!.equals(want)).toBe(true);
    for (const decode of [lzfDecodeInto, lzfDecodeIntoJs]) {
      const dst = Buffer.alloc(want.length);
      expect(decode(c, 0, c.length, dst, 0, want.length)).toBe(want.length);
      expect(dst.equals(want)).toBe(true);
    }
  });
});

/** An RDB string encoding: a 6/14/32-bit length and raw bytes, an integer (0xc0..0xc2), or LZF (0xc3). */
const rawEnc = (v: Buffer) =>
  v.length < 64 ? Buffer.concat([Buffer.from([v.length]), v]) :
  v.length < 16384 ? Buffer.concat([Buffer.from([0x40 | (v.length >> 8), v.length & 0xff]), v]) :
  Buffer.concat([Buffer.from([0x80, v.length >>> 24, (v.length >> 16) & 0xff, (v.length >> 8) & 0xff, v.length & 0xff]), v]);
const lenEnc = (n: number) => rawEnc(Buffer.alloc(n)).subarray(0, n < 64 ? 1 : n < 16384 ? 2 : 5);
const lzfEnc = (v: Buffer) => {
  const c = lzfCompress(v);
  return Buffer.concat([Buffer.from([0xc3]), lenEnc(c.length), lenEnc(v.length), c]);
};

describe('RDB strings written into SET commands', () => {
  const cases: Array<[string, Buffer, string | Buffer]> = [
    ['empty', rawEnc(Buffer.alloc(0)), ''],
    ['raw, 6-bit length', rawEnc(Buffer.from('hello')), 'hello'],
    ['raw, 14-bit length', rawEnc(Buffer.alloc(300, 0x41)), Buffer.alloc(300, 0x41)],
    ['raw, 32-bit length', rawEnc(Buffer.alloc(20_000, 0x42)), Buffer.alloc(20_000, 0x42)],
    ['int8', Buffer.from([0xc0, 0xf6]), '-10'],
    ['int16', Buffer.from([0xc1, 0x39, 0x30]), '12345'],
    ['int32', Buffer.from([0xc2, 0x00, 0x00, 0x00, 0x80]), '-2147483648'],
    ['LZF (kernel)', lzfEnc(sample(5, 790)), sample(5, 790)],
    ['LZF (longer than the kernel takes)', lzfEnc(sample(6, 100_000)), sample(6, 100_000)],
  ];

  for (const [name, enc, want] of cases) {
    it(`${name}: length, bytes, and the SET command around them`, () => {
      const value = Buffer.from(want);
      const buf = Buffer.concat([Buffer.from([0xaa, 0xbb]), enc, Buffer.from([0xcc])]);
      expect(rdbStringLength(buf, 2, 2 + enc.length)).toBe(value.length);
      const dst = Buffer.alloc(value.length + 4);
      expect(writeRdbString(buf, 2, 2 + enc.length, dst, 2)).toBe(2 + value.length);
      expect(dst.subarray(2, 2 + value.length).equals(value)).toBe(true);

      // As a DUMP payload (type 0, the encoding, RDB version and CRC-64), through CommandEncoder.set with and without PXAT.
      const payload = buildPayload(0, enc, 11);
      const enc2 = new CommandEncoder();
      expect(enc2.set(Buffer.from('k1'), new PayloadString(payload), 0)).toBe(true);
      expect(enc2.set(Buffer.from('k2'), new PayloadString(payload), 1_893_456_000_123)).toBe(true);
      const { data, count } = enc2.take();
      expect(count).toBe(2);
      const v = value.toString('latin1');
      expect(data.toString('latin1')).toBe(
        `*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$${value.length}\r\n${v}\r\n` +
        `*5\r\n$3\r\nSET\r\n$2\r\nk2\r\n$${value.length}\r\n${v}\r\n$4\r\nPXAT\r\n$13\r\n1893456000123\r\n`,
      );
    });
  }

  it('bytes that are not exactly one string encoding: length -1, and SET appends nothing', () => {
    const lz = lzfEnc(sample(8, 500));
    const bad: Array<[string, Buffer]> = [
      ['a raw string with a byte too many', Buffer.concat([rawEnc(Buffer.from('abc')), Buffer.from('d')])],
      ['a raw string cut short', rawEnc(Buffer.from('abcdef')).subarray(0, 4)],
      ['an int8 with a byte too many', Buffer.from([0xc0, 1, 2])],
      ['an unknown special encoding', Buffer.from([0xc4, 0, 0])],
      ['LZF with a byte too many', Buffer.concat([lz, Buffer.from([0])])],
      ['nothing', Buffer.alloc(0)],
      // 3 bytes of LZF cannot make 1,000 bytes (at most 264 a token): damage, not a length to make room for.
      ['LZF claiming more than 88 times its data', Buffer.from([0xc3, 3, 0x43, 0xe8, 0x00, 0x61, 0x62])],
    ];
    for (const [, b] of bad) expect(rdbStringLength(b, 0, b.length)).toBe(-1);

    // Header and length right, the data damaged: the length is given, the decode fails, the batch is left as it was.
    // "a", then 264 bytes from 8192 back: before the string's start.
    const damaged = Buffer.from([0xc3, 5, 0x41, 0x09, 0x00, 0x61, 0xff, 255, 0xff]);
    const payload = buildPayload(0, damaged, 11);
    const enc = new CommandEncoder();
    enc.command('PING');
    expect(new PayloadString(payload).stringLength).toBe(265);
    expect(enc.set(Buffer.from('k'), new PayloadString(payload), 0)).toBe(false);
    // Not a string (a list's type byte), or a CRC-64 that does not match (one byte of the value changed): not written.
    expect(enc.set(Buffer.from('k'), new PayloadString(buildPayload(2, rawEnc(Buffer.from('x')), 11)), 0)).toBe(false);
    const flipped = buildPayload(0, rawEnc(Buffer.from('hello')), 11);
    flipped[3] ^= 1;
    expect(new PayloadString(flipped).stringLength).toBe(-1);
    expect(enc.set(Buffer.from('k'), new PayloadString(flipped), 0)).toBe(false);
    const { data, count } = enc.take();
    expect(count).toBe(1);
    expect(data.toString('latin1')).toBe('*1\r\n$4\r\nPING\r\n');
  });
});

describe('lzfDecodeInto on random and damaged data', () => {
  it('the kernel and the JavaScript loop agree with lzfDecompress on 3,000 inputs, valid, cut and mutated, and write nothing around the output', () => {
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), seed / 4294967296);
    for (let t = 0; t < 3000; t++) {
      const n = 64 + Math.floor(rand() * 3000);
      const v = sample(t + 1, n);
      let c = lzfCompress(v);
      const kind = t % 3;
      if (kind === 1) c = c.subarray(0, Math.floor(rand() * c.length)); // cut short
      if (kind === 2) {
        c = Buffer.from(c);
        for (let m = 0; m < 3; m++) c[Math.floor(rand() * c.length)] = Math.floor(rand() * 256); // mutated
      }
      const ref = lzfDecompress(c, n);
      const refOk = ref !== null && ref.length === n && lzfDecodeIntoJs(c, 0, c.length, Buffer.alloc(n), 0, n) === n;
      for (const decode of [lzfDecodeInto, lzfDecodeIntoJs]) {
        const dst = Buffer.alloc(n + 16, 0xee);
        const end = decode(c, 0, c.length, dst, 8, n);
        expect(dst.subarray(0, 8).every((b) => b === 0xee), `case ${t}`).toBe(true);
        expect(dst.subarray(8 + n).every((b) => b === 0xee), `case ${t}`).toBe(true);
        if (kind === 0) expect(dst.subarray(8, 8 + n).equals(v), `case ${t}`).toBe(true);
        expect(end === 8 + n, `case ${t}`).toBe(refOk);
        if (end === 8 + n) expect(dst.subarray(8, 8 + n).equals(ref!), `case ${t}`).toBe(true);
      }
    }
  });
});

describe('probeKey', () => {
  it('finds a key the router sends to the lane (a Cluster master: a key of its slots), or null when none comes in 64 tries', () => {
    const byLastByte = { laneOf: (_lane: number, key: Buffer) => key[key.length - 2]! % 3 };
    for (const lane of [0, 1, 2]) {
      const k = probeKey(byLastByte, lane)!;
      expect(byLastByte.laneOf(0, k)).toBe(lane);
      expect(k.toString()).toMatch(/^tykdr:restore:set-probe:\{[0-9a-f]{16}\}$/);
    }
    expect(probeKey({ laneOf: () => 7 }, 3)).toBeNull();
    // A database lane (not a Cluster): every key is the lane's.
    expect(probeKey({ laneOf: (db) => db }, 5)).not.toBeNull();
  });
});
