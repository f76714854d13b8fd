import { lzfDecompress } from './lzf.js';
import { RDB_TYPE } from './rdb-constants.js';

/**
 * The value of a string key from its DUMP payload (type byte, RDB string encoding, then the 10-byte
 * version and CRC trailer): raw, integer-encoded or LZF-compressed. Null when the payload holds another
 * type, or a string longer than `maxBytes` (not worth decoding), or an encoding that does not parse.
 * The payload's checksum is not checked here: it was checked when the payload was cut or read.
 */
export function stringValueOf(payload: Buffer, maxBytes: number): Buffer | null {
  if (payload.length < 2 || payload[0] !== RDB_TYPE.STRING) return null;
  const end = payload.length - 10;
  const p = 1;
  const b = payload[p]!;
  if (b >> 6 !== 3) {
    const h = lengthAt(payload, p, end);
    if (h === null || h.len > maxBytes || h.next + h.len > end) return null;
    return payload.subarray(h.next, h.next + h.len);
  }
  switch (b & 0x3f) {
    case 0:
      return p + 2 <= end ? Buffer.from(String(payload.readInt8(p + 1))) : null;
    case 1:
      return p + 3 <= end ? Buffer.from(String(payload.readInt16LE(p + 1))) : null;
    case 2:
      return p + 5 <= end ? Buffer.from(String(payload.readInt32LE(p + 1))) : null;
    case 3: {
      const c = lengthAt(payload, p + 1, end);
      if (c === null) return null;
      const u = lengthAt(payload, c.next, end);
      if (u === null || u.len > maxBytes || u.next + c.len > end) return null;
      const out = lzfDecompress(payload.subarray(u.next, u.next + c.len), u.len);
      return out !== null && out.length === u.len ? out : null;
    }
    default:
      return null;
  }
}

function lengthAt(buf: Buffer, q: number, end: number): { len: number; next: number } | null {
  if (q >= end) return null;
  const b = buf[q]!;
  switch (b >> 6) {
    case 0:
      return { len: b & 0x3f, next: q + 1 };
    case 1:
      return q + 2 <= end ? { len: ((b & 0x3f) << 8) | buf[q + 1]!, next: q + 2 } : null;
    default:
      if (b === 0x80 && q + 5 <= end) return { len: buf.readUInt32BE(q + 1), next: q + 5 };
      if (b === 0x81 && q + 9 <= end) return { len: buf.readUInt32BE(q + 1) * 0x100000000 + buf.readUInt32BE(q + 5), next: q + 9 };
      return null;
  }
}
