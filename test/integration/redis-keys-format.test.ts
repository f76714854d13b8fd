import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeysStreamWriter, NO_EXPIRY, payloadRdbVersion, TRAILER_LEN } from '../../src/backends/redis/formats/keys-format.js';
import { KeysStreamParser, readKeysStream, type KeyRecord } from '../../src/backends/redis/formats/keys-reader.js';
import { TykdrError } from '../../src/core/errors.js';
import { keySlot } from '../../src/backends/redis/protocol/cluster.js';

/** A fake DUMP payload: value bytes, then RDB version (LE) and an 8-byte "CRC". */
function payload(value: Buffer, version = 10): Buffer {
  const foot = Buffer.alloc(10);
  foot.writeUInt16LE(version, 0);
  return Buffer.concat([Buffer.from([0]), value, foot]);
}

function sampleStream(n: number, opts: { version?: number } = {}): { bytes: Buffer; records: Array<{ db: number; key: Buffer; expireAt: number; payload: Buffer }> } {
  const w = new KeysStreamWriter('7.0.15');
  const records = [];
  const parts: Buffer[] = [];
  w.header(opts.version ?? 10);
  for (let i = 0; i < n; i++) {
    const rec = {
      db: i % 3,
      key: Buffer.from(`apikey-${i}`),
      expireAt: i % 2 === 0 ? NO_EXPIRY : 1_900_000_000_000 + i,
      payload: payload(i === 7 ? randomBytes(300_000) : Buffer.from(`value-${i}`), opts.version ?? 10),
    };
    records.push(rec);
    w.record(rec.db, rec.key, rec.expireAt, rec.payload);
    if (i % 5 === 4) parts.push(w.take());
  }
  parts.push(w.trailer());
  return { bytes: Buffer.concat(parts), records };
}

function parseAll(bytes: Buffer, chunk: number): { records: KeyRecord[]; parser: KeysStreamParser } {
  const parser = new KeysStreamParser();
  const records: KeyRecord[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parser.push(bytes.subarray(i, i + chunk), records);
  parser.end();
  return { records, parser };
}

function integrity(fn: () => unknown): TykdrError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('integrityError');
    return err as TykdrError;
  }
  throw new Error('expected an integrity error');
}

describe('keys stream format', () => {
  it('round-trips records (db, key, expiry, payload) in chunks of any size', () => {
    const { bytes, records } = sampleStream(40);
    for (const size of [1, 7, 100, 4096, bytes.length]) {
      const { records: got, parser } = parseAll(bytes, size);
      expect(got.map((r) => ({ ...r, key: Buffer.from(r.key), payload: Buffer.from(r.payload) }))).toEqual(records);
      expect(parser.header).toEqual({ formatVersion: 1, payloadRdbVersion: 10, redisVersion: '7.0.15' });
      expect(parser.trailer!.records).toBe(40);
      expect(parser.trailer!.maxPayloadRdbVersion).toBe(10);
    }
  });

  it('the trailer is a SHA-256 of everything before it (checkable with sha256sum)', () => {
    const { bytes } = sampleStream(3);
    const digest = createHash('sha256').update(bytes.subarray(0, bytes.length - 32)).digest();
    expect(bytes.subarray(bytes.length - 32).equals(digest)).toBe(true);
    expect(bytes.subarray(0, 8).toString()).toBe('TYKDRKEY');
  });

  it('refuses a stream cut at any point, naming where', () => {
    const { bytes } = sampleStream(12);
    const cuts = [0, 5, 13, 30, Math.floor(bytes.length / 2), bytes.length - TRAILER_LEN, bytes.length - TRAILER_LEN + 5, bytes.length - 1];
    for (const cut of cuts) {
      const err = integrity(() => parseAll(bytes.subarray(0, cut), 1000));
      expect(err.message).toMatch(cut === 0 ? /empty \(0 bytes\)/ : /ends after \d+ bytes|inside its header/);
      expect(err.fix).toContain('another snapshot');
    }
    expect(integrity(() => parseAll(bytes.subarray(0, bytes.length - TRAILER_LEN), 64)).message).toMatch(/after record #12, before its trailer/);
    expect(integrity(() => parseAll(bytes.subarray(0, 200), 64)).message).toMatch(/inside record #\d+/);
  });

  it('refuses a flipped byte (checksum), garbage after the trailer, a wrong magic and a newer format version', () => {
    const { bytes } = sampleStream(5);
    const flipped = Buffer.from(bytes);
    flipped[40]! ^= 0x01;
    expect(() => parseAll(flipped, 64)).toThrow(/checksum mismatch|damaged|cut short/);
    expect(integrity(() => parseAll(Buffer.concat([bytes, Buffer.from('x')]), 64)).message).toMatch(/unexpected bytes after its trailer/);
    expect(integrity(() => parseAll(Buffer.from('REDIS0010...'), 64)).message).toMatch(/not a tykdr keys stream/);
    const newer = Buffer.from(bytes);
    newer.writeUInt16BE(2, 8);
    const err = integrity(() => parseAll(newer, 64));
    expect(err.message).toContain('format version 2 is not one this tykdr reads');
    expect(err.fix).toContain('newer');
  });

  it('counts records against the trailer', () => {
    const w = new KeysStreamWriter('7.0.15');
    w.header(10);
    w.record(0, Buffer.from('a'), NO_EXPIRY, payload(Buffer.from('1')));
    const head = w.take();
    const trailer = w.trailer();
    // Drop the record but keep the trailer: the count (and checksum) no longer match.
    const noRecords = Buffer.concat([head.subarray(0, 13 + 6), trailer]);
    expect(() => parseAll(noRecords, 64)).toThrow(/checksum mismatch|counts 1 records/);
  });

  it('readKeysStream yields batches and returns the trailer; payload versions come from the DUMP footer', async () => {
    const { bytes } = sampleStream(10, { version: 11 });
    const it = readKeysStream((async function* () {
      for (let i = 0; i < bytes.length; i += 50) yield bytes.subarray(i, i + 50);
    })());
    let n = 0;
    let r = await it.next();
    while (!r.done) {
      n += r.value.length;
      for (const rec of r.value) expect(payloadRdbVersion(rec.payload)).toBe(11);
      r = await it.next();
    }
    expect(n).toBe(10);
    expect(r.value.maxPayloadRdbVersion).toBe(11);
  });

  it('cluster key slots follow Redis (CRC16, hash tags)', () => {
    // Values from the Redis Cluster spec and `CLUSTER KEYSLOT`.
    expect(keySlot(Buffer.from('123456789'))).toBe(0x31c3 & 16383);
    expect(keySlot(Buffer.from('foo'))).toBe(12182);
    expect(keySlot(Buffer.from('{user1000}.following'))).toBe(keySlot(Buffer.from('user1000')));
    expect(keySlot(Buffer.from('foo{}bar'))).toBe(keySlot(Buffer.from('foo{}bar')));
    expect(keySlot(Buffer.from('{}foo'))).not.toBe(keySlot(Buffer.from('')));
  });
});
