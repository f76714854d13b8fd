import { open } from 'node:fs/promises';

/**
 * Counts the rows of every table in a `pg_dump --format=custom --compress=0` archive as it streams past: the
 * archive's table of contents names each TABLE DATA entry (schema, table, dump id), and each data block holds the
 * table's COPY text, where every row ends with one newline byte (a newline inside a value is escaped as `\n`, a
 * backslash as `\\`), followed by pg_dump's end marker `\.` and three newlines. So the rows of a table are the
 * newline bytes of its data block less the marker's three: exact, in the dump's own snapshot, and without a second
 * scan of the table on the server. A block that does not end with the marker makes the count fail (null).
 *
 * Contract:
 * - `push` every chunk of the archive in order, then `finish()`. Memory is bounded: only the header and table of
 *   contents are buffered (up to MAX_TOC bytes); data bytes are counted in place.
 * - Never throws. When the archive is not one this counter understands (another archive version, compressed data,
 *   a table of contents larger than MAX_TOC, a truncated or malformed stream), `finish()` returns null and the caller
 *   counts another way. A table whose TABLE DATA entry is absent is absent from the result.
 * - Supports archive versions 1.12 to 1.15 (pg_dump 11 to 16) with integer and offset sizes up to 8 bytes.
 */
const MAX_TOC = 64 * 1024 * 1024;
export const BLK_DATA = 1;
export const BLK_BLOBS = 3;
const NL = 10;
export const K_OFFSET_POS_NOT_SET = 1;
export const K_OFFSET_POS_SET = 2;
/** pg_dump's end of COPY data in an archive: `\.` and three newlines. */
const END = Buffer.from('\\.\n\n\n', 'latin1');

export class NeedMore extends Error {}
export class Unsupported extends Error {}

interface Toc {
  intSize: number;
  offSize: number;
  /** Every entry: its dump id, where its data-offset field starts (the flag byte) and the flag. */
  entries: { dumpId: number; offsetAt: number; flag: number }[];
  /** dump id -> "schema.table" of its TABLE DATA entry. */
  tables: Map<number, string>;
  /** Bytes of header and table of contents. */
  length: number;
}

/** Reads the archive header and table of contents from `b`; NeedMore when `b` ends first. */
export function parseToc(b: Buffer): Toc {
  let p = 0;
  const need = (n: number) => {
    if (p + n > b.length) throw new NeedMore();
  };
  const byte = () => {
    need(1);
    return b[p++]!;
  };
  need(5);
  if (b.toString('latin1', 0, 5) !== 'PGDMP') throw new Unsupported('not a custom-format archive');
  p = 5;
  const vmaj = byte();
  const vmin = byte();
  byte(); // revision
  const version = vmaj * 100 + vmin;
  if (vmaj !== 1 || vmin < 12 || vmin > 15) throw new Unsupported(`archive version ${vmaj}.${vmin}`);
  const intSize = byte();
  const offSize = byte();
  if (intSize < 1 || intSize > 8 || offSize < 1 || offSize > 8) throw new Unsupported('integer size');
  const format = byte();
  if (format !== 1) throw new Unsupported('not the custom format');
  const int = (): number => {
    need(1 + intSize);
    const sign = b[p++]!;
    let v = 0;
    for (let i = 0; i < intSize; i++) v += b[p + i]! * 2 ** (8 * i);
    p += intSize;
    return sign ? -v : v;
  };
  const str = (): string | null => {
    const n = int();
    if (n < 0) return null;
    need(n);
    const s = b.toString('utf8', p, p + n);
    p += n;
    return s;
  };
  // Compression: an int level up to 1.14, an algorithm byte from 1.15; either way only "none" is counted here.
  const compression = version >= 115 ? byte() : int();
  if (compression !== 0) throw new Unsupported('compressed data');
  for (let i = 0; i < 7; i++) int(); // creation time
  str(); // database name
  str(); // server version
  str(); // pg_dump version
  const count = int();
  if (count < 0) throw new Unsupported('table of contents');
  const tables = new Map<number, string>();
  const entries: Toc['entries'] = [];
  for (let e = 0; e < count; e++) {
    const dumpId = int();
    int(); // has a data dumper
    str(); // table oid
    str(); // oid
    const tag = str();
    const desc = str();
    int(); // section
    str(); // definition
    str(); // drop statement
    str(); // copy statement
    const namespace = str();
    str(); // tablespace
    if (version >= 114) str(); // table access method
    str(); // owner
    str(); // "false" (with oids)
    while (str() !== null); // dependencies, ended by a null string
    need(1 + offSize); // data offset: a flag byte and the offset
    entries.push({ dumpId, offsetAt: p, flag: b[p]! });
    p += 1 + offSize;
    if (desc === 'TABLE DATA' && tag !== null && namespace !== null) tables.set(dumpId, `${namespace}.${tag}`);
  }
  return { intSize, offSize, entries, tables, length: p };
}

