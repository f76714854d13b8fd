import { createReadStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../interfaces/store.js';
import { createDecryptStream, recipientFingerprint } from '../age/index.js';
import { integrityError, isAbortError, TykdrError } from '../errors.js';
import { artifactKey } from '../layout.js';
import type { Manifest } from '../manifest.js';
import { createDecompressor, Tap } from '../pipeline.js';
import type { DecryptionKeys } from './decryption-keys.js';
import { makeDir } from '../util/make-dir.js';
import { SyncFileSink } from '../util/sync-file-sink.js';
import { WorkerDecompressStream } from '../zstd-worker.js';

/** Failures of the staging folder itself (full, read-only, not ours, a failing disk): bad input, not a damaged snapshot. */
const FOLDER_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EIO', 'EFBIG']);

/**
 * Closes a sink that failed or was stopped, then removes the partial file it wrote (closed first: a descriptor never
 * outlives it). A file the sink never opened is left alone: with 'wx', an open that failed (EEXIST) names another's file.
 */
async function discard(sink: SyncFileSink, file: string): Promise<void> {
  sink.destroy();
  if (!sink.closed) await new Promise((resolve) => sink.once('close', resolve));
  if (sink.opened) await unlink(file).catch(() => undefined);
}

/**
 * When the zstd worker's output goes straight to a SyncFileSink (only a counting Tap between them, which passes each
 * chunk on as it is), each chunk goes back to the worker once written, to decompress into again (WorkerDecompressStream
 * recycle()). Not with a `through`: a reader there may keep chunks.
 */
function recycleWritten(inflate: Transform, sink: Writable, through: Transform | undefined): void {
  if (!through && inflate instanceof WorkerDecompressStream && sink instanceof SyncFileSink) sink.afterWrite = (chunk) => inflate.recycle(chunk);
}

/** Stored size from which zstd decompresses on a worker thread (its start-up would cost more on smaller objects). */
const WORKER_MIN_BYTES = 4 << 20;

export interface StagedArtifact {
  component: string;
  /** The plaintext (RDB file, tar) on local disk, mode 0600; still compressed when `compression` is set. */
  file: string;
  /** Bytes of `file`: the plaintext, or with `compression` the decrypted, still compressed artifact. */
  plaintextBytes: number;
  storedBytes: number;
  /** Set when staged with `keepCompressed`: the algorithm `file` is still compressed with. */
  compression?: 'zstd' | 'gzip';
  /** The target's read of the plaintext as it was staged (Target.readWhileStaging), for its restore. */
  read?: Promise<unknown>;
}

/**
 * Downloads one artifact and turns it back into its plaintext in the staging folder, streaming:
 * store -> SHA-256 tap -> age decrypt -> decompress -> file. It resolves only when the SHA-256 and size
 * of the stored bytes match the manifest and age authenticated every chunk; otherwise the staged file
 * is deleted and it rejects with an integrityError. Nothing here touches a restore target.
 */
export async function stageArtifact(opts: {
  store: Store;
  manifest: Manifest;
  component: string;
  dir: string;
  keys: DecryptionKeys;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
  /**
   * Stage the decrypted artifact without decompressing it (the target decompresses while it loads): proven intact
   * all the same (SHA-256 of the stored bytes, every age chunk authenticated); the plaintext size is the target's to check.
   */
  keepCompressed?: boolean;
  /** Every plaintext chunk passes through it on its way to the file (a target's read while staging: Target.readWhileStaging). */
  through?: Transform;
}): Promise<StagedArtifact> {
  let a: ReturnType<typeof artifactOf>;
  try {
    a = artifactOf(opts.manifest, opts.component);
    await makeDir(opts.dir, 0o700);
  } catch (err) {
    opts.through?.destroy();
    throw err;
  }
  const compressed = opts.keepCompressed === true;
  const file = path.join(opts.dir, `${opts.component}.${a.format}${compressed ? `.${a.compression}` : ''}`);
  // Written synchronously: on two CPUs the stage's own threads keep them busy (util/sync-file-sink.ts).
  const sink = new SyncFileSink(file, { flags: 'wx', mode: 0o600 });
  // Its failure reaches readArtifact's pipeline; this listener only keeps one before any piping from being uncaught.
  sink.on('error', () => undefined);
  try {
    // The whole object is hashed even when decryption fails early, so a changed byte gets the reason verify gives.
    const read = await readArtifact({ ...opts, hashWholeObject: true, decompress: !compressed, sink });
    return { component: opts.component, file, plaintextBytes: read.plaintextBytes, storedBytes: read.storedBytes, ...(compressed ? { compression: a.compression } : {}) };
  } catch (err) {
    // Without the error: a through never piped (the download failed first) has no 'error' listener. Destroyed before
    // its end, it still fails its reader (Target.readWhileStaging's result settles).
    opts.through?.destroy();
    // Closed before the file goes (a failure before anything was piped leaves the sink open, its file maybe not yet made).
    await discard(sink, file);
    const code = sink.failure?.code;
    if (err !== sink.failure || code === undefined || !FOLDER_ERRORS.has(code)) throw err;
    // The staging folder could not be written (full, read-only, not ours): not the snapshot's fault.
    const full = code === 'ENOSPC' || code === 'EDQUOT';
    throw new TykdrError('badInput', `staging ${opts.component}: writing ${file} failed (${code})`, {
      fix: full
        ? 'free space in restore.stagingDir, or set it to a folder with room, then restore again (no target was changed)'
        : 'make restore.stagingDir a local folder tykdr can write, then restore again (no target was changed)',
      cause: err,
    });
  }
}

export interface ArtifactRead {
  storedBytes: number;
  plaintextBytes: number;
}

/**
 * The one read path of a stored artifact: store -> SHA-256 tap -> age decrypt -> decompress -> sink, in
 * bounded memory. Resolves only when the stored bytes match the manifest's SHA-256 and size, age
 * authenticated every chunk and the plaintext has the manifest's size; otherwise rejects with an
 * integrityError naming the object (a store failure stays a storeError). The sink only ever receives
 * authenticated plaintext, but on failure it may have received part of it: the caller discards it.
 *
 * By default a decryption or decompression failure stops the download at once. With `hashWholeObject`
 * the rest of the object is still read and hashed, so an altered object is reported as altered
 * ("sha256 check failed") rather than by whatever decryption error the changed byte happened to cause.
 */
export async function readArtifact(opts: {
  store: Store;
  manifest: Manifest;
  component: string;
  keys: DecryptionKeys;
  sink: Writable;
  hashWholeObject?: boolean;
  /** false: the sink gets the decrypted bytes still compressed (plaintextBytes then counts those; no size check). */
  decompress?: boolean;
  /** A transform between the plaintext (counted) and the sink. */
  through?: Transform;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}): Promise<ArtifactRead> {
  const a = artifactOf(opts.manifest, opts.component);
  const where = `${a.name} in snapshot ${opts.manifest.id}`;
  // Before any stream is made: a refusal here leaves nothing running (the zstd worker would keep the process alive).
  if (opts.keys.identities.length > 0 && opts.manifest.encryption?.passphrase !== true) {
    // A wrong key fails here, before any byte is read: so hashing the whole object after a decryption failure
    // (to tell an altered object from a bad key) never downloads a large object only to say "wrong key".
    const mine = opts.keys.identities.map((i) => recipientFingerprint(i.recipient));
    const wanted = (opts.manifest.encryption?.recipients ?? []).map((r) => r.fingerprint);
    if (wanted.length > 0 && !wanted.some((w) => mine.includes(w))) {
      throw integrityError(
        `${where}: no identity matches any recipient of this file: the snapshot was encrypted to ${wanted.join(', ')}, ` +
          `the identity file holds ${mine.join(', ')}`,
        'Decrypt with the identity file whose public key was a recipient when the snapshot was written.',
      );
    }
  }
  const stored = new Tap({ sha256: true, onBytes: opts.onBytes });
  // Not a bulk tap (util/young-gc.ts): in a restore the collections every 8 MiB cost 0.56 s more of the main thread's
  // time for a 690 MB RDB (a CPU profile of the whole restore: 1.01 s of garbage collection against 0.45 s) for 7 MB
  // less peak memory, and a live restore's reader (a `through`) had its records moved to the old generation early.
  const plain = new Tap();
  const decrypt = createDecryptStream({ identities: opts.keys.identities, passphrase: opts.keys.passphrase?.reveal() });
  let decodeError: unknown;
  const feed = new Feed(decrypt, () => decodeError !== undefined || decrypt.destroyed);
  const decompress = opts.decompress !== false;
  const tail: Writable[] = opts.through ? [opts.through, opts.sink] : [opts.sink];
  const inflate = decompress ? createDecompressor(a.compression, { worker: a.stored_bytes >= WORKER_MIN_BYTES }) : null;
  if (inflate) recycleWritten(inflate, opts.sink, opts.through);
  const decoded = (
    inflate
      ? pipeline([decrypt, inflate, plain, ...tail], { signal: opts.signal })
      : pipeline([decrypt, plain, ...tail], { signal: opts.signal })
  ).catch((err: unknown) => {
    decodeError = err;
    if (!opts.hashWholeObject) feed.destroy(err as Error);
  });
  let readWhole = false;
  try {
    const body = await opts.store.get(artifactKey(opts.manifest.id, a.name), { signal: opts.signal });
    await pipeline(body, stored, feed, { signal: opts.signal });
    readWhole = true;
  } catch (err) {
    // The download failed (store, abort) unless it was stopped because decoding had failed first.
    if (decodeError === undefined) {
      // Quietly first: when `get` itself rejected, no pipeline listens on feed, and the decode pipeline's
      // failure below would otherwise destroy it with an error nobody handles (an uncaught 'error' event).
      feed.destroy();
      decrypt.destroy();
      await decoded;
      throw err;
    }
  }
  await decoded;
  const sha = readWhole ? stored.sha256Hex() : undefined;
  if (sha !== undefined && sha !== a.sha256) {
    const sizes = stored.bytes === a.stored_bytes ? `both ${stored.bytes} bytes` : `${stored.bytes} bytes stored, ${a.stored_bytes} in the manifest`;
    throw integrityError(
      `${where}: sha256 check failed: the store holds sha256 ${sha}, the manifest says ${a.sha256} (${sizes}): ` +
        'the object was altered or replaced in the store',
      'restore from another snapshot',
    );
  }
  if (sha !== undefined && stored.bytes !== a.stored_bytes) {
    // Same bytes, another size: the manifest's size was changed (a signed manifest cannot be).
    throw integrityError(
      `${where}: size check failed: the store holds ${stored.bytes} bytes, the manifest says ${a.stored_bytes} ` +
        `(sha256 ${sha} matches): the manifest was altered`,
      'restore from another snapshot, and sign manifests (signing.keyFile, signing.verifyKeys)',
    );
  }
  if (decodeError !== undefined) throw explainDecodeError(decodeError, where);
  if (decompress && plain.bytes !== a.plaintext_bytes) {
    throw integrityError(
      `${where}: decrypted to ${plain.bytes} plaintext bytes, the manifest says ${a.plaintext_bytes}`,
      'the snapshot cannot be trusted; restore from another snapshot',
    );
  }
  return { storedBytes: stored.bytes, plaintextBytes: plain.bytes };
}

function artifactOf(manifest: Manifest, component: string) {
  const entry = manifest.components[component];
  if (!entry) throw integrityError(`snapshot ${manifest.id} has no component "${component}"`);
  return entry.artifact;
}

function explainDecodeError(err: unknown, where: string): unknown {
  if (err instanceof TykdrError && err.kind === 'integrityError') {
    return integrityError(`${where}: ${err.message}`, err.fix ?? 'use another snapshot', err);
  }
  const code = (err as { code?: string }).code;
  if (code?.startsWith('ZSTD') || code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') {
    return integrityError(`${where}: decompression failed (${(err as Error).message})`, 'use another snapshot', err);
  }
  return err;
}

/**
 * Hands the stored bytes to the decryption pipeline with its backpressure. Once that pipeline has failed
 * (`failed()`), chunks are dropped instead, so the SHA-256 tap upstream can still see the whole object.
 */
class Feed extends Writable {
  constructor(
    private readonly target: Writable,
    private readonly failed: () => boolean,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.failed() || this.target.write(chunk) || this.failed()) {
      done();
      return;
    }
    const settle = () => {
      this.target.off('drain', settle);
      this.target.off('close', settle);
      done();
    };
    this.target.on('drain', settle);
    this.target.on('close', settle);
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.failed()) this.target.end();
    done();
  }
}

