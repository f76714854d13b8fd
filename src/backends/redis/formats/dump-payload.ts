import { integrityError } from '../../../core/errors.js';
import { Crc64 } from './crc64.js';
import type { KeyRecord } from './keys-reader.js';
import { lzfDecompress } from './lzf.js';
import { RDB_TYPE } from './rdb-constants.js';
import { rdbStringLength, writeRdbString } from './string-value.js';
import { type RdbFacts, RdbInspector } from './rdb-inspector.js';

/**
 * Cuts an RDB file into DUMP payloads that RESTORE takes, without a scratch server.
 *
 * A DUMP payload is what Redis writes for one value in an RDB file (its type byte, then the value's encoding)
 * followed by a trailer: the RDB version, 2 bytes little-endian, and the CRC-64 (Jones, as for RDB files) of
 * every byte before it, 8 bytes little-endian. So each key record of the file is copied byte for byte, less
 * its key, and given the snapshot's own RDB version: a target that loads that RDB version loads the payload
 * (see maxDumpVersion in ../server-info.ts).
 *
 * Memory: the bytes from the end of the last key record up to the parse position are held, that is one key
 * record (a big value is held whole, as RESTORE needs it whole) plus the small records between keys and one
 * chunk; never the whole file. The file's structure and checksum are checked on the way (RdbInspector): a
 * damaged file fails, at the latest at its end, after the payloads before the damage have been yielded.
 */

/** One key, ready for `RESTORE key ttl payload ABSTTL` (ttl 0 when expireAtMs is null) in database `db`. */
export interface DumpPayloadEntry {
  kind: 'payload';
  db: number;
  key: Buffer;
  /** The RDB value type (rdb-constants.ts RDB_TYPE): the payload's first byte. */
  type: number;
  payload: Buffer;
  /** Absolute Unix milliseconds; null when the key does not expire. */
  expireAtMs: number | null;
}

/** A key whose value is not cut: module values (RDB type 7). `reason` says what it is and why. */
export interface UnsupportedEntry {
  kind: 'unsupported';
  db: number;
  key: Buffer;
  type: number;
  expireAtMs: number | null;
  reason: string;
}

export type DumpEntry = DumpPayloadEntry | UnsupportedEntry;

const HEADER_LEN = 9;
const EMPTY = Buffer.alloc(0);
const MODULE_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Push API: update() each chunk of the RDB file in order (from its first byte) and take the entries it
 * completed; finish() checks the end of the file (EOF marker, checksum) and returns the file's facts.
 * Chunks are held by reference until their bytes are cut: a caller must not reuse a chunk's memory.
 */
export class DumpPayloadCutter {
  private readonly inspector: RdbInspector;
  private readonly header = Buffer.alloc(HEADER_LEN);
  private headerFill = 0;
  private version = -1;
  /** File offset of the next chunk's first byte. */
  private offset = 0;
  /** Chunks holding every byte from `heldFrom` up to `offset`; the first from its byte `skip` on. */
  private held: Buffer[] = [];
  private skip = 0;
  private heldFrom = 0;
  private out: DumpEntry[] = [];
  // Where locate() found a record: (locBuf, locAt) holds its first byte (fields, not an object per record).
  private locBuf: Buffer = EMPTY;
  private locAt = 0;

  /**
   * `lazyPayloads`: an entry's payload is built (copied, CRC-64 computed) only when read, or written straight into
   * a command (LazyPayloadEntry.writePayload); until then the entry holds the chunk it came from. For a pass that
   * reads keys and expiries and keeps few payloads, and for the restore's write, which writes each payload once.
   * `checksum: false`: the file's CRC-64 is not computed (see RdbInspectorOptions.checksum).
   */
  constructor(private readonly opts: { lazyPayloads?: boolean; checksum?: boolean } = {}) {
    this.inspector = new RdbInspector({
      checksum: opts.checksum,
      // No KeyListener: the key is cut from the record's bytes (record()), so the parser makes no copy of it.
      onRecordBounds: (start, end, db, type, expireAtMs) => this.record(start, end, db, type, expireAtMs),
    });
  }