type State = 'block' | 'dumpId' | 'chunkLen' | 'chunk' | 'blobOid' | 'blobChunkLen' | 'blobChunk';

export class ArchiveRowCounter {
  private head: Buffer[] = [];
  private headBytes = 0;
  private triedAt = 0;
  private toc: Toc | null = null;
  private failed = false;
  private state: State = 'block';
  /** Bytes of an integer being read across chunks. */
  private intBuf: number[] = [];
  private remaining = 0;
  private current: number | null = null;
  /** Inside a BLOBS block (large objects: skipped, they are not table rows). */
  private blobs = false;
  private readonly rows = new Map<number, number>();
  private readonly seen = new Set<number>();
  /** Newlines of the current data block so far. */
  private blockRows = 0;
  /** The last bytes of the current data block (up to END's length; tailLen of them are set). */
  private readonly tail = Buffer.alloc(END.length);
  private tailLen = 0;
  /** Archive position of the first byte of the chunk being read. */
  private base = 0;
  /** dump id -> archive position of its data block (what a seekable pg_dump writes into the table of contents). */
  private readonly blockAt = new Map<number, number>();

  push(chunk: Buffer): void {
    if (this.failed) return;
    try {
      if (!this.toc) {
        this.head.push(chunk);
        this.headBytes += chunk.length;
        // Parsed again only once the buffered head doubled: linear in the table of contents' size.
        if (this.headBytes < this.triedAt * 2) return;
        const all = Buffer.concat(this.head);
        this.head = [all];
        this.triedAt = all.length;
        try {
          this.toc = parseToc(all);
        } catch (err) {
          if (!(err instanceof NeedMore)) throw err;
          if (this.headBytes > MAX_TOC) throw new Unsupported('table of contents too large');
          return;
        }
        this.head = [];
        this.base = this.toc.length;
        this.data(all.subarray(this.toc.length));
        return;
      }
      this.data(chunk);
    } catch {
      this.fail();
    }
  }

  /** Rows per "schema.table", or null when the archive could not be followed to its end. */
  finish(): Map<string, number> | null {
    if (this.failed || !this.toc) return null;
    if (this.state !== 'block' || this.intBuf.length) return null;
    const out = new Map<string, number>();
    for (const [id, key] of this.toc.tables) if (this.seen.has(id)) out.set(key, (out.get(key) ?? 0) + (this.rows.get(id) ?? 0));
    return out;
  }

  /**
   * Where each table's data block starts in the archive, by dump id ("12" -> 1739): what pg_dump writes into the table
   * of contents when its output is seekable, and cannot when it is a pipe. Null when the archive was not followed.
   */
  dataOffsets(): Record<string, number> | null {
    if (this.finish() === null) return null;
    return Object.fromEntries([...this.blockAt].map(([id, at]) => [String(id), at]));
  }

  private fail(): void {
    this.failed = true;
    this.head = [];
  }

  /**
   * Reads one archive integer from b at p: the value, or null when b ends first (its bytes are kept for the next
   * chunk). `this.at` is the position after it.
   */
  private int(b: Buffer, p: number): number | null {
    const size = 1 + this.toc!.intSize;
    if (this.intBuf.length === 0 && p + size <= b.length) {
      let v = 0;
      for (let i = size - 1; i >= 1; i--) v = v * 256 + b[p + i]!;
      this.at = p + size;
      return b[p] ? -v : v;
    }
    while (this.intBuf.length < size && p < b.length) this.intBuf.push(b[p++]!);
    this.at = p;
    if (this.intBuf.length < size) return null;
    let v = 0;
    for (let i = size - 1; i >= 1; i--) v = v * 256 + this.intBuf[i]!;
    const value = this.intBuf[0] ? -v : v;
    this.intBuf = [];
    return value;
  }

  private at = 0;
  private blockStart = 0;

  /** Keeps the last END.length bytes of the block's data, b[from, to) being the newest (byte by byte: a row is short). */
  private keepTail(b: Buffer, from: number, to: number): void {
    const k = END.length;
    const t = this.tail;
    const n = to - from;
    if (n >= k) {
      for (let i = 0; i < k; i++) t[i] = b[to - k + i]!;
      this.tailLen = k;
      return;
    }
    const keep = Math.min(this.tailLen, k - n);
    for (let i = 0; i < keep; i++) t[i] = t[this.tailLen - keep + i]!;
    for (let i = 0; i < n; i++) t[keep + i] = b[from + i]!;
    this.tailLen = keep + n;
  }

