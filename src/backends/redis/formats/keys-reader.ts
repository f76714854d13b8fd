import { createHash, type Hash } from 'node:crypto';
import { integrityError } from '../../../core/errors.js';
import {
  HEADER_FIXED, KEYS_FORMAT_VERSION, KEYS_MAGIC, readI64, RECORD_FIXED, TAG_END, TAG_RECORD, TRAILER_LEN,
} from './keys-format.js';

export interface KeysHeader {
  formatVersion: number;
  /** The payload RDB version the header announces (that of the first payload written). */
  payloadRdbVersion: number;
  /** redis_version of the server the keys were read from. */
  redisVersion: string;
}

/** One key. `key` and `payload` may share memory with the chunk they came from: copy what you keep. */
export interface KeyRecord {
  db: number;
  key: Buffer;
  /** Absolute Unix ms, or -1 for no expiry. */
  expireAt: number;
  payload: Buffer;
}

export interface KeysTrailer {
  records: number;
  /** The highest RDB version among the payloads. */
  maxPayloadRdbVersion: number;
  /** The SHA-256 the trailer carries (and the reader recomputed), hex. */
  sha256: string;
}

/** Keys are at most 512 MiB in Redis: a longer length is damage, not data. */
const MAX_KEY_LEN = 512 * 1024 * 1024;
const CUT_FIX = 'the artifact was cut short or damaged: restore from another snapshot (and check the store)';

/**
 * Parses a keys stream pushed in chunks of any size, checking it completely: magic, format version, each
 * record's structure, the trailer's record count and SHA-256, and that nothing follows the trailer. Memory:
 * the current record plus one chunk. Throws integrityError naming the byte offset on the first problem;
 * end() throws when the stream stopped before its trailer.
 */
export class KeysStreamParser {
  header: KeysHeader | null = null;
  trailer: KeysTrailer | null = null;
  /** Key records parsed so far. */
  records = 0;
  /** Bytes consumed so far. */
  bytes = 0;
  /** Unparsed bytes, as received: joined only once the item they hold is complete (no quadratic copying of a large value). */
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes the item at the head of `chunks` needs before parsing is worth trying again. */
  private need = 0;
  /** Null on a second read of a stream an earlier read checked whole (KeysStreamParser's `digest: false`). */
  private readonly hash: Hash | null;

  /**
   * `digest: false`: the SHA-256 in the trailer is not computed again (structure and record count still are). Only for
   * a second read of a private file whose digest an earlier read checked.
   */
  constructor(opts: { digest?: boolean } = {}) {
    this.hash = opts.digest === false ? null : createHash('sha256');
  }

