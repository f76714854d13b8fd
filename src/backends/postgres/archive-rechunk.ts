import { Transform, type TransformCallback } from 'node:stream';
import { BLK_BLOBS, BLK_DATA, K_OFFSET_POS_NOT_SET, K_OFFSET_POS_SET, NeedMore, parseToc, Unsupported } from './archive-rows.js';

/**
 * Merges the row-sized data chunks of a `pg_dump --format=custom --compress=0` archive into large ones, as the
 * archive streams into `pg_restore` (one job, reading stdin).
 *
 * Why: pg_dump without compression writes one length-prefixed chunk per row, and pg_restore sends each chunk to
 * the server as its own CopyData message; the server's per-message work then costs about 15% of a restore's CPU
 * (pgbench scale 70: 7,000,774 chunks). COPY's text format does not care where messages split, so a table's rows
 * merged into large chunks (one per input chunk, about 1 MiB) restore the same rows (pg_restore sizes its buffer
 * to each chunk).
 * bench/README.md has the measurement.
 *
 * What changes: only the data blocks (BLK_DATA) after the table of contents: their chunks are merged, their bytes
 * and order kept. The header, the table of contents and large-object blocks pass through unchanged, except that
 * the data offsets in the table of contents are marked "not set" (blocks move: the archive gets shorter by the chunk
 * headers dropped), as pg_dump leaves them when it writes to a pipe.
 *
 * Anything this does not understand (another archive version, compressed data, a table of contents over
 * MAX_HEAD bytes, an unknown block type between blocks) passes through unchanged from there on, so the result is
 * always an archive pg_restore reads as it would have read the input. A malformed chunk inside a data block (which
 * a stream proven intact by its SHA-256 does not have) fails the stream. Memory: the table of contents while it is
 * read, then a copy of each input chunk (plus a row the last one cut, up to 64 KiB).
 */
const MAX_HEAD = 64 * 1024 * 1024;

type State = 'head' | 'pass' | 'block' | 'rows' | 'bigChunk' | 'blobOid' | 'blobChunkLen' | 'blobChunk';

/** A chunk larger than this goes out as it is (merging it would only copy it). */
const BIG_CHUNK = 1024 * 1024;
/**
 * A chunk cut by the end of an input is carried into the next (copied again with it) up to this size; a larger one
 * goes out as it is, so that a row spanning many small inputs is not copied once per input.
 */
const CARRY_MAX = 64 * 1024;

export class ArchiveRechunker extends Transform {
  private state: State = 'head';
  private head: Buffer[] = [];
  private headBytes = 0;
  private triedAt = 0;
  private intSize = 0;
  /** Bytes of a unit (an integer, a block header, a row chunk) that the last input cut: read again with the next. */
  private carry: Buffer | null = null;
  /** Bytes still to pass of a large chunk (data or large object). */
  private remaining = 0;
  /** Data chunks read and written, for the restore's details. */
  chunksIn = 0;
  chunksOut = 0;
  /** Table-of-contents entries whose data offset was marked "not set" (their blocks moved). */
  offsetsCleared = 0;
  /** Why the archive passed through unchanged (from where it was not understood), or null. */
  passedThrough: string | null = null;
  /** Bytes sent so far. */
  private sent = 0;
  /** Dump id -> where its block starts in the output (for writeDataOffsets: parallel pg_restore workers seek). */
  private readonly blockAt = new Map<number, number>();

  /**
   * Where each block starts in what was sent, by dump id: for writeDataOffsets once the output is a file. Null
   * when the archive passed through unchanged, in part or whole (its own offsets, if any, are then still valid).
   */
  dataOffsets(): Record<string, number> | null {
    if (this.passedThrough !== null || this.state === 'head') return null;
    return Object.fromEntries([...this.blockAt].map(([id, at]) => [String(id), at]));
  }

  private send(b: Buffer): void {
    this.sent += b.length;
    this.push(b);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      if (this.state === 'head') this.readHead(chunk);
      else if (this.state === 'pass') this.send(chunk);
      else this.data(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.state === 'head') {
      // The last input may hold the rest of the table of contents (the head is parsed again only once doubled).
      try {
        this.readHead(Buffer.alloc(0), true);
      } catch (err) {
        done(err as Error);
        return;
      }
    }
    if (this.state === 'head') {
      // Shorter than its table of contents: passed on as it is (pg_restore says what is wrong with it).
      this.passThrough('the archive ends inside its table of contents');
      done();
      return;
    }
    if (this.state !== 'pass' && (this.state !== 'block' || this.carry !== null)) {
      done(new Error(`the archive ends inside a ${this.state === 'block' ? 'block header' : 'data block'}`));
      return;
    }
    done();
  }

  private passThrough(why: string): void {
    this.passedThrough = why;
    this.state = 'pass';
    for (const b of this.head) this.send(b);
    this.head = [];
  }

