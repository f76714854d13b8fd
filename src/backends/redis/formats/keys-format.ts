import { createHash, type Hash } from 'node:crypto';

/**
 * The key-level backup format ("tykdr keys stream", version 1): what `mode: keys` writes and a `live`
 * restore reads. docs/KEYS-FORMAT.md is its specification; the summary:
 *
 *   header   "TYKDRKEY" | u16 format version | u16 payload RDB version | u8 n | n bytes redis_version
 *   record   0x01 | u32 db | u32 key length | key | i64 absolute expiry ms (-1: none) | u32 payload length | DUMP payload
 *   trailer  0xFF | u64 record count | u16 highest payload RDB version | SHA-256 of every byte before it
 *
 * Integers are big-endian. The trailer is the only way a stream ends, so a stream cut anywhere (or with a
 * flipped byte) is refused by the reader.
 */
export const KEYS_MAGIC = Buffer.from('TYKDRKEY', 'latin1');
export const KEYS_FORMAT_VERSION = 1;
export const TAG_RECORD = 0x01;
export const TAG_END = 0xff;
/** Fixed part of the header, before redis_version. */
export const HEADER_FIXED = 13;
/** Fixed part of a record without key and payload: tag, db, key length, expiry, payload length. */
export const RECORD_FIXED = 1 + 4 + 4 + 8 + 4;
/** The whole trailer: tag, record count, highest payload version, SHA-256. */
export const TRAILER_LEN = 1 + 8 + 2 + 32;
/** Expiry field value for a key without a TTL. */
export const NO_EXPIRY = -1;

/**
 * The RDB version a DUMP payload was serialized with: the 2 bytes (little-endian) before its 8-byte CRC-64
 * footer (Redis src/cluster.c createDumpPayload). -1 when the payload is too short to have a footer.
 */
export function payloadRdbVersion(payload: Buffer): number {
  return payload.length < 10 ? -1 : payload.readUInt16LE(payload.length - 10);
}

/** Writes a signed 64-bit big-endian integer that is a safe JS integer (expiry milliseconds or -1). */
export function writeI64(buf: Buffer, value: number, at: number): void {
  if (value < 0) {
    buf.writeInt32BE(-1, at);
    buf.writeInt32BE(-1, at + 4);
    return;
  }
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

export function readI64(buf: Buffer, at: number): number {
  const hi = buf.readInt32BE(at);
  const lo = buf.readUInt32BE(at + 4);
  if (hi < 0) return hi === -1 && lo === 0xffffffff ? -1 : Number.NaN;
  return hi * 0x1_0000_0000 + lo;
}

/**
 * Encodes a keys stream into batches of bytes. Contract: header() once, before any record; then any number
 * of record() calls and take() to collect the bytes so far; finally trailer(), after which nothing may be
 * added. Every byte handed out passes through the running SHA-256 the trailer ends with.
 */
export class KeysStreamWriter {
  private buf = Buffer.allocUnsafe(256 * 1024);
  private len = 0;
  private readonly hash: Hash = createHash('sha256');
  private started = false;
  private ended = false;
  /** Records written so far. */
  records = 0;
  /** Bytes handed out by take() and trailer(). */
  bytes = 0;
  /** Highest payload RDB version seen in record(). */
  maxPayloadVersion = 0;

  constructor(private readonly redisVersion: string) {}

  get headerWritten(): boolean {
    return this.started;
  }

  /** Bytes encoded and not yet taken. */
  get pendingBytes(): number {
    return this.len;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Starts the stream. `payloadVersion` is the RDB version of the payloads that follow (0 when there are none). */
  header(payloadVersion: number): void {
    if (this.started) throw new Error('KeysStreamWriter: header written twice');
    const version = Buffer.from(this.redisVersion.slice(0, 255), 'latin1');
    this.ensure(HEADER_FIXED + version.length);
    KEYS_MAGIC.copy(this.buf, this.len);
    this.buf.writeUInt16BE(KEYS_FORMAT_VERSION, this.len + 8);
    this.buf.writeUInt16BE(Math.max(0, payloadVersion), this.len + 10);
    this.buf[this.len + 12] = version.length;
    version.copy(this.buf, this.len + HEADER_FIXED);
    this.len += HEADER_FIXED + version.length;
    this.started = true;
  }

  /** One key: database index, name, absolute expiry in Unix ms (or NO_EXPIRY) and its DUMP payload. */
  record(db: number, key: Buffer, expireAtMs: number, payload: Buffer): void {
    if (!this.started || this.ended) throw new Error('KeysStreamWriter: record() outside header()..trailer()');
    const n = RECORD_FIXED + key.length + payload.length;
    this.ensure(n);
    const b = this.buf;
    let p = this.len;
    b[p] = TAG_RECORD;
    b.writeUInt32BE(db, p + 1);
    b.writeUInt32BE(key.length, p + 5);
    p += 9;
    key.copy(b, p);
    p += key.length;
    writeI64(b, expireAtMs, p);
    b.writeUInt32BE(payload.length, p + 8);
    p += 12;
    payload.copy(b, p);
    this.len = p + payload.length;
    this.records++;
    const v = payloadRdbVersion(payload);
    if (v > this.maxPayloadVersion) this.maxPayloadVersion = v;
  }

  /** The bytes encoded since the last take() (hashed, ready to send). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.len);
    this.hash.update(out);
    this.bytes += out.length;
    // Hand the buffer away and start a new one: no copy, and the consumer may keep it as long as it likes.
    this.buf = Buffer.allocUnsafe(this.buf.length > 4 * 1024 * 1024 ? 256 * 1024 : this.buf.length);
    this.len = 0;
    return out;
  }

  /** Ends the stream: whatever take() has not collected yet, then the trailer. */
  trailer(): Buffer {
    if (!this.started || this.ended) throw new Error('KeysStreamWriter: trailer() before header() or twice');
    const rest = this.take();
    const t = Buffer.alloc(TRAILER_LEN);
    t[0] = TAG_END;
    t.writeUInt32BE(Math.floor(this.records / 0x1_0000_0000), 1);
    t.writeUInt32BE(this.records >>> 0, 5);
    t.writeUInt16BE(this.maxPayloadVersion, 9);
    this.hash.update(t.subarray(0, 11));
    this.hash.digest().copy(t, 11);
    this.bytes += TRAILER_LEN;
    this.ended = true;
    return Buffer.concat([rest, t]);
  }
}
