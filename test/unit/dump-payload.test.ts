import { describe, expect, it } from 'vitest';
import { type DumpEntry, DumpPayloadCutter, LazyPayloadEntry, buildPayload, cutDumpPayloads } from '../../src/backends/redis/formats/dump-payload.js';
import { Crc64 } from '../../src/backends/redis/formats/crc64.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspectRdbForLive } from '../../src/backends/redis/target/keys-inspect.js';
import { TykdrError } from '../../src/core/errors.js';
import { KEY_CLASSES } from '../../src/core/tyk/key-classes.js';

/**
 * The cutter on small RDB files written here byte by byte (rdb.h's format), for what the real servers of
 * the matrix do not write: module values, the pre-release module type, damaged and cut files. The real
 * servers' files are cut in test/integration/dump-payload.test.ts.
 */

const CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const str = (s: string | Buffer) => {
  const b = Buffer.from(s);
  if (b.length >= 64) throw new Error('test helper: short strings only');
  return Buffer.concat([Buffer.from([b.length]), b]);
};
const u64le = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};
/** A module type id: 9 name characters of 6 bits each, then a 10-bit encoding version. */
function moduleId(name: string, encver: number): Buffer {
  let id = 0n;
  for (const ch of name) id = (id << 6n) | BigInt(CHARSET.indexOf(ch));
  id = (id << 10n) | BigInt(encver);
  const b = Buffer.alloc(9);
  b[0] = 0x81;
  b.writeBigUInt64BE(id, 1);
  return b;
}

const EXPIRE = 1_893_456_000_123n;
const HELLO = str('hello');
const LZF_KEY = Buffer.from([0xc3, 5, 10, 0x00, 0x61, 0xe0, 0x00, 0x00]); // "a" then a 9-byte back reference: 10 × "a"

/** An RDB (version 11) with an AUX field, two databases, an expiry, int/LZF keys and a module value. */
function rdbFile(): Buffer {
  const body = Buffer.concat([
    Buffer.from('REDIS0011'),
    Buffer.from([0xfa]), str('redis-ver'), str('7.2.4'),
    Buffer.from([0xfe, 0, 0xfb, 3, 1]),
    Buffer.from([0xfc]), u64le(EXPIRE), Buffer.from([0]), str('a'), HELLO,
    Buffer.from([7]), str('m'), moduleId('ReJSON-RL', 3), Buffer.from([2, 5, 5]), str('x'), Buffer.from([0]),
    Buffer.from([0]), str('b'), str(''),
    Buffer.from([0xfe, 2]),
    Buffer.from([0, 0xc0, 7, 0xc1, 0xe8, 0x03]), // key "7" (int8), value 1000 (int16)
    Buffer.from([0]), LZF_KEY, str('lzf key'),
    Buffer.from([0xff]),
  ]);
  const crc = new Crc64();
  crc.update(body);
  return Buffer.concat([body, Buffer.from(crc.digestHex(), 'hex').reverse()]);
}

function cutAll(chunks: Buffer[]): DumpEntry[] {
  const c = new DumpPayloadCutter();
  const out: DumpEntry[] = [];
  for (const ch of chunks) out.push(...c.update(ch));
  expect(c.finish().totalKeys).toBe(5);
  return out;
}

const summary = (e: DumpEntry) => ({
  db: e.db, key: e.key.toString(), expireAtMs: e.expireAtMs, kind: e.kind,
  body: e.kind === 'payload' ? e.payload.subarray(0, e.payload.length - 10).toString('hex') : e.reason,
});

