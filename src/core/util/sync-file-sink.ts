import { closeSync, openSync, writeSync, writevSync } from 'node:fs';
import { Writable } from 'node:stream';

/**
 * A file written with synchronous writes on the calling thread, for a pipeline whose other work already keeps the
 * CPUs busy (a restore's stage: age, SHA-256 and the RDB reader here, zstd on a worker). fs.createWriteStream hands
 * every chunk to a thread-pool thread and waits for it: on two CPUs that third thread competes with the other two,
 * and each hand-off is a chance to be descheduled. Chunks buffered before the file is open go out together, in
 * writes of at most WRITE_MAX bytes (below).
 * Measured on the stage of a 690 MB RDB (bench/restore-stage.ts --runs 8, against the build before, twice): median
 * wall 1.06 against 1.12 s and 1.35 against 1.49 s, CPU 1.68 against 1.80 and 2.11 against 2.29 CPU-s.
 *
 * The file is opened (`flags`, `mode`) when the stream is constructed, and closed at its end or when destroyed.
 * A write blocks the event loop for as long as the kernel takes to accept it: use it for a local file, not a
 * network mount that may hang.
 */
export class SyncFileSink extends Writable {
  private fd: number | null = null;
  /** What this sink's own open, write or close failed with (a pipeline destroys it with other streams' errors too). */
  failure: NodeJS.ErrnoException | undefined;
  /** Its open succeeded: the file is this sink's to remove (with flags 'wx', a failed open means it was someone else's). */
  opened = false;
  /** Called with each chunk once it is all written (the sink keeps no reference to it afterwards). Must not throw. */
  afterWrite: ((chunk: Buffer) => void) | null = null;

  constructor(
    private readonly file: string,
    private readonly opts: { flags: string; mode: number },
  ) {
    super({ highWaterMark: 4 << 20 });
  }

  override _construct(done: (err?: Error | null) => void): void {
    try {
      this.fd = openSync(this.file, this.opts.flags, this.opts.mode);
      this.opened = true;
      done();
    } catch (err) {
      done((this.failure = err as NodeJS.ErrnoException));
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.writeAll([chunk], done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.writeAll(
      chunks.map((c) => c.chunk),
      done,
    );
  }

  override _final(done: (err?: Error | null) => void): void {
    try {
      const fd = this.fd;
      this.fd = null;
      if (fd !== null) closeSync(fd);
      done();
    } catch (err) {
      done((this.failure = err as NodeJS.ErrnoException));
    }
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // closed already: nothing to release
      }
      this.fd = null;
    }
    done(err);
  }

  /**
   * Writes every byte of `bufs` in order, at most WRITE_MAX bytes and MAX_IOV buffers a call; a short write continues
   * where it stopped. The position is an index and an offset into `bufs`: nothing is rebuilt per write.
   */
  private writeAll(bufs: Buffer[], done: (err?: Error | null) => void): void {
    try {
      let i = 0;
      let off = 0;
      const part: Buffer[] = [];
      for (;;) {
        part.length = 0;
        let size = 0;
        for (let j = i, o = off; j < bufs.length && size < WRITE_MAX && part.length < MAX_IOV; j++, o = 0) {
          const b = bufs[j]!;
          const take = Math.min(b.length - o, WRITE_MAX - size);
          if (take <= 0) continue;
          part.push(o === 0 && take === b.length ? b : b.subarray(o, o + take));
          size += take;
        }
        if (size === 0) break;
        const n = part.length === 1 ? writeSync(this.fd!, part[0]!) : writevSync(this.fd!, part);
        if (n <= 0) throw Object.assign(new Error(`the file system accepted no bytes of ${this.file}`), { code: 'EIO' });
        for (let left = n; left > 0; ) {
          const rest = bufs[i]!.length - off;
          if (left < rest) {
            off += left;
            left = 0;
          } else {
            left -= rest;
            i++;
            off = 0;
          }
        }
      }
      if (this.afterWrite) for (const b of bufs) this.afterWrite(b);
      done();
    } catch (err) {
      done((this.failure = err as NodeJS.ErrnoException));
    }
  }
}

/**
 * Bytes handed to the kernel in one write. The page cache takes a write in folios up to its size, and large folios
 * are made of the large free blocks a VM's balloon driver hands back to the host (free page reporting): each page of
 * such a block faults on the host when first written. Writing 690 MB on this project's machine (dd, after the memory
 * freed by an earlier 690 MB write had been reported): 1 MiB writes 0.74-0.78 s of system time, 8 MiB 1.7 s, 64-512
 * KiB 0.13-0.19 s, as just after the free (16 KiB: 0.26-0.41 s, the calls' own cost). zstd writes its output 128 KiB
 * at a time. It lowers the odds, not the cost: 128 KiB writes from a file in the page cache did pay it at times
 * (bench/README.md, "More figures (2026-12-07, seventh session)").
 */
export const WRITE_MAX = 128 << 10;

/** Buffers in one writev (Linux's IOV_MAX). */
const MAX_IOV = 1024;