  private readHead(chunk: Buffer, last = false): void {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    // Parsed again only once the buffered head doubled (linear in the table of contents' size), and at the end.
    if (this.headBytes < this.triedAt * 2 && !last) return;
    const all = this.head.length === 1 ? this.head[0]! : Buffer.concat(this.head);
    this.head = [all];
    this.triedAt = all.length;
    let toc;
    try {
      toc = parseToc(all);
    } catch (err) {
      if (err instanceof NeedMore && this.headBytes <= MAX_HEAD && !last) return;
      const why = err instanceof NeedMore ? (last ? 'the archive ends inside its table of contents' : 'table of contents too large') : err instanceof Unsupported ? err.message : String(err);
      this.passThrough(why);
      return;
    }
    if (toc.intSize < 4) {
      // A merged chunk's length (up to about 1 MiB) needs 4 bytes; pg_dump writes 4 (sizeof(int)).
      this.passThrough(`integer size ${toc.intSize}`);
      return;
    }
    this.head = [];
    this.intSize = toc.intSize;
    this.state = 'block';
    // Data offsets (set when pg_dump wrote to a file) would point into the old layout: marked "not set", as in an
    // archive pg_dump streamed, so a reader that seeks looks for each block in order instead.
    const head = Buffer.from(all.subarray(0, toc.length));
    for (const e of toc.entries) {
      if (e.flag !== K_OFFSET_POS_SET) continue;
      head[e.offsetAt] = K_OFFSET_POS_NOT_SET;
      head.fill(0, e.offsetAt + 1, e.offsetAt + 1 + toc.offSize);
      this.offsetsCleared++;
    }
    this.send(head);
    if (all.length > toc.length) this.data(all.subarray(toc.length));
  }

  /** The archive integer at w[p] (a sign byte, then intSize bytes little-endian). */
  private int(w: Buffer, p: number): number {
    let v = 0;
    for (let i = this.intSize; i >= 1; i--) v = v * 256 + w[p + i]!;
    return w[p] ? -v : v;
  }

  /**
   * The data section, one input chunk at a time. The chunk is copied once into a private buffer `w` (after the
   * bytes the last one cut), and a data block's rows are compacted in place: a merged chunk's header takes the
   * place of its first row's header, each following row moves down over the headers dropped before it. Everything
   * else goes out as the subarray of `w` it already is. A unit cut by the end of `w` is carried to the next chunk.
   */
  private data(b: Buffer): void {
    const carry = this.carry;
    const w = Buffer.allocUnsafe((carry?.length ?? 0) + b.length);
    if (carry) carry.copy(w, 0);
    b.copy(w, carry?.length ?? 0);
    this.carry = null;
    const hdr = 1 + this.intSize;
    const len = w.length;
    let p = 0;
    /** Bytes [raw, p) go out unchanged (when no merged chunk is open). */
    let raw = 0;
    /** The open merged chunk: its header at w[run], its data in w[run + hdr, o). */
    let run = -1;
    let o = 0;
    /** Sends the open merged chunk (its header written in place); raw bytes then start at `at`. */
    const flushRun = (at: number) => {
      if (run < 0) return;
      const n = o - run - hdr;
      w[run] = 0;
      for (let i = 0, v = n; i < this.intSize; i++, v = Math.floor(v / 256)) w[run + 1 + i] = v % 256;
      this.send(w.subarray(run, o));
      this.chunksOut++;
      run = -1;
      raw = at;
    };
    const pushRaw = (end: number) => {
      if (end > raw) this.send(w.subarray(raw, end));
      raw = end;
    };
    let cut = -1;
    loop: while (p < len) {
      switch (this.state) {
        case 'rows': {
          for (;;) {
            if (p + hdr > len) {
              cut = p;
              break loop;
            }
            if (w[p] !== 0) throw new Error(`a data chunk of negative length at byte ${p} of an input chunk`);
            const v = this.int(w, p);
            if (v === 0) {
              // The block's end: the merged chunk goes out, then this terminator with what follows.
              flushRun(p);
              pushRaw(p);
              p += hdr;
              this.state = 'block';
              continue loop;
            }
            if (v > BIG_CHUNK || (v > CARRY_MAX && p + hdr + v > len)) {
              flushRun(p);
              pushRaw(p);
              p += hdr;
              this.remaining = v;
              this.chunksIn++;
              this.chunksOut++;
              this.state = 'bigChunk';
              continue loop;
            }
            if (p + hdr + v > len) {
              cut = p;
              break loop;
            }
            if (run < 0) {
              pushRaw(p);
              run = p;
              o = p + hdr;
            } else w.copyWithin(o, p + hdr, p + hdr + v);
            o += v;
            p += hdr + v;
            this.chunksIn++;
          }
        }
        case 'bigChunk':
        case 'blobChunk': {
          const take = Math.min(this.remaining, len - p);
          p += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = this.state === 'bigChunk' ? 'rows' : 'blobChunkLen';
          break;
        }
        case 'block': {
          if (p + 1 + hdr > len) {
            cut = p;
            break loop;
          }
          const type = w[p]!;
          if (type !== BLK_DATA && type !== BLK_BLOBS) {
            // Between blocks nothing is held: the rest goes out as it is.
            this.passedThrough = `block type ${type}`;
            this.state = 'pass';
            p = len;
            break loop;
          }
          // Nothing is held between blocks (no merged chunk open): w[p] goes out at sent + (p - raw).
          this.blockAt.set(this.int(w, p + 1), this.sent + (p - raw));
          p += 1 + hdr; // the type and the dump id, unchanged
          this.state = type === BLK_DATA ? 'rows' : 'blobOid';
          break;
        }
        case 'blobOid':
        case 'blobChunkLen': {
          if (p + hdr > len) {
            cut = p;
            break loop;
          }
          const v = this.int(w, p);
          p += hdr;
          if (this.state === 'blobOid') this.state = v === 0 ? 'block' : 'blobChunkLen';
          else if (v < 0) throw new Error('a large-object chunk of negative length');
          else if (v === 0) this.state = 'blobOid';
          else {
            this.remaining = v;
            this.state = 'blobChunk';
          }
          break;
        }
        default:
          throw new Error(`ArchiveRechunker: state ${this.state} in the data section`);
      }
    }
    flushRun(cut >= 0 ? cut : len);
    if (cut >= 0) {
      pushRaw(cut);
      this.carry = w.subarray(cut);
    } else pushRaw(len);
  }
}
