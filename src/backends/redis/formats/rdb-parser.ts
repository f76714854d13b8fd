import {
  AUX_LAYOUT, FUNCTION2_LAYOUT, FUNCTION_PRE_GA_LAYOUT, KEY_LAYOUT, type Layout, MODULE_AUX_LAYOUT, MODULE_OPERANDS,
  OPCODE, OP_AUX_KEY, OP_AUX_VAL, OP_DBL, OP_FIX, OP_KEY, OP_LEN, OP_LOOP, OP_MODULE, OP_STR, RDB_TYPE,
  SLOT_INFO_LAYOUT, VALUE_LAYOUTS,
} from './rdb-constants.js';
import { CAPTURE_LIMIT, NEED, RdbReader, STR_INT, STR_RAW } from './rdb-reader.js';

export { CAPTURE_LIMIT } from './rdb-reader.js';

/** Longest contiguous run one step needs: a string header with an LZF marker and two 9-byte lengths. */
const WINDOW = 32;
const MAX_DEPTH = 32;

export type KeyListener = (db: number, key: Buffer, type: number, expiresAtMs: number | null, truncated: boolean) => void;
/**
 * Where each key record lies, as offsets on the scale of feed()'s chunkBase (file offsets when the caller
 * passes them): `start` is its value-type byte, `end` is just past its value. Called once per key, after the
 * KeyListener call for that key, as soon as the parser steps past the value's last byte, with the key's database,
 * RDB value type and expiry (as the KeyListener had them).
 */
export type RecordBoundsListener = (start: number, end: number, db: number, type: number, expiresAtMs: number | null) => void;

export interface DbCounts {
  keys: number;
  expires: number;
  resizeKeys?: number;
  resizeExpires?: number;
}

/**
 * Incremental RDB body parser (everything after the 9-byte header, up to and including the EOF opcode).
 * Contract: feed() takes chunks of any size in order; it holds at most WINDOW bytes of a step cut by a chunk
 * boundary and one captured string, never a value. Big strings are skipped by count as they stream past.
 *
 * The position inside a value is a stack of frames over the layouts in rdb-constants.ts. A step reads one
 * item (a header, a length, a fixed run) all-or-nothing: when the chunk ends inside it, nothing changes and
 * its bytes are carried to the next chunk. Skips may run past the chunk end; the excess carries as `skip`.
 */
export class RdbParser extends RdbReader {
  readonly databases = new Map<number, DbCounts>();
  readonly aux: Record<string, string> = {};
  totalKeys = 0;
  /** True once the EOF opcode was read. */
  done = false;

  private skip = 0;
  private carry: Buffer | null = null;

  private sp = -1;
  private readonly layouts: Layout[] = [];
  private readonly pcs = new Int32Array(MAX_DEPTH);
  private readonly starts = new Int32Array(MAX_DEPTH);
  private readonly ends = new Int32Array(MAX_DEPTH);
  private readonly remaining = new Float64Array(MAX_DEPTH);

  private db = 0;
  /** databases[db], cached. */
  private dbCounts: DbCounts | null = null;
  private pendingExpire: number | null = null;
  private keyType = 0;
  private keyExpire: number | null = null;
  private auxKey = '';
  /** Offset of the open key record's type byte, while its value is being parsed; -1 otherwise. */
  private recordStart = -1;

  constructor(
    private readonly onKey?: KeyListener,
    private readonly onRecordBounds?: RecordBoundsListener,
    /** True: onKey's `key` may be a view into the chunk, valid only during the call (see RdbInspectorOptions.borrowKeys). */
    borrowKeys = false,
  ) {
    super();
    this.borrowStrings = borrowKeys;
  }

  /**
   * Parses chunk[start..]; chunkBase is the file offset of chunk[0] (for messages). Returns the chunk offset
   * just past the EOF opcode when it is in this chunk, else -1. Throws integrityError on malformed data.
   */
  feed(chunk: Buffer, start: number, chunkBase: number): number {
    let pos = start + this.skip;
    this.skip = 0;
    const c = this.carry;
    if (c !== null) {
      this.carry = null;
      const take = Math.min(chunk.length - pos, WINDOW);
      const tmp = Buffer.concat([c, chunk.subarray(pos, pos + take)]);
      this.base = chunkBase + pos - c.length;
      const next = this.step(tmp, 0, tmp.length);
      if (next < 0) {
        this.carry = tmp;
        return -1;
      }
      pos += next - c.length;
      if (this.done) return pos;
    }
    this.base = chunkBase;
    return this.run(chunk, pos);
  }

