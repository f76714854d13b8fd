import { integrityError } from '../../../core/errors.js';
import { lzfDecompress } from './lzf.js';

/** Longest key or AUX value held; longer ones are reported cut to this many bytes. */
export const CAPTURE_LIMIT = 64 * 1024;
/** Compressed bytes held for an LZF key: enough to decode CAPTURE_LIMIT bytes (literal runs cost 1/32). */
const LZF_CAPTURE_LIMIT = CAPTURE_LIMIT + (CAPTURE_LIMIT >> 4) + 64;
/** Returned by readers when the buffer ends inside the item. */
export const NEED = -1;
export const STR_RAW = 0;
export const STR_INT = 1;
export const STR_LZF = 2;

/**
 * The RDB primitives under RdbParser: lengths and string headers read all-or-nothing from a buffer, and
 * strings captured (keys, AUX fields) across chunk boundaries up to CAPTURE_LIMIT, LZF-decoded when needed.
 * Results go to fields (np: the position after the item; sKind/sLen/sULen/sInt: the last string header)
 * rather than to allocated objects: this runs once per item of a large dump.
 */
export abstract class RdbReader {
  /** Absolute offset of buf[0] for the buffer being parsed (for messages). */
  protected base = 0;
  protected np = 0;
  protected sKind = STR_RAW;
  /** Payload bytes after the header: the raw length, or the compressed length for LZF. */
  protected sLen = 0;
  protected sULen = 0;
  protected sInt = 0;

  /**
   * True: a string that lies whole in the chunk (and is not LZF-compressed) reaches onString as a view into
   * the chunk, valid only during the call, instead of a copy.
   */
  protected borrowStrings = false;

  // A captured string cut by a chunk boundary.
  protected capBuf: Buffer | null = null;
  private capFill = 0;
  private capKind = 0;
  private capSkipAfter = 0;
  private capULen = -1;
  private capTotal = 0;

  /** A whole captured string: `kind` is what the caller passed to beginCapture. */
  protected abstract onString(kind: number, value: Buffer, truncated: boolean): void;

  /** A length at buf[p]: returns it and sets np, or returns NEED. */
  protected readLen(buf: Buffer, p: number, end: number): number {
    if (p >= end) return NEED;
    const b = buf[p]!;
    const kind = b >> 6;
    if (kind === 0) {
      this.np = p + 1;
      return b & 0x3f;
    }
    if (kind === 1) {
      if (end - p < 2) return NEED;
      this.np = p + 2;
      return ((b & 0x3f) << 8) | buf[p + 1]!;
    }
    if (b === 0x80) {
      if (end - p < 5) return NEED;
      this.np = p + 5;
      return buf.readUInt32BE(p + 1);
    }
    if (b === 0x81) {
      if (end - p < 9) return NEED;
      // Exact up to 2^53; Redis also stores -1 (2^64-1) this way, e.g. a group's unknown entries-read.
      this.np = p + 9;
      return buf.readUInt32BE(p + 1) * 0x100000000 + buf.readUInt32BE(p + 5);
    }
    throw this.corrupt(p, `bad length encoding 0x${b.toString(16)}`);
  }

  /** A string header at buf[p]: sets sKind, sLen (payload bytes; compressed for LZF), sULen, sInt, np. */
  protected strHeader(buf: Buffer, p: number, end: number): boolean {
    if (p >= end) return false;
    const b = buf[p]!;
    if (b >> 6 !== 3) {
      const len = this.readLen(buf, p, end);
      if (len < 0) return false;
      if (len > Number.MAX_SAFE_INTEGER) throw this.corrupt(p, `an impossible string length ${len}`);
      this.sKind = STR_RAW;
      this.sLen = len;
      return true;
    }
    switch (b & 0x3f) {
      case 0:
        if (end - p < 2) return false;
        this.sInt = buf.readInt8(p + 1);
        this.np = p + 2;
        break;
      case 1:
        if (end - p < 3) return false;
        this.sInt = buf.readInt16LE(p + 1);
        this.np = p + 3;
        break;
      case 2:
        if (end - p < 5) return false;
        this.sInt = buf.readInt32LE(p + 1);
        this.np = p + 5;
        break;
      case 3: {
        const clen = this.readLen(buf, p + 1, end);
        if (clen < 0) return false;
        const ulen = this.readLen(buf, this.np, end);
        if (ulen < 0) return false;
        if (clen > Number.MAX_SAFE_INTEGER || ulen > Number.MAX_SAFE_INTEGER || clen > ulen) {
          throw this.corrupt(p, `an impossible compressed string (${clen} bytes for ${ulen})`);
        }
        this.sKind = STR_LZF;
        this.sLen = clen;
        this.sULen = ulen;
        return true;
      }
      default:
        throw this.corrupt(p, `unknown string encoding ${b & 0x3f}`);
    }
    this.sKind = STR_INT;
    return true;
  }

  /** Captures the string whose header was just read; its payload starts at buf[p]. */
  protected beginCapture(kind: number, buf: Buffer, p: number, end: number): number {
    if (this.sKind === STR_INT) {
      this.captured(kind, Buffer.from(String(this.sInt)), -1, 0, p);
      return p;
    }
    const total = this.sLen;
    const ulen = this.sKind === STR_LZF ? this.sULen : -1;
    const want = Math.min(total, ulen >= 0 ? LZF_CAPTURE_LIMIT : CAPTURE_LIMIT);
    if (end - p >= want) {
      if (this.borrowStrings && ulen < 0) {
        this.captured(kind, buf.subarray(p, p + want), ulen, total, p);
        return p + total;
      }
      const copy = Buffer.allocUnsafe(want);
      buf.copy(copy, 0, p, p + want);
      this.captured(kind, copy, ulen, total, p);
      return p + total;
    }
    const cap = Buffer.allocUnsafe(want);
    buf.copy(cap, 0, p, end);
    this.capBuf = cap;
    this.capFill = end - p;
    this.capKind = kind;
    this.capSkipAfter = total - want;
    this.capULen = ulen;
    this.capTotal = total;
    return end;
  }

  protected continueCapture(buf: Buffer, pos: number, end: number): number {
    const cap = this.capBuf!;
    const n = Math.min(end - pos, cap.length - this.capFill);
    buf.copy(cap, this.capFill, pos, pos + n);
    this.capFill += n;
    if (this.capFill < cap.length) return end;
    this.capBuf = null;
    this.captured(this.capKind, cap, this.capULen, this.capTotal, pos);
    return pos + n + this.capSkipAfter;
  }

  /** A whole captured string (raw, or LZF-compressed when ulen >= 0, `total` compressed bytes long). */
  private captured(kind: number, raw: Buffer, ulen: number, total: number, p: number): void {
    let value = raw;
    let truncated = ulen < 0 && total > CAPTURE_LIMIT;
    if (ulen >= 0) {
      const want = Math.min(ulen, CAPTURE_LIMIT);
      const out = lzfDecompress(raw, want);
      if (out === null || (raw.length === total && out.length !== want)) {
        throw this.corrupt(p, 'an invalid LZF-compressed string');
      }
      value = out;
      truncated = ulen > CAPTURE_LIMIT;
    }
    this.onString(kind, value, truncated);
  }

  protected corrupt(p: number, what: string, isCorrupt = true): Error {
    const at = this.base + p;
    return integrityError(
      isCorrupt ? `RDB is corrupt: ${what} at byte ${at}` : `RDB holds ${what} (at byte ${at})`,
      isCorrupt
        ? 'take a new snapshot; if it happens again, check the source with redis-check-rdb'
        : 'back up this Redis in key-level mode (redis.mode: keys)',
    );
  }
}