  private data(b: Buffer): void {
    let p = 0;
    // The next newline at or after p in b (-1: none left in b), found once and reused across the row chunks.
    let nl = -2;
    while (p < b.length) {
      switch (this.state) {
        case 'block': {
          this.blockStart = this.base + p;
          const type = b[p++]!;
          if (type === BLK_DATA) this.state = 'dumpId';
          else if (type === BLK_BLOBS) {
            this.current = null;
            this.state = 'dumpId';
            this.blobs = true;
          } else throw new Unsupported(`block type ${type}`);
          break;
        }
        case 'dumpId': {
          const v = this.int(b, p);
          p = this.at;
          if (v === null) break;
          if (this.blobs) {
            this.blockAt.set(v, this.blockStart);
            this.state = 'blobOid';
          } else {
            this.current = v;
            this.seen.add(v);
            this.blockAt.set(v, this.blockStart);
            this.blockRows = 0;
            this.tailLen = 0;
            this.state = 'chunkLen';
          }
          break;
        }
        case 'chunkLen':
        case 'blobChunkLen': {
          const v = this.int(b, p);
          p = this.at;
          if (v === null) break;
          if (v < 0) throw new Unsupported('negative chunk length');
          const blob = this.state === 'blobChunkLen';
          if (v === 0 && !blob) {
            if (this.tailLen !== END.length || !this.tail.equals(END)) throw new Unsupported('a data block without the end marker');
            const id = this.current!;
            this.rows.set(id, (this.rows.get(id) ?? 0) + this.blockRows - 3);
            this.state = 'block';
          } else if (v === 0) this.state = 'blobOid';
          else {
            this.remaining = v;
            this.state = blob ? 'blobChunk' : 'chunk';
          }
          break;
        }
        case 'chunk': {
          const end = Math.min(b.length, p + this.remaining);
          if (nl !== -1 && nl < p) nl = b.indexOf(NL, p);
          while (nl !== -1 && nl < end) {
            this.blockRows++;
            nl = b.indexOf(NL, nl + 1);
          }
          this.keepTail(b, p, end);
          this.remaining -= end - p;
          p = end;
          if (this.remaining === 0) this.state = 'chunkLen';
          break;
        }
        case 'blobChunk': {
          const take = Math.min(b.length - p, this.remaining);
          this.remaining -= take;
          p += take;
          if (this.remaining === 0) this.state = 'blobChunkLen';
          break;
        }
        case 'blobOid': {
          const v = this.int(b, p);
          p = this.at;
          if (v === null) break;
          if (v === 0) {
            this.blobs = false;
            this.state = 'block';
          } else this.state = 'blobChunkLen';
          break;
        }
      }
    }
    this.base += b.length;
  }
}

/**
 * Writes data offsets (from `ArchiveRowCounter.dataOffsets()` at backup time) into the table of contents of a staged
 * archive that pg_dump streamed through a pipe, in place: the archive is then as if pg_dump had written it to a file,
 * and parallel pg_restore workers seek straight to their table instead of each reading through the archive.
 *
 * Changes nothing unless every entry without an offset gets one and every offset points at the block header of its
 * own entry (checked by reading it); an archive that already has offsets is left alone. Returns how many entries
 * it set. Reads only the table of contents and one header per entry.
 */
export async function writeDataOffsets(file: string, offsets: Record<string, number>): Promise<number> {
  const fh = await open(file, 'r+');
  try {
    const size = (await fh.stat()).size;
    let toc: Toc | null = null;
    for (let n = 64 * 1024; !toc; n *= 2) {
      const len = Math.min(n, size);
      const { buffer, bytesRead } = await fh.read({ buffer: Buffer.alloc(len), position: 0 });
      try {
        toc = parseToc(buffer.subarray(0, bytesRead));
      } catch (err) {
        if (!(err instanceof NeedMore) || len >= size || len >= MAX_TOC) return 0;
      }
    }
    const missing = toc.entries.filter((e) => e.flag === K_OFFSET_POS_NOT_SET);
    if (missing.length === 0) return 0;
    const writes: { at: number; bytes: Buffer }[] = [];
    for (const e of missing) {
      const at = offsets[String(e.dumpId)];
      if (at === undefined || !Number.isSafeInteger(at) || at < toc.length || at >= size) return 0;
      const head = Buffer.alloc(2 + toc.intSize);
      await fh.read({ buffer: head, position: at });
      let id = 0;
      for (let i = toc.intSize; i >= 1; i--) id = id * 256 + head[1 + i]!;
      if ((head[0] !== BLK_DATA && head[0] !== BLK_BLOBS) || head[1] !== 0 || id !== e.dumpId) return 0;
      const bytes = Buffer.alloc(1 + toc.offSize);
      bytes[0] = K_OFFSET_POS_SET;
      for (let i = 0, v = at; i < toc.offSize; i++, v = Math.floor(v / 256)) bytes[1 + i] = v % 256;
      writes.push({ at: e.offsetAt, bytes });
    }
    for (const w of writes) await fh.write(w.bytes, 0, w.bytes.length, w.at);
    return writes.length;
  } finally {
    await fh.close();
  }
}