  private run(buf: Buffer, pos: number): number {
    const end = buf.length;
    for (;;) {
      if (pos >= end) {
        this.skip = pos - end;
        return -1;
      }
      if (this.capBuf !== null) {
        pos = this.continueCapture(buf, pos, end);
        continue;
      }
      const next = this.step(buf, pos, end);
      if (next < 0) {
        this.carry = Buffer.from(buf.subarray(pos, end));
        return -1;
      }
      pos = next;
      if (this.done) return pos;
    }
  }

  /** One item at buf[p]. Returns the position after it (may pass `end` for skipped bytes) or NEED. */
  private step(buf: Buffer, p: number, end: number): number {
    let sp = this.sp;
    while (sp >= 0 && this.pcs[sp]! >= this.ends[sp]!) {
      if (--this.remaining[sp]! > 0) this.pcs[sp] = this.starts[sp]!;
      else sp--;
    }
    this.sp = sp;
    if (sp < 0) {
      if (this.recordStart >= 0) {
        const start = this.recordStart;
        this.recordStart = -1;
        this.onRecordBounds?.(start, this.base + p, this.db, this.keyType, this.keyExpire);
      }
      return this.record(buf, p, end);
    }
    const layout = this.layouts[sp]!;
    const pc = this.pcs[sp]!;
    switch (layout[pc]) {
      case OP_STR:
        if (!this.strHeader(buf, p, end)) return NEED;
        this.pcs[sp] = pc + 1;
        return this.np + (this.sKind === STR_INT ? 0 : this.sLen);
      case OP_LEN:
        if (this.readLen(buf, p, end) < 0) return NEED;
        this.pcs[sp] = pc + 1;
        return this.np;
      case OP_FIX:
        this.pcs[sp] = pc + 2;
        return p + layout[pc + 1]!;
      case OP_DBL: {
        const b = buf[p]!;
        this.pcs[sp] = pc + 1;
        return b >= 253 ? p + 1 : p + 1 + b;
      }
      case OP_LOOP: {
        const n = this.readLen(buf, p, end);
        if (n < 0) return NEED;
        if (n > Number.MAX_SAFE_INTEGER) throw this.corrupt(p, `an impossible element count ${n}`);
        const bodyStart = pc + 2;
        const bodyEnd = bodyStart + layout[pc + 1]!;
        this.pcs[sp] = bodyEnd;
        if (n > 0) this.push(layout, bodyStart, bodyEnd, n);
        return this.np;
      }
      case OP_MODULE: {
        const op = this.readLen(buf, p, end);
        if (op < 0) return NEED;
        if (op === 0) {
          this.pcs[sp] = pc + 1;
        } else {
          const operand = MODULE_OPERANDS[op];
          if (operand === undefined) throw this.corrupt(p, `unknown module value opcode ${op}`);
          this.push(operand, 0, operand.length, 1);
        }
        return this.np;
      }
      case OP_KEY:
      case OP_AUX_KEY:
      case OP_AUX_VAL:
        if (!this.strHeader(buf, p, end)) return NEED;
        this.pcs[sp] = pc + 1;
        return this.beginCapture(layout[pc]!, buf, this.np, end);
      default:
        throw new Error(`RdbParser: bad layout op ${layout[pc]}`);
    }
  }

