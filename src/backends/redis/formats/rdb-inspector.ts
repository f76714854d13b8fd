import { Transform, type TransformCallback } from 'node:stream';
import { integrityError } from '../../../core/errors.js';
import { Crc64, hexLE64 } from './crc64.js';
import { RDB_MAX_VERSION } from './rdb-constants.js';
import { type KeyListener, RdbParser, type RecordBoundsListener } from './rdb-parser.js';

export { CAPTURE_LIMIT } from './rdb-parser.js';
export type { KeyListener, RecordBoundsListener } from './rdb-parser.js';

export interface RdbFacts {
  rdbVersion: number;
  /** AUX fields as written (redis-ver, redis-bits, ctime, used-mem, aof-base, repl-id, ...); integers stringified. */
  aux: Record<string, string>;
  /** By database index. resize* are the RESIZEDB hints the writer recorded, when present. */
  databases: Record<string, { keys: number; expires: number; resizeKeys?: number; resizeExpires?: number }>;
  totalKeys: number;
  /**
   * 'disabled': the file carries a zero checksum (`rdbchecksum no`) or predates checksums (version < 5);
   * 'not-computed': the inspector was told not to (a second read of a file whose checksum was checked).
   */
  checksum: 'ok' | 'disabled' | 'not-computed';
  bytes: number;
}

export interface RdbInspectorOptions {
  /**
   * Called for every key, in file order. `key` is a copy the listener may keep (a view with borrowKeys); a key longer than
   * CAPTURE_LIMIT (64 KiB) is cut to that length and `truncated` is true. `type` is the RDB value type
   * (see rdb-constants.ts); expiresAtMs is absolute Unix milliseconds. A throw fails the stream.
   */
  onKey?: KeyListener;
  /**
   * True: onKey's `key` is a view into the stream's chunk where the key lies whole in it, valid only during the
   * call (no copy per key); for listeners that only read the key (count it, classify it) and keep nothing.
   */
  borrowKeys?: boolean;
  /** Called with each key record's file offsets (type byte .. end of value); see RecordBoundsListener. */
  onRecordBounds?: RecordBoundsListener;
  /**
   * Bytes after the RDB's end (EOF marker and checksum), in order. Without it they are an error; with it
   * they are the caller's: a Redis 6.2 single-file AOF is an RDB preamble followed by commands.
   */
  onTail?: (chunk: Buffer) => void;
  /**
   * False: the CRC-64 is not computed (structure, EOF marker and trailer length are still checked). Only for
   * a second read of a private file whose checksum an earlier read checked.
   */
  checksum?: boolean;
}

const HEADER_LEN = 9;
const TRAILER_LEN = 8;
const MAGIC = Buffer.from('REDIS');

/**
 * Passes an RDB stream through unchanged while checking it: header, structure, EOF marker, CRC-64 trailer,
 * nothing after it. Memory stays bounded whatever the value sizes. The stream fails with an integrityError
 * as soon as the structure is wrong, or at the end when the file is incomplete or its checksum differs.
 * facts() is available once the stream has finished.
 */
export class RdbInspector extends Transform {
  private readonly parser: RdbParser;
  private readonly crc = new Crc64();
  private readonly header = Buffer.alloc(HEADER_LEN);
  private headerFill = 0;
  private version = 0;
  private readonly trailer = Buffer.alloc(TRAILER_LEN);
  private trailerFill = 0;
  private extra = 0;
  private bytes = 0;
  /** Bytes handed to onTail. */
  tailBytes = 0;
  private readonly onTail?: (chunk: Buffer) => void;
  private result: RdbFacts | null = null;
  private readonly computeCrc: boolean;

  constructor(opts: RdbInspectorOptions = {}) {
    super();
    this.computeCrc = opts.checksum !== false;
    this.parser = new RdbParser(opts.onKey, opts.onRecordBounds, opts.borrowKeys === true);
    this.onTail = opts.onTail;
  }

  /** The checked facts; throws if the stream has not finished successfully. */
  facts(): RdbFacts {
    if (this.result === null) throw new Error('RdbInspector.facts() called before the stream finished');
    return this.result;
  }

  /**
   * The same checks without the stream: feed every chunk in order to update() (it throws on the first
   * structural problem), then complete() returns the facts or throws when the file is incomplete or damaged.
   * For callers that already hold the bytes in a loop (e.g. an AOF base file inside a tar being written).
   */
  update(chunk: Buffer): void {
    this.inspect(chunk);
  }