  /** Bytes held now (for tests of the memory bound): the open key record's, and those since the last one ended. */
  get heldBytes(): number {
    return this.offset - this.heldFrom;
  }

  /** The RDB version of the file (from its header); -1 before 9 bytes have arrived. */
  get rdbVersion(): number {
    return this.version;
  }

  update(chunk: Buffer): DumpEntry[] {
    if (this.headerFill < HEADER_LEN) {
      const n = Math.min(HEADER_LEN - this.headerFill, chunk.length);
      chunk.copy(this.header, this.headerFill, 0, n);
      this.headerFill += n;
      if (this.headerFill === HEADER_LEN && /^REDIS\d{4}$/.test(this.header.toString('latin1'))) {
        this.version = Number(this.header.toString('latin1', 5, 9));
      }
    }
    if (chunk.length === 0) return [];
    this.held.push(chunk);
    this.offset += chunk.length;
    // Throws on a malformed header or structure; record() runs inside for every key completed by this chunk.
    this.inspector.update(chunk);
    const done = this.out;
    this.out = [];
    return done;
  }

  /** Checks the end of the file; throws an integrityError when it is incomplete or its checksum differs. */
  finish(): RdbFacts {
    this.held = [];
    this.skip = 0;
    return this.inspector.complete();
  }

  /** A key record lies at [start, end): cut it into a payload, then drop the bytes before `end`. */
  private record(start: number, end: number, db: number, type: number, expireAtMs: number | null): void {
    this.locate(start, end);
    const buf = this.locBuf;
    const at = this.locAt;
    const { key, next } = decodeString(buf, at + 1, start - at);
    const valueEnd = at + (end - start);
    if (type === RDB_TYPE.MODULE_2) {
      this.out.push({ kind: 'unsupported', db, key, type, expireAtMs, reason: describeModule(buf.subarray(at, valueEnd), next - at) });
    } else if (this.opts.lazyPayloads) {
      this.out.push(new LazyPayloadEntry(db, key, type, buf, next, valueEnd, this.version, expireAtMs));
    } else {
      this.out.push({ kind: 'payload', db, key, type, payload: payloadOf(type, buf, next, valueEnd, this.version), expireAtMs });
    }
    this.release(end);
  }

  /**
   * Finds the file's bytes [start, end) in the held chunks: sets locBuf and locAt (the chunk that holds them all and
   * the offset of `start` in it), or a copy joined from the chunks a record spans.
   */
  private locate(start: number, end: number): void {
    if (start < this.heldFrom || end > this.offset) {
      throw new Error(`DumpPayloadCutter: bytes ${start}..${end} are not held (held ${this.heldFrom}..${this.offset})`);
    }
    // held[0] starts at file offset heldFrom - skip.
    let base = this.heldFrom - this.skip;
    const first = this.held[0]!;
    if (end <= base + first.length) {
      this.locBuf = first;
      this.locAt = start - base;
      return;
    }
    const parts: Buffer[] = [];
    for (const c of this.held) {
      const cEnd = base + c.length;
      if (cEnd > start && base < end) parts.push(c.subarray(Math.max(start - base, 0), Math.min(end, cEnd) - base));
      if (cEnd >= end) break;
      base = cEnd;
    }
    this.locBuf = Buffer.concat(parts, end - start);
    this.locAt = 0;
  }

  /** Forgets the bytes before file offset `upTo`. */
  private release(upTo: number): void {
    while (this.held.length > 0 && this.heldFrom - this.skip + this.held[0]!.length <= upTo) {
      this.heldFrom += this.held.shift()!.length - this.skip;
      this.skip = 0;
    }
    if (this.held.length > 0 && upTo > this.heldFrom) {
      this.skip += upTo - this.heldFrom;
      this.heldFrom = upTo;
    }
  }
}

