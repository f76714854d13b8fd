import { describe, expect, it } from 'vitest';
import { CommandEncoder, type PayloadWriter } from '../../src/backends/redis/protocol/resp-pipe.js';

/** RESP of a command built the plain way: every argument as a bulk string. */
function resp(...args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** A payload that writes itself (as LazyPayloadEntry does). */
const writer = (bytes: Buffer): PayloadWriter => ({
  payloadLength: bytes.length,
  writePayload: (dst, at) => at + bytes.copy(dst, at),
});

describe('CommandEncoder.restore', () => {
  const key = Buffer.from('apikey-0123456789abcdef');
  const payload = Buffer.from([0, 5, 104, 101, 108, 108, 111, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8]);

  it('writes RESTORE key ttl payload REPLACE [ABSTTL] byte for byte, for every size of number it writes digit by digit', () => {
    const ttls = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 65_535, 1_893_456_000_123, 9_999_999_999_999, 10_000_000_000_000, Number.MAX_SAFE_INTEGER, 2 ** 60, 1e20];
    for (const ttl of ttls) {
      for (const abs of [true, false]) {
        const e = new CommandEncoder();
        e.restore(key, ttl, payload, abs);
        const want = abs ? resp('RESTORE', key, String(ttl), payload, 'REPLACE', 'ABSTTL') : resp('RESTORE', key, String(ttl), payload, 'REPLACE');
        expect(e.take().data.toString('latin1'), `ttl ${ttl}`).toBe(want.toString('latin1'));
      }
    }
  });

  it('writes a PayloadWriter\'s bytes exactly as the same bytes given as a Buffer, whatever their length (1 to 5 digits)', () => {
    for (const n of [1, 9, 10, 99, 100, 1000, 70_000]) {
      const p = Buffer.alloc(n, 0x61);
      const a = new CommandEncoder();
      const b = new CommandEncoder();
      a.restore(key, 42, p, true);
      b.restore(key, 42, writer(p), true);
      expect(b.take().data.equals(a.take().data), `${n} bytes`).toBe(true);
    }
  });

  it('fails when a PayloadWriter writes another length than it announced (the RESP length would lie)', () => {
    const e = new CommandEncoder();
    expect(() => e.restore(key, 0, { payloadLength: 5, writePayload: (_d, at) => at + 4 }, true)).toThrow(/payload of 5 bytes wrote 4/);
  });
});

describe('CommandEncoder.recycle', () => {
  it('a handed-over batch given back is where the next batches are encoded; two kept at most', () => {
    const e = new CommandEncoder();
    const fill = (n: number, tag: string) => {
      for (let i = 0; i < n; i++) e.restore(Buffer.from(`${tag}${i}`), 0, Buffer.alloc(1000, 0x61), true);
    };
    fill(100, 'a');
    const a = e.take();
    fill(100, 'b');
    const b = e.take();
    fill(100, 'c');
    const c = e.take();
    expect(new Set([a.data.buffer, b.data.buffer, c.data.buffer]).size).toBe(3);
    e.recycle(a);
    e.recycle(b);
    e.recycle(c); // a third spare is not kept
    // The encoder is still in the buffer it took after c; the next two batches go into b's and a's memory, then new memory.
    fill(100, 'd');
    const d = e.take();
    fill(100, 'e');
    const f = e.take();
    expect(f.data.buffer).toBe(b.data.buffer);
    fill(100, 'g');
    const g = e.take();
    expect(g.data.buffer).toBe(a.data.buffer);
    fill(100, 'h');
    const h = e.take();
    expect([a, b, c].map((x) => x.data.buffer)).not.toContain(h.data.buffer);
    expect(d.count + f.count + g.count + h.count).toBe(400);
    expect(g.data.subarray(0, 40).toString('latin1')).toContain('g0');
  });
});

describe('CommandEncoder.take', () => {
  it('hands over large batches (no copy) and small ones as copies; a batch never changes when the encoder goes on', () => {
    const e = new CommandEncoder();
    const value = Buffer.alloc(1000, 0x62);
    for (let i = 0; i < 100; i++) e.restore(Buffer.from(`k${i}`), 0, value, true);
    const big = e.take();
    expect(big.count).toBe(100);
    const bigCopy = Buffer.from(big.data);
    e.command('SET', 'x', 'y');
    const small = e.take();
    expect(small.data.toString()).toBe(resp('SET', 'x', 'y').toString());
    for (let i = 0; i < 100; i++) e.restore(Buffer.from(`other${i}`), 5, Buffer.alloc(1000, 0x63), false);
    e.command('PING');
    expect(big.data.equals(bigCopy)).toBe(true);
    expect(small.data.toString()).toBe(resp('SET', 'x', 'y').toString());
    expect(e.take().count).toBe(101);
    expect(e.take()).toEqual({ data: Buffer.alloc(0), count: 0 });
  });

  it('never hands over a buffer much larger than its batch: after a 1 MiB batch, a 40 KiB one is copied into its own memory', () => {
    const e = new CommandEncoder();
    e.restore(Buffer.from('big'), 0, Buffer.alloc(1 << 20), true);
    const big = e.take();
    expect(big.data.buffer.byteLength).toBeLessThanOrEqual(2 * big.data.length);
    for (let i = 0; i < 40; i++) e.restore(Buffer.from(`k${i}`), 0, Buffer.alloc(1000), true);
    const next = e.take();
    expect(next.count).toBe(40);
    expect(next.data.length).toBeGreaterThan(40_000);
    expect(next.data.buffer.byteLength).toBeLessThanOrEqual(2 * next.data.length);
  });
});