  complete(): RdbFacts {
    this.result = this.finish();
    return this.result;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.inspect(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.result = this.finish();
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb();
  }

  private inspect(chunk: Buffer): void {
    const offset = this.bytes;
    this.bytes += chunk.length;
    let start = 0;
    if (this.headerFill < HEADER_LEN) {
      start = Math.min(HEADER_LEN - this.headerFill, chunk.length);
      chunk.copy(this.header, this.headerFill, 0, start);
      this.headerFill += start;
      this.checkHeader();
      if (this.headerFill < HEADER_LEN) {
        if (this.computeCrc) this.crc.update(chunk);
        return;
      }
    }
    // The checksum covers every byte up to and including the EOF opcode; what follows is the trailer.
    let trailerStart = 0;
    if (!this.parser.done) {
      const eof = this.parser.feed(chunk, start, offset);
      trailerStart = eof >= 0 ? eof : chunk.length;
      if (this.computeCrc) this.crc.update(trailerStart === chunk.length ? chunk : chunk.subarray(0, trailerStart));
    }
    if (trailerStart < chunk.length) {
      const want = this.version >= 5 ? TRAILER_LEN - this.trailerFill : 0;
      const n = Math.min(want, chunk.length - trailerStart);
      chunk.copy(this.trailer, this.trailerFill, trailerStart, trailerStart + n);
      this.trailerFill += n;
      const rest = chunk.length - trailerStart - n;
      if (rest > 0 && this.onTail && this.trailerFill === (this.version >= 5 ? TRAILER_LEN : 0)) {
        this.tailBytes += rest;
        this.onTail(chunk.subarray(trailerStart + n));
      } else {
        this.extra += rest;
      }
    }
  }

  /** Checks as much of the header as has arrived, so that garbage fails on its first bytes. */
  private checkHeader(): void {
    const n = Math.min(this.headerFill, MAGIC.length);
    if (this.header.compare(MAGIC, 0, n, 0, n) !== 0) {
      throw integrityError(`not an RDB file: header ${describe(this.header.subarray(0, this.headerFill))}, expected "REDIS" and a 4-digit version`);
    }
    if (this.headerFill < HEADER_LEN) return;
    const digits = this.header.toString('latin1', 5, 9);
    if (!/^\d{4}$/.test(digits)) {
      throw integrityError(`not an RDB file: header ${describe(this.header)}, expected "REDIS" and a 4-digit version`);
    }
    this.version = Number(digits);
    if (this.version > RDB_MAX_VERSION) {
      throw integrityError(
        `RDB version ${this.version} is newer than this tool understands (it reads versions up to ${RDB_MAX_VERSION}, as written by Redis 7.4)`,
        'upgrade tykdr, or back up this Redis in key-level mode (redis.mode: keys)',
      );
    }
    if (this.version < 1) throw integrityError(`not an RDB file: header ${describe(this.header)} names version 0`);
  }

  private finish(): RdbFacts {
    const cutShort = 'take a new snapshot; check that the connection to Redis or the copy of the file did not stop early';
    if (this.headerFill < HEADER_LEN) {
      if (this.bytes === 0) throw integrityError('RDB is empty (0 bytes): the dump was cut short', cutShort);
      throw integrityError(`RDB ends after ${this.bytes} bytes, inside its 9-byte header: the dump was cut short`, cutShort);
    }
    if (!this.parser.done) {
      throw integrityError(`RDB ends after ${this.bytes} bytes, before the EOF marker: the dump was cut short`, cutShort);
    }
    let checksum: RdbFacts['checksum'] = 'disabled';
    if (this.version >= 5) {
      if (this.trailerFill < TRAILER_LEN) {
        throw integrityError(`RDB ends after ${this.bytes} bytes, inside the 8-byte checksum after the EOF marker: the dump was cut short`, cutShort);
      }
      const zero = this.trailer.every((b) => b === 0);
      if (!zero && !this.computeCrc) {
        checksum = 'not-computed';
      } else if (!zero) {
        if (!this.crc.equalsLE(this.trailer)) {
          throw integrityError(
            `RDB checksum mismatch: computed ${this.crc.digestHex()}, file says ${hexLE64(this.trailer)}`,
            'the dump was damaged in transit or in storage: take a new snapshot',
          );
        }
        checksum = 'ok';
      }
    }
    if (this.extra > 0) {
      throw integrityError(`RDB has ${this.extra} unexpected bytes after its end (EOF marker and checksum)`, cutShort);
    }
    const databases: RdbFacts['databases'] = {};
    for (const [db, c] of [...this.parser.databases].sort((a, b) => a[0] - b[0])) databases[String(db)] = { ...c };
    return {
      rdbVersion: this.version,
      aux: { ...this.parser.aux },
      databases,
      totalKeys: this.parser.totalKeys,
      checksum,
      bytes: this.bytes,
    };
  }
}

/** The header bytes for a message: printable ASCII as is, anything else as \xNN. */
function describe(b: Buffer): string {
  let s = '';
  for (const byte of b) s += byte >= 0x20 && byte < 0x7f && byte !== 0x22 ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  return `"${s}"`;
}