/** What a target needs to read an artifact staged still compressed (`keepCompressed`). */
export interface CompressedStaged {
  file: string;
  algorithm: 'zstd' | 'gzip';
  /** The manifest's stored and plaintext sizes: the first picks the worker thread, the second is checked. */
  storedBytes: number;
  plaintextBytes: number;
}

/** The artifact `file` holds, staged still compressed with `algorithm`, sized by its manifest entry. */
export function compressedStaged(file: string, algorithm: 'zstd' | 'gzip', artifact: { stored_bytes: number; plaintext_bytes: number }): CompressedStaged {
  return { file, algorithm, storedBytes: artifact.stored_bytes, plaintextBytes: artifact.plaintext_bytes };
}

/**
 * A staged artifact kept compressed, decompressed as a stream for a target that loads as it reads; `bytes()` counts
 * what came out (the reader checks it against `plaintextBytes` once it has read all). Errors (a corrupt frame) reach
 * the reader through the returned stream.
 */
export function streamStaged(s: CompressedStaged): { stream: Tap; bytes: () => number } {
  const counted = new Tap();
  // The decompressor first: one that cannot be made (zstd-napi.ts) throws before the file is opened.
  const inflate = createDecompressor(s.algorithm, { worker: s.storedBytes >= WORKER_MIN_BYTES });
  pipeline(createReadStream(s.file), inflate, counted).catch(() => undefined);
  return { stream: counted, bytes: () => counted.bytes };
}