/**
 * A payload entry whose payload is built on first read (see DumpPayloadCutter's lazyPayloads), or written straight
 * into a command buffer (writePayload). It is also a KeyRecord (expireAt -1 for none), so a reader can pass it on
 * without building anything. It holds the chunk its value lies in until it is dropped.
 */
export class LazyPayloadEntry implements DumpPayloadEntry, KeyRecord {
  readonly kind = 'payload';
  private built: Buffer | null = null;

  constructor(
    readonly db: number,
    readonly key: Buffer,
    readonly type: number,
    /** The value's bytes (after the key) are src[from, to). */
    private readonly src: Buffer,
    private readonly from: number,
    private readonly to: number,
    private readonly version: number,
    readonly expireAtMs: number | null,
  ) {}

  get payload(): Buffer {
    return (this.built ??= payloadOf(this.type, this.src, this.from, this.to, this.version));
  }

  get expireAt(): number {
    return this.expireAtMs ?? -1;
  }

  /** The payload's length in bytes. */
  get payloadLength(): number {
    return this.to - this.from + 11;
  }

  /** A string value's length once decoded (GET's answer); -1 for another type or bytes that are not one string encoding. */
  get stringLength(): number {
    return this.type === RDB_TYPE.STRING ? rdbStringLength(this.src, this.from, this.to) : -1;
  }

  /** Writes the decoded string at dst[at] (stringLength bytes, room made by the caller); returns the position after it, or -1. */
  writeString(dst: Buffer, at: number): number {
    return writeRdbString(this.src, this.from, this.to, dst, at);
  }

  /** Writes the payload at dst[at] (payloadLength bytes, room checked by the caller); returns the position after it. */
  writePayload(dst: Buffer, at: number): number {
    if (this.built !== null) return at + this.built.copy(dst, at);
    return writePayloadAt(dst, at, this.type, this.src, this.from, this.to, this.version);
  }
}

/**
 * Pull API: the entries of an RDB byte stream (a file read stream, or openRdbStream's stream), in file order.
 * Throws (an integrityError) when the stream is not a complete, undamaged RDB file, at the latest after the
 * last entry.
 */