describe('DumpPayloadCutter on hand-written RDB files', () => {
  it('cuts each key record less its key, with the file\'s version and a CRC-64 trailer', () => {
    const entries = cutAll([rdbFile()]);
    expect(entries.map((e) => [e.kind, e.db, e.key.toString(), e.expireAtMs])).toEqual([
      ['payload', 0, 'a', Number(EXPIRE)],
      ['unsupported', 0, 'm', null],
      ['payload', 0, 'b', null],
      ['payload', 2, '7', null],
      ['payload', 2, 'aaaaaaaaaa', null],
    ]);
    const a = entries[0]!;
    expect(a.kind === 'payload' && a.payload.subarray(0, -10)).toEqual(Buffer.concat([Buffer.from([0]), HELLO]));
    const seven = entries[3]!;
    expect(seven.kind === 'payload' && seven.payload.subarray(0, -10)).toEqual(Buffer.from([0, 0xc1, 0xe8, 0x03]));
    for (const e of entries) {
      if (e.kind !== 'payload') continue;
      expect(e.payload.readUInt16LE(e.payload.length - 10)).toBe(11);
      const crc = new Crc64();
      crc.update(e.payload.subarray(0, -8));
      expect(crc.equalsLE(e.payload.subarray(-8))).toBe(true);
    }
  });

  it('names module values as unsupported, with their module type and encoding version', () => {
    const m = cutAll([rdbFile()])[1]!;
    expect(m.kind).toBe('unsupported');
    expect(m.kind === 'unsupported' && m.reason).toMatch(/module value \(RDB type 7, module type "ReJSON-RL", encoding version 3\).*does not cut module values/);
  });

  it('cuts the same entries at every split point and byte by byte', () => {
    const file = rdbFile();
    const whole = cutAll([file]).map(summary);
    for (let i = 1; i < file.length; i++) expect(cutAll([file.subarray(0, i), file.subarray(i)]).map(summary)).toEqual(whole);
    expect(cutAll([...file].map((b) => Buffer.from([b]))).map(summary)).toEqual(whole);
  });

  it('lazy entries give the same payloads, read or written straight into a buffer, at every split point', () => {
    const file = rdbFile();
    const eager = cutAll([file]).map((e) => (e.kind === 'payload' ? e.payload : null));
    const lazyCut = (chunks: Buffer[]) => {
      const c = new DumpPayloadCutter({ lazyPayloads: true });
      const out: DumpEntry[] = [];
      for (const ch of chunks) out.push(...c.update(ch));
      c.finish();
      return out;
    };
    const check = (entries: DumpEntry[], where: string) => {
      expect(entries).toHaveLength(eager.length);
      entries.forEach((e, i) => {
        if (e.kind !== 'payload') return expect(eager[i], where).toBeNull();
        const w = e as LazyPayloadEntry;
        expect(w.payloadLength, where).toBe(eager[i]!.length);
        // Written at an offset into a dirty buffer: exactly the payload's bytes, and the position after them.
        const dst = Buffer.alloc(w.payloadLength + 7, 0xee);
        expect(w.writePayload(dst, 3), where).toBe(3 + w.payloadLength);
        expect(dst.subarray(3, 3 + w.payloadLength), where).toEqual(eager[i]);
        expect(dst.subarray(0, 3), where).toEqual(Buffer.alloc(3, 0xee));
        expect(w.payload, where).toEqual(eager[i]);
      });
    };
    for (let i = 1; i < file.length; i++) check(lazyCut([file.subarray(0, i), file.subarray(i)]), `split at ${i}`);
    check(lazyCut([...file].map((b) => Buffer.from([b]))), 'byte by byte');
  });

  it('yields the entries before the damage, then fails on a wrong checksum or a cut file', async () => {
    const bad = rdbFile();
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    const seen: DumpEntry[] = [];
    const run = async (file: Buffer) => {
      for await (const e of cutDumpPayloads([file.subarray(0, 20), file.subarray(20)])) seen.push(e);
    };
    await expect(run(bad)).rejects.toThrow(/checksum mismatch/);
    expect(seen).toHaveLength(5);
    seen.length = 0;
    await expect(run(rdbFile().subarray(0, 60))).rejects.toThrow(/cut short/);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(5);
  });

  it('refuses the pre-release module type 6 (its layout is unknown) as the parser does', () => {
    const file = Buffer.concat([Buffer.from('REDIS0009'), Buffer.from([0xfe, 0, 6]), str('k'), Buffer.from([1, 2, 3])]);
    expect(() => new DumpPayloadCutter().update(file)).toThrow(/pre-release module format/);
  });
});

describe('a live restore of an RDB holding a module value (Redis Stack: RedisJSON here)', () => {
  it('is refused while the staged file is inspected, before any target is contacted: badInput naming the database, the key and the module type', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tykdr-module-rdb-'));
    try {
      const file = path.join(dir, 'redis.rdb');
      await writeFile(file, rdbFile());
      // What a live restore runs before its first write: the lean read finds the module value, the thorough one names it.
      const err = await inspectRdbForLive(file, { restored: new Set(KEY_CLASSES), sampleSize: 0, expectation: false }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(TykdrError);
      expect((err as TykdrError).kind).toBe('badInput');
      expect((err as TykdrError).message).toMatch(/the snapshot's RDB holds "m" in database 0 that tykdr cannot restore key by key: a module value \(RDB type 7, module type "ReJSON-RL", encoding version 3\)/);
      expect((err as TykdrError).fix).toContain('restore.mode: rdb-file into a server that has the module');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('buildPayload', () => {
  it('writes value, version and CRC, and refuses versions that do not fit 2 bytes', () => {
    const p = buildPayload(4, Buffer.from([1, 2, 3]), 9);
    expect(p.subarray(0, 6)).toEqual(Buffer.from([4, 1, 2, 3, 9, 0]));
    expect(p.length).toBe(14);
    expect(() => buildPayload(0, Buffer.alloc(0), 0x10000)).toThrow(/bad RDB version/);
  });
});
