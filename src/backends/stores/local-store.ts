import { access, constants, type FileHandle, link, open, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { storeError } from '../../core/errors.js';
import { makeDir } from '../../core/util/make-dir.js';
import { assertSafeKey, type DeleteResult, type ObjectInfo, type PutResult, type Store, type UnfinishedUpload } from '../../core/interfaces/store.js';

const PARTIAL = '.partial-';
/** The name a partial file of `base` has: "<base>.partial-<8 hex digits>". */
const PARTIAL_NAME = /^(.+)\.partial-[0-9a-f]{8}$/;
/** listUnfinished's id for an empty folder (its key ends in "/"). */
const EMPTY_FOLDER = '(empty folder)';

/**
 * A folder as a store. An object is written to "<key>.partial-<random>", fsynced, then hard-linked to
 * its final name (which fails if the name exists, so nothing is ever overwritten) and the partial
 * name removed. A crash leaves only a ".partial-" file, which `list` never reports and
 * `listUnfinished` does (with its last modification as `since`: a write in progress keeps it fresh).
 * Local writes are never retried.
 */
export class LocalStore implements Store {
  readonly location: string;

  constructor(private readonly root: string) {
    this.location = root;
  }

  private abs(key: string): string {
    assertSafeKey(key);
    return path.join(this.root, ...key.split('/'));
  }

  async check(): Promise<void> {
    try {
      await makeDir(this.root);
      await access(this.root, constants.W_OK | constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw storeError(
        `local store ${this.root} is not a writable folder (${code === undefined ? String(err) : (err as Error).message})`,
        code === 'ENOSPC' ? `free space on the file system of ${this.root}, or point store.path elsewhere` : 'create the folder or fix its permissions, or point store.path (in tykdr.yaml) at a writable folder',
        err,
      );
    }
  }

  async put(key: string, body: Readable, opts: { signal?: AbortSignal } = {}): Promise<PutResult> {
    const final = this.abs(key);
    const partial = `${final}${PARTIAL}${randomBytes(4).toString('hex')}`;
    try {
      await makeDir(path.dirname(final));
      const fh = await open(partial, 'wx', 0o600);
      try {
        await pipeline(body, new BatchedFileWriter(fh), { signal: opts.signal });
        await fh.sync();
      } finally {
        await fh.close();
      }
      await link(partial, final);
    } catch (err) {
      await unlink(partial).catch(() => undefined);
      // A folder this put made and left empty goes too (it would be listed as an unfinished write).
      await this.removeEmptyFolders(key);
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw storeError(`object ${key} already exists in ${this.root}; objects are never overwritten`, undefined, err);
      }
      if ((err as Error).name === 'AbortError') throw err;
      if (isFsError(err)) {
        const full = (err as NodeJS.ErrnoException).code === 'ENOSPC';
        throw storeError(
          `cannot write ${final}${full ? `: no space left on the file system of the store ${this.root}` : ''}: ${(err as Error).message}`,
          full ? `free space where ${this.root} lives (df -h ${this.root}), or point store.path elsewhere` : 'check free space and permissions',
          err,
        );
      }
      throw err;
    }
    await unlink(partial);
    return { bytes: (await stat(final)).size, retries: 0 };
  }

  async get(key: string): Promise<Readable> {
    const file = this.abs(key);
    // Opened here, not by the stream in the background: a file that goes away (a prune beside a listing) or cannot be
    // opened fails this call, never a stream no one listens to yet (an unhandled 'error').
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw storeError(`object ${key} not found in ${this.root}`, 'check the snapshot id with `tykdr snapshots`', err);
    }
    return fh.createReadStream({ highWaterMark: 1 << 20 });
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const s = await stat(this.abs(key));
      return s.isFile() ? { key, size: s.size, modified: s.mtime } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw storeError(`cannot stat ${key} in ${this.root}: ${(err as Error).message}`, undefined, err);
    }
  }

  async *list(prefix: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<ObjectInfo> {
    // Walk only the folder the prefix names (prefixes end in "/" by layout convention).
    const dirKey = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    for await (const o of this.walk(dirKey, prefix, opts.signal)) if (!o.partial && !o.emptyFolder) yield { key: o.key, size: o.size, modified: o.modified };
  }

  async *listUnfinished(prefix: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<UnfinishedUpload> {
    const dirKey = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    for await (const o of this.walk(dirKey, '', opts.signal)) {
      if (o.emptyFolder) {
        // A delete killed between its last file and the folder: nothing in it; removed like a partial file, after the grace.
        if (o.key.startsWith(prefix)) yield { key: o.key, id: EMPTY_FOLDER, since: o.modified, bytes: 0 };
        continue;
      }
      const m = o.partial ? PARTIAL_NAME.exec(path.posix.basename(o.key)) : null;
      if (!m) continue;
      const key = `${path.posix.dirname(o.key) === '.' ? '' : `${path.posix.dirname(o.key)}/`}${m[1]}`;
      if (key.startsWith(prefix)) yield { key, id: path.posix.basename(o.key), since: o.modified, bytes: o.size };
    }
  }

  async removeUnfinished(upload: UnfinishedUpload, opts: { signal?: AbortSignal } = {}): Promise<'removed' | 'missing'> {
    opts.signal?.throwIfAborted();
    if (upload.id === EMPTY_FOLDER && upload.key.endsWith('/')) {
      const folder = upload.key.slice(0, -1);
      try {
        await rmdir(this.abs(folder));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // Gone, or no longer empty (a put wrote there since): nothing of ours to remove.
        if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST') return 'missing';
        throw storeError(`cannot remove the empty folder ${folder} from ${this.root}: ${(err as Error).message}`, 'check the folder permissions', err);
      }
      await this.removeEmptyFolders(folder);
      return 'removed';
    }
    const final = this.abs(upload.key);
    // The id names a partial file of exactly this key, in its folder: nothing else can be removed this way.
    if (PARTIAL_NAME.exec(upload.id)?.[1] !== path.basename(final)) {
      throw storeError(`"${upload.id}" is not a partial file of ${upload.key} in ${this.root}`);
    }
    try {
      await unlink(path.join(path.dirname(final), upload.id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
      throw storeError(`cannot remove ${upload.id} from ${this.root}: ${(err as Error).message}`, 'check the folder permissions', err);
    }
    await this.removeEmptyFolders(upload.key);
    return 'removed';
  }

  /** Every file under dirKey whose key starts with prefix, partial files included (flagged), and empty folders (flagged; key ends in "/"). */
  private async *walk(dirKey: string, prefix: string, signal?: AbortSignal): AsyncIterable<ObjectInfo & { partial: boolean; emptyFolder?: boolean }> {
    signal?.throwIfAborted();
    const dir = dirKey === '' ? this.root : path.join(this.root, ...dirKey.split('/'));
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw storeError(`cannot list ${dir}: ${(err as Error).message}`, 'check the folder permissions', err);
    }
    if (entries.length === 0 && dirKey !== '' && `${dirKey}/`.startsWith(prefix)) {
      // An empty folder: what a delete killed between a file's removal and its folder's leaves (listUnfinished).
      const s = await stat(dir).catch(() => null);
      if (s?.isDirectory()) yield { key: `${dirKey}/`, size: 0, modified: s.mtime, partial: false, emptyFolder: true };
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const key = dirKey === '' ? e.name : `${dirKey}/${e.name}`;
      if (e.isDirectory()) {
        if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix, signal);
      } else if (e.isFile() && key.startsWith(prefix)) {
        let s;
        try {
          s = await stat(path.join(dir, e.name));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile (a partial renamed, a prune)
          throw storeError(`cannot stat ${path.join(dir, e.name)}: ${(err as Error).message}`, 'check the folder permissions', err);
        }
        yield { key, size: s.size, modified: s.mtime, partial: e.name.includes(PARTIAL) };
      }
    }
  }

  async delete(key: string, opts: { signal?: AbortSignal } = {}): Promise<DeleteResult> {
    opts.signal?.throwIfAborted();
    try {
      await unlink(this.abs(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'missing' };
      throw storeError(`cannot delete ${key} from ${this.root}: ${(err as Error).message}`, undefined, err);
    }
    await this.removeEmptyFolders(key);
    return { status: 'deleted' };
  }

  /**
   * Folders of `key` that became empty go too (a pruned snapshot leaves nothing behind); a folder that is
   * not empty, or one a concurrent put just created, stops the climb.
   */
  private async removeEmptyFolders(key: string): Promise<void> {
    const parts = key.split('/').slice(0, -1);
    for (; parts.length > 0; parts.pop()) {
      try {
        await rmdir(path.join(this.root, ...parts));
      } catch {
        break;
      }
    }
  }
}

/** Bytes gathered before one write. */
const WRITE_BATCH = 1 << 20;

/**
 * Writes a stream to an open file in writes of about WRITE_BATCH bytes (one writev of the chunks as they came,
 * no copy). An encrypted stream arrives as 64 KiB chunks each followed by its 16-byte tag: written as they come,
 * that is two thread-pool round trips per 64 KiB. Holds at most WRITE_BATCH bytes besides the stream's own buffer.
 */
class BatchedFileWriter extends Writable {
  private batch: Buffer[] = [];
  private size = 0;

  constructor(private readonly fh: FileHandle) {
    super({ highWaterMark: WRITE_BATCH });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.batch.push(chunk);
    this.size += chunk.length;
    if (this.size < WRITE_BATCH) {
      cb();
      return;
    }
    this.flushBatch(cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.flushBatch(cb);
  }

  private flushBatch(cb: (err?: Error | null) => void): void {
    const batch = this.batch;
    const size = this.size;
    this.batch = [];
    this.size = 0;
    if (size === 0) {
      cb();
      return;
    }
    writeAll(this.fh, batch, size).then(() => cb(), cb);
  }
}

async function writeAll(fh: FileHandle, batch: Buffer[], size: number): Promise<void> {
  let { bytesWritten } = await fh.writev(batch);
  if (bytesWritten === size) return;
  // A short write (rare on a regular file): the rest, in order.
  const rest = Buffer.concat(batch).subarray(bytesWritten);
  for (let off = 0; off < rest.length; off += bytesWritten) {
    ({ bytesWritten } = await fh.write(rest, off));
    if (bytesWritten === 0) throw Object.assign(new Error('the file system accepted no bytes'), { code: 'EIO' });
  }
}

function isFsError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}