export async function* cutDumpPayloads(source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>): AsyncGenerator<DumpEntry, RdbFacts, undefined> {
  const cutter = new DumpPayloadCutter();
  for await (const chunk of source) {
    yield* cutter.update(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return cutter.finish();
}

/** value (type byte + encoding) + version (2 bytes LE) + CRC-64 of all that (8 bytes LE). */
export function buildPayload(type: number, value: Uint8Array, rdbVersion: number): Buffer {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return payloadOf(type, v, 0, v.length, rdbVersion);
}

/** buildPayload of the value src[from, to). */
function payloadOf(type: number, src: Buffer, from: number, to: number, rdbVersion: number): Buffer {
  const out = Buffer.allocUnsafe(to - from + 11);
  writePayloadAt(out, 0, type, src, from, to, rdbVersion);
  return out;
}

/** One CRC-64 state for every payload (each is computed whole in one call): no object per key. */
const PAYLOAD_CRC = new Crc64();

/** Writes the payload of the value src[from, to) at dst[at]; returns the position after it. */
function writePayloadAt(dst: Buffer, at: number, type: number, src: Buffer, from: number, to: number, rdbVersion: number): number {
  if (!(rdbVersion >= 1 && rdbVersion <= 0xffff)) throw new Error(`DumpPayloadCutter: bad RDB version ${rdbVersion}`);
  dst[at] = type;
  const n = at + 1 + src.copy(dst, at + 1, from, to);
  dst[n] = rdbVersion & 0xff;
  dst[n + 1] = rdbVersion >>> 8;
  const crc = PAYLOAD_CRC.reset();
  crc.updateRange(dst, at, n + 2);
  crc.writeLE(dst, n + 2);
  return n + 10;
}

/**
 * One key record's bytes (its type byte, key and value, as RdbInspector's onRecordBounds delimits them; `at` is
 * the file offset of bytes[0]): its key (a copy) and its DUMP payload for `rdbVersion`, or null for a module value
 * (RDB type 7), which is not cut.
 */
export function cutKeyRecord(bytes: Buffer, at: number, rdbVersion: number): { key: Buffer; type: number; payload: Buffer | null } {
  const { key, next } = decodeString(bytes, 1, at);
  const type = bytes[0]!;
  return { key, type, payload: type === RDB_TYPE.MODULE_2 ? null : buildPayload(type, bytes.subarray(next), rdbVersion) };
}

/** An RDB string at buf[p] (raw, integer or LZF): its bytes and the offset after it. `at`: file offset of buf[0]. */
function decodeString(buf: Buffer, p: number, at: number): { key: Buffer; next: number } {
  const bad = (what: string) => integrityError(`RDB is corrupt: ${what} at byte ${at + p}`, 'take a new snapshot');
  const len = (q: number): [number, number] => {
    const b = buf[q];
    if (b === undefined) throw bad('a key cut short');
    switch (b >> 6) {
      case 0:
        return [b & 0x3f, q + 1];
      case 1:
        return [((b & 0x3f) << 8) | buf[q + 1]!, q + 2];
      default:
        if (b === 0x80) return [buf.readUInt32BE(q + 1), q + 5];
        if (b === 0x81) return [buf.readUInt32BE(q + 1) * 0x100000000 + buf.readUInt32BE(q + 5), q + 9];
        throw bad(`a bad length encoding 0x${b.toString(16)}`);
    }
  };
  const b = buf[p]!;
  if (b >> 6 === 0) {
    // A raw key under 64 bytes (most keys): no length decoding, one copy.
    const n = b & 0x3f;
    return { key: copyOf(buf, p + 1, p + 1 + n), next: p + 1 + n };
  }
  if (b >> 6 !== 3) {
    const [n, q] = len(p);
    return { key: copyOf(buf, q, q + n), next: q + n };
  }
  switch (b & 0x3f) {
    case 0:
      return { key: Buffer.from(String(buf.readInt8(p + 1))), next: p + 2 };
    case 1:
      return { key: Buffer.from(String(buf.readInt16LE(p + 1))), next: p + 3 };
    case 2:
      return { key: Buffer.from(String(buf.readInt32LE(p + 1))), next: p + 5 };
    case 3: {
      const [clen, q1] = len(p + 1);
      const [ulen, q2] = len(q1);
      const key = lzfDecompress(buf.subarray(q2, q2 + clen), ulen);
      if (key === null || key.length !== ulen) throw bad('an invalid LZF-compressed key');
      return { key: Buffer.from(key), next: q2 + clen };
    }
    default:
      throw bad(`an unknown string encoding ${b & 0x3f}`);
  }
}

/** A copy of buf[from, to). */
function copyOf(buf: Buffer, from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe(to - from);
  buf.copy(out, 0, from, to);
  return out;
}

/** A module value's type name and encoding version, from its 64-bit module id (9 characters of 6 bits, then 10 bits). */
function describeModule(bytes: Buffer, p: number): string {
  let name = 'unknown';
  let encver = -1;
  if (bytes[p] === 0x81 && bytes.length >= p + 9) {
    let id = bytes.readBigUInt64BE(p + 1);
    encver = Number(id & 1023n);
    id >>= 10n;
    const chars: string[] = [];
    for (let i = 0; i < 9; i++) {
      chars.unshift(MODULE_CHARSET[Number(id & 63n)]!);
      id >>= 6n;
    }
    name = chars.join('');
  }
  return `a module value (RDB type 7, module type "${name}"${encver >= 0 ? `, encoding version ${encver}` : ''}): ` +
    'tykdr does not cut module values into RESTORE payloads';
}