  /** Parses what `chunk` completes; whole records are appended to `out`. */
  push(chunk: Buffer, out: KeyRecord[]): void {
    if (this.trailer !== null) {
      if (chunk.length > 0) throw integrityError(`keys stream has unexpected bytes after its trailer (at byte ${this.bytes})`, CUT_FIX);
      return;
    }
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.need) return;
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    let p = 0;
    let need = 0;
    if (this.header === null) {
      const n = this.parseHeader(buf);
      if (n < 0) {
        this.keep(buf, 0, buf.length < HEADER_FIXED ? HEADER_FIXED : HEADER_FIXED + buf[12]!);
        return;
      }
      p = n;
    }
    while (p < buf.length) {
      const tag = buf[p]!;
      if (tag === TAG_RECORD) {
        if (buf.length - p < 9) {
          need = 9;
          break;
        }
        const keyLen = buf.readUInt32BE(p + 5);
        if (keyLen > MAX_KEY_LEN) throw this.damaged(`record #${this.records + 1} claims a ${keyLen}-byte key`);
        const fixedEnd = p + RECORD_FIXED + keyLen;
        if (buf.length < fixedEnd) {
          need = fixedEnd - p;
          break;
        }
        const end = fixedEnd + buf.readUInt32BE(fixedEnd - 4);
        if (buf.length < end) {
          need = end - p;
          break;
        }
        const expireAt = readI64(buf, p + 9 + keyLen);
        if (Number.isNaN(expireAt)) throw this.damaged(`record #${this.records + 1} has an invalid expiry`);
        out.push({ db: buf.readUInt32BE(p + 1), key: buf.subarray(p + 9, p + 9 + keyLen), expireAt, payload: buf.subarray(fixedEnd, end) });
        this.records++;
        this.bytes += end - p;
        p = end;
      } else if (tag === TAG_END) {
        if (buf.length - p < TRAILER_LEN) {
          need = TRAILER_LEN;
          break;
        }
        this.finishTrailer(buf, p);
        return;
      } else {
        throw this.damaged(`unknown record tag 0x${tag.toString(16).padStart(2, '0')} after record #${this.records}`);
      }
    }
    this.hash?.update(buf.subarray(0, p));
    this.keep(buf, p, need);
  }

  /** Keeps buf[p..] for the next push (a copy when small, so the records handed out do not pin it). */
  private keep(buf: Buffer, p: number, need: number): void {
    const tail = buf.subarray(p);
    this.chunks = tail.length === 0 ? [] : [tail.length < 64 * 1024 ? Buffer.from(tail) : tail];
    this.buffered = tail.length;
    this.need = need;
  }

  private finishTrailer(buf: Buffer, p: number): void {
    const stored = buf.subarray(p + 11, p + TRAILER_LEN);
    let digest = stored;
    if (this.hash) {
      this.hash.update(buf.subarray(0, p + 11));
      digest = this.hash.digest();
    }
    const count = buf.readUInt32BE(p + 1) * 0x1_0000_0000 + buf.readUInt32BE(p + 5);
    if (!digest.equals(stored)) {
      throw integrityError(
        `keys stream checksum mismatch: SHA-256 of its ${this.bytes + 11} bytes is ${digest.toString('hex').slice(0, 16)}…, its trailer says ${stored.toString('hex').slice(0, 16)}…`,
        CUT_FIX,
      );
    }
    if (count !== this.records) {
      throw integrityError(`keys stream trailer counts ${count} records, but the stream holds ${this.records}`, CUT_FIX);
    }
    this.trailer = { records: count, maxPayloadRdbVersion: buf.readUInt16BE(p + 9), sha256: digest.toString('hex') };
    this.bytes += TRAILER_LEN;
    this.chunks = [];
    this.buffered = 0;
    if (buf.length > p + TRAILER_LEN) {
      throw integrityError(`keys stream has ${buf.length - p - TRAILER_LEN} unexpected bytes after its trailer`, CUT_FIX);
    }
  }

  /** Call when the input has ended: returns the trailer, or throws when the stream is incomplete. */
  end(): KeysTrailer {
    if (this.trailer !== null) return this.trailer;
    const total = this.bytes + this.buffered;
    if (this.header === null) {
      throw integrityError(total === 0 ? 'keys stream is empty (0 bytes): it was cut short' : `keys stream ends after ${total} bytes, inside its header`, CUT_FIX);
    }
    const where = this.buffered > 0 ? `inside record #${this.records + 1}` : `after record #${this.records}, before its trailer`;
    throw integrityError(`keys stream ends after ${total} bytes, ${where}: it was cut short`, CUT_FIX);
  }

  /** Returns the header length once it is complete, -1 when more bytes are needed. */
  private parseHeader(buf: Buffer): number {
    const n = Math.min(buf.length, KEYS_MAGIC.length);
    if (buf.compare(KEYS_MAGIC, 0, n, 0, n) !== 0) {
      throw integrityError(`not a tykdr keys stream: it starts with ${JSON.stringify(buf.toString('latin1', 0, Math.min(buf.length, 8)))}, not "TYKDRKEY"`, CUT_FIX);
    }
    if (buf.length < HEADER_FIXED) return -1;
    const version = buf.readUInt16BE(8);
    if (version !== KEYS_FORMAT_VERSION) {
      throw integrityError(
        `keys stream format version ${version} is not one this tykdr reads (it reads version ${KEYS_FORMAT_VERSION})`,
        version > KEYS_FORMAT_VERSION ? 'restore with the tykdr release that took the snapshot, or a newer one' : CUT_FIX,
      );
    }
    const len = HEADER_FIXED + buf[12]!;
    if (buf.length < len) return -1;
    this.header = { formatVersion: version, payloadRdbVersion: buf.readUInt16BE(10), redisVersion: buf.toString('latin1', HEADER_FIXED, len) };
    this.bytes = len;
    return len;
  }

  /** `this.bytes` is the stream offset of the record being parsed: everything before it was consumed. */
  private damaged(what: string): Error {
    return integrityError(`keys stream is damaged at byte ${this.bytes}: ${what}`, CUT_FIX);
  }
}

/**
 * Reads a keys stream (e.g. a file's read stream), yielding its records in batches as they arrive.
 * Returns the trailer; throws integrityError when the stream is damaged or incomplete.
 */
export async function* readKeysStream(
  source: AsyncIterable<Buffer>,
  onHeader?: (h: KeysHeader) => void,
  opts: { digest?: boolean } = {},
): AsyncGenerator<KeyRecord[], KeysTrailer> {
  const parser = new KeysStreamParser(opts);
  let announced = false;
  for await (const chunk of source) {
    const out: KeyRecord[] = [];
    parser.push(chunk, out);
    if (!announced && parser.header) {
      announced = true;
      onHeader?.(parser.header);
    }
    if (out.length > 0) yield out;
  }
  return parser.end();
}