  /** A top-level record: an opcode, or the value type that starts a key. */
  private record(buf: Buffer, p: number, end: number): number {
    const op = buf[p]!;
    switch (op) {
      case OPCODE.EOF:
        this.done = true;
        return p + 1;
      case OPCODE.SELECTDB: {
        const db = this.readLen(buf, p + 1, end);
        if (db < 0) return NEED;
        this.db = db;
        this.dbCounts = this.counts(db);
        return this.np;
      }
      case OPCODE.RESIZEDB: {
        const keys = this.readLen(buf, p + 1, end);
        if (keys < 0) return NEED;
        const expires = this.readLen(buf, this.np, end);
        if (expires < 0) return NEED;
        const c = this.counts(this.db);
        c.resizeKeys = keys;
        c.resizeExpires = expires;
        return this.np;
      }
      case OPCODE.EXPIRETIME_MS:
        if (end - p < 9) return NEED;
        this.pendingExpire = buf.readInt32LE(p + 5) * 0x100000000 + buf.readUInt32LE(p + 1);
        return p + 9;
      case OPCODE.EXPIRETIME:
        if (end - p < 5) return NEED;
        this.pendingExpire = buf.readInt32LE(p + 1) * 1000;
        return p + 5;
      case OPCODE.FREQ:
        return p + 2;
      case OPCODE.IDLE:
        if (this.readLen(buf, p + 1, end) < 0) return NEED;
        return this.np;
      case OPCODE.AUX:
        return this.enter(AUX_LAYOUT, p);
      case OPCODE.MODULE_AUX:
        return this.enter(MODULE_AUX_LAYOUT, p);
      case OPCODE.FUNCTION2:
        return this.enter(FUNCTION2_LAYOUT, p);
      case OPCODE.FUNCTION_PRE_GA:
        return this.enter(FUNCTION_PRE_GA_LAYOUT, p);
      case OPCODE.SLOT_INFO:
        return this.enter(SLOT_INFO_LAYOUT, p);
      default: {
        const layout = VALUE_LAYOUTS[op];
        if (layout === undefined) {
          if (op === RDB_TYPE.MODULE_PRE_GA) {
            throw this.corrupt(p, 'a value in the pre-release module format (type 6, Redis 4.0 release candidates): module values not supported', false);
          }
          throw this.corrupt(p, `unknown record type ${op} (0x${op.toString(16)})`);
        }
        this.keyType = op;
        if (this.onRecordBounds !== undefined) this.recordStart = this.base + p;
        this.keyExpire = this.pendingExpire;
        this.pendingExpire = null;
        if (op === RDB_TYPE.STRING) {
          // Its bounds (recordStart, set above) are reported by the next step, as after the frames.
          const next = this.wholeStringRecord(buf, p + 1, end);
          if (next >= 0) return next;
        }
        this.push(layout, 0, layout.length, 1);
        this.push(KEY_LAYOUT, 0, 1, 1);
        return p + 1;
      }
    }
  }

  /**
   * A string key-value record read in one go (most of a Tyk keyspace): when the key (raw, not LZF, at most
   * CAPTURE_LIMIT bytes) and the value's header lie whole in the buffer, the key is reported and the position after
   * the value returned (it may pass `end`: the value is skipped by count). Otherwise -1 and nothing changed: the
   * record goes through the layout frames as any other, which handle every cut. With a RecordBoundsListener the
   * record's end is reported by the next step, as when the frames end.
   */
  private wholeStringRecord(buf: Buffer, p: number, end: number): number {
    if (!this.strHeader(buf, p, end) || this.sKind !== STR_RAW) return -1;
    const keyStart = this.np;
    const keyEnd = keyStart + this.sLen;
    if (this.sLen > CAPTURE_LIMIT || keyEnd > end || !this.strHeader(buf, keyEnd, end)) return -1;
    // (sKind as read by the second strHeader: TypeScript still narrows it to the first one's STR_RAW.)
    const next = this.np + ((this.sKind as number) === STR_INT ? 0 : this.sLen);
    if (this.onKey === undefined) {
      // Nobody reads the key (a RecordBoundsListener cuts it from the record): it is only counted.
      this.countKey();
      return next;
    }
    const key = this.borrowStrings ? buf.subarray(keyStart, keyEnd) : Buffer.from(buf.subarray(keyStart, keyEnd));
    this.onString(OP_KEY, key, false);
    return next;
  }

  private enter(layout: Layout, p: number): number {
    this.push(layout, 0, layout.length, 1);
    return p + 1;
  }

  private push(layout: Layout, start: number, end: number, times: number): void {
    const sp = ++this.sp;
    if (sp >= MAX_DEPTH) throw new Error('RdbParser: layout nesting too deep');
    this.layouts[sp] = layout;
    this.pcs[sp] = start;
    this.starts[sp] = start;
    this.ends[sp] = end;
    this.remaining[sp] = times;
  }

  protected onString(kind: number, value: Buffer, truncated: boolean): void {
    if (kind === OP_KEY) {
      this.countKey();
      this.onKey?.(this.db, value, this.keyType, this.keyExpire, truncated);
    } else if (kind === OP_AUX_KEY) {
      this.auxKey = value.toString('utf8');
    } else {
      this.aux[this.auxKey] = value.toString('utf8');
    }
  }

  private countKey(): void {
    const c = this.dbCounts ?? this.counts(this.db);
    c.keys++;
    if (this.keyExpire !== null) c.expires++;
    this.totalKeys++;
  }

  private counts(db: number): DbCounts {
    let c = this.databases.get(db);
    if (c === undefined) {
      c = { keys: 0, expires: 0 };
      this.databases.set(db, c);
    }
    return c;
  }

}