/**
 * Decompresses a staged artifact kept compressed into the plaintext file `dest` (mode 0600, replaced if there), for a
 * path that reads a file; its size is checked against the manifest. `where` names it in errors ("components.pg").
 * `through`: a transform the plaintext passes on its way to the file (after it is counted).
 */
export async function inflateStaged(s: CompressedStaged, dest: string, where: string, signal?: AbortSignal, through?: Transform): Promise<void> {
  await makeDir(path.dirname(dest), 0o700);
  // Made before any file is opened, as every reader of a compressed artifact does: an install that cannot load zstd
  // (zstd-napi.ts: kind internal, with its fix) fails here, and is not taken for a damaged artifact.
  const inflate = createDecompressor(s.algorithm, { worker: s.storedBytes >= WORKER_MIN_BYTES });
  const counted = new Tap();
  const opts = signal ? { signal } : {};
  // Written as the stage writes its file (util/sync-file-sink.ts): on this thread, at most WRITE_MAX bytes a write.
  const out = new SyncFileSink(dest, { flags: 'w', mode: 0o600 });
  // Their failures reach the pipeline; these listeners only keep one before any piping from being uncaught, and
  // tell the read's failure from the others.
  out.on('error', () => undefined);
  const input = createReadStream(s.file);
  let readFailure: unknown;
  input.on('error', (e) => (readFailure = e));
  try {
    recycleWritten(inflate, out, through);
    await (through ? pipeline(input, inflate, counted, through, out, opts) : pipeline(input, inflate, counted, out, opts));
  } catch (err) {
    input.destroy();
    // No plaintext left behind half written.
    await discard(out, dest);
    if (isAbortError(err)) throw err;
    // The file could not be written (a full disk), or the staged file read: not the snapshot's fault.
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code) && (err === out.failure || err === readFailure)) {
      const writing = err === out.failure;
      const full = code === 'ENOSPC' || code === 'EDQUOT';
      throw new TykdrError('badInput', `${where}: ${writing ? `writing the decompressed artifact to ${dest}` : `reading the staged artifact ${s.file}`} failed (${code})`, {
        fix:
          writing && full
            ? 'free space in restore.stagingDir, or set it to a folder with room (it holds the staged artifact and, for this one, its plaintext too), then restore again'
            : 'make restore.stagingDir a local folder tykdr can read and write, then restore again',
        cause: err,
      });
    }
    throw integrityError(`${where}: decompressing the staged artifact failed: ${(err as Error).message}`, 'restore from another snapshot', err);
  }
  if (counted.bytes !== s.plaintextBytes) {
    throw integrityError(`${where}: the staged artifact decompressed to ${counted.bytes} bytes, the manifest says ${s.plaintextBytes}`, 'restore from another snapshot');
  }
}
