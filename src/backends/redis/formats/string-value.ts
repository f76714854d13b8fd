import { Crc64 } from './crc64.js';
import { lzfDecodeInto } from './lzf.js';
import { RDB_TYPE } from './rdb-constants.js';

/**
 * The value of a string key from its DUMP payload (type byte, RDB string encoding, then the 10-byte
 * version and CRC trailer): raw, integer-encoded or LZF-compressed. Null when the payload holds another
 * type, or a string longer than `maxBytes` (not worth decoding), or an encoding that does not parse.
 * The payload's checksum is not checked here: it was checked when the payload was cut or read.
 */
export function stringValueOf(payload: Buffer, maxBytes: number): Buffer | null {
  if (payload.length < 12 || payload[0] !== RDB_TYPE.STRING) return null;
  const end = payload.length - 10;
  const n = rdbStringLength(payload, 1, end);
  if (n < 0 || n > maxBytes) return null;
  // A raw string is the encoding's last n bytes: no copy.
  if (payload[1]! >> 6 !== 3) return payload.subarray(end - n, end);
  const out = Buffer.allocUnsafe(n);
  return writeRdbString(payload, 1, end, out, 0) === n ? out : null;
}

/**
 * The length of the string an RDB string encoding spanning exactly buf[from, to) decodes to (raw, integer-encoded or
 * LZF-compressed, as the value of an RDB key record of type 0 or a DUMP payload's is), or -1 when those bytes are not
 * exactly one such encoding. Integers are written in decimal, as Redis's GET answers them.
 */
export function rdbStringLength(buf: Buffer, from: number, to: number): number {
  if (from >= to) return -1;
  const b = buf[from]!;
  if (b >> 6 !== 3) {
    const h = lengthAt(buf, from, to);
    return h !== null && h.next + h.len === to ? h.len : -1;
  }
  switch (b & 0x3f) {
    case 0:
      return from + 2 === to ? decimalLength(buf.readInt8(from + 1)) : -1;
    case 1:
      return from + 3 === to ? decimalLength(buf.readInt16LE(from + 1)) : -1;
    case 2:
      return from + 5 === to ? decimalLength(buf.readInt32LE(from + 1)) : -1;
    case 3: {
      const c = lengthAt(buf, from + 1, to);
      const u = c === null ? null : lengthAt(buf, c.next, to);
      // LZF makes at most 264 bytes of a 3-byte token: a longer length is damage (and no room is made for it).
      return u !== null && u.next + c!.len === to && u.len <= c!.len * LZF_MAX_RATIO ? u.len : -1;
    }
    default:
      return -1;
  }
}

/**
 * Writes the string that buf[from, to) encodes (rdbStringLength's bytes, room made by the caller) at dst[at]; returns
 * the position after it, or -1 when the encoding does not decode to the length rdbStringLength gave.
 */
export function writeRdbString(buf: Buffer, from: number, to: number, dst: Buffer, at: number): number {
  const b = buf[from]!;
  if (b >> 6 !== 3) {
    const h = lengthAt(buf, from, to)!;
    return at + buf.copy(dst, at, h.next, to);
  }
  switch (b & 0x3f) {
    case 0:
      return at + dst.write(String(buf.readInt8(from + 1)), at, 'latin1');
    case 1:
      return at + dst.write(String(buf.readInt16LE(from + 1)), at, 'latin1');
    case 2:
      return at + dst.write(String(buf.readInt32LE(from + 1)), at, 'latin1');
    default: {
      const c = lengthAt(buf, from + 1, to)!;
      const u = lengthAt(buf, c.next, to)!;
      return lzfDecodeInto(buf, u.next, to, dst, at, u.len);
    }
  }
}

/**
 * A string key's DUMP payload as a value to write with SET (CommandEncoder.set): its bytes decoded into the command. Its
 * CRC-64 is checked first, as RESTORE would have: a payload whose trailer does not match has stringLength -1, so the
 * caller sends it by RESTORE and the target refuses it by name.
 */
export class PayloadString {
  readonly stringLength: number;
  constructor(private readonly payload: Buffer) {
    this.stringLength = isWholeStringPayload(payload) ? rdbStringLength(payload, 1, payload.length - 10) : -1;
  }

  writeString(dst: Buffer, at: number): number {
    return writeRdbString(this.payload, 1, this.payload.length - 10, dst, at);
  }
}

/** One CRC-64 state for every payload checked (each whole in one call). */
const PAYLOAD_CRC = new Crc64();

/** A DUMP payload of a string whose CRC-64 trailer matches its bytes. */
function isWholeStringPayload(p: Buffer): boolean {
  if (p.length < 12 || p[0] !== RDB_TYPE.STRING) return false;
  PAYLOAD_CRC.reset().updateRange(p, 0, p.length - 8);
  return PAYLOAD_CRC.equalsLE(p.subarray(p.length - 8));
}

/** LZF writes at most 264 bytes for a 3-byte token. */
const LZF_MAX_RATIO = 88;

const decimalLength = (n: number): number => String(n).length;

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
