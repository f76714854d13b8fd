import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { manifestBytes, readManifest } from '../catalog.js';
import { integrityError } from '../errors.js';
import type { Store } from '../interfaces/store.js';
import { artifactKey, manifestKey, manifestSignatureKey } from '../layout.js';
import type { Manifest } from '../manifest.js';

export interface CopyProgress {
  objectStarted?(o: { name: string; bytes: number }): void;
  /** Bytes moved so far, in increments. */
  bytes?(n: number): void;
  objectDone?(o: CopiedObject): void;
}

export interface CopiedObject {
  name: string;
  bytes: number;
  /** copied: moved now; present: the destination already held the same bytes (an earlier, interrupted copy). */
  status: 'copied' | 'present';
}

export interface CopyResult {
  id: string;
  from: string;
  to: string;
  objects: CopiedObject[];
  /** written: this run completed the snapshot at the destination; present: it was complete there already. */
  manifest: 'written' | 'present';
  /** Bytes moved by this run (objects already present are not counted). */
  bytesCopied: number;
  durationMs: number;
}

/**
 * Copies one complete snapshot from one store to another without decrypting it: each object is streamed
 * through a SHA-256 tap and refused (the write fails and the store removes what it wrote) unless its bytes
 * match the manifest; the signature, then the manifest, are written last, so the copy is complete exactly
 * when it is whole, as a backup is. Objects the destination already holds are checked byte for byte, never
 * rewritten (Object Lock works): a rerun after a crash finishes the copy.
 */
export async function copySnapshot(opts: { from: Store; to: Store; id: string; signal?: AbortSignal; progress?: CopyProgress }): Promise<CopyResult> {
  const t0 = Date.now();
  const { from, to, signal } = opts;
  const manifest = await readManifest(from, opts.id, signal);
  const mBytes = manifestBytes(manifest)!;
  const result: CopyResult = { id: manifest.id, from: from.location, to: to.location, objects: [], manifest: 'written', bytesCopied: 0, durationMs: 0 };

  const existing = await to.stat(manifestKey(manifest.id), { signal });
  if (existing) {
    const there = await readAll(await to.get(manifestKey(manifest.id), { signal }));
    if (!there.equals(mBytes)) {
      throw integrityError(
        `${to.location} already holds a different manifest for snapshot ${manifest.id}`,
        'the two stores disagree about this snapshot: check both with `tykdr verify --store NAME`; objects are never overwritten',
      );
    }
    result.manifest = 'present';
  }

  for (const a of artifactsOf(manifest)) {
    const key = artifactKey(manifest.id, a.name);
    opts.progress?.objectStarted?.({ name: a.name, bytes: a.stored_bytes });
    const held = await to.stat(key, { signal });
    let status: CopiedObject['status'];
    if (held) {
      // Written by an earlier copy (or put there by someone else): it counts only with the manifest's bytes.
      const check = new ExpectBytes(a.sha256, a.stored_bytes, `${a.name} of snapshot ${manifest.id} in ${to.location}`);
      await pipeline(await to.get(key, { signal }), check, devNull(), { signal });
      status = 'present';
    } else {
      const check = new ExpectBytes(a.sha256, a.stored_bytes, `${a.name} of snapshot ${manifest.id} in ${from.location}`, opts.progress?.bytes);
      const body = await from.get(key, { signal });
      await Promise.all([pipeline(body, check, { signal }).catch(() => undefined), to.put(key, check, { signal })]);
      status = 'copied';
      result.bytesCopied += a.stored_bytes;
    }
    const done = { name: a.name, bytes: a.stored_bytes, status };
    result.objects.push(done);
    opts.progress?.objectDone?.(done);
  }

  if (result.manifest === 'written') {
    const sigKey = manifestSignatureKey(manifest.id);
    const sig = await from.stat(sigKey, { signal });
    if (sig && !(await to.stat(sigKey, { signal }))) {
      await to.put(sigKey, Readable.from([await readAll(await from.get(sigKey, { signal }))]), { signal });
    }
    await to.put(manifestKey(manifest.id), Readable.from([mBytes]), { signal, contentType: 'application/json' });
  }
  result.durationMs = Date.now() - t0;
  return result;
}

/**
 * Re-reads a copied snapshot from `store` and checks every object's size and SHA-256 against the manifest
 * that store holds (no key needed: the bytes are compared as stored). Resolves the objects checked; rejects
 * with an integrityError naming the first object that differs.
 */
export async function checkStoredSnapshot(store: Store, id: string, signal?: AbortSignal): Promise<{ objects: number; bytes: number }> {
  const manifest = await readManifest(store, id, signal);
  let bytes = 0;
  const list = artifactsOf(manifest);
  for (const a of list) {
    const check = new ExpectBytes(a.sha256, a.stored_bytes, `${a.name} of snapshot ${id} in ${store.location}`);
    await pipeline(await store.get(artifactKey(id, a.name), { signal }), check, devNull(), { signal });
    bytes += a.stored_bytes;
  }
  return { objects: list.length, bytes };
}

function artifactsOf(manifest: Manifest) {
  return Object.values(manifest.components).map((c) => c.artifact);
}

/** Passes bytes through and fails at the end (before the consumer sees the end) unless they are the expected ones. */
class ExpectBytes extends Transform {
  private readonly hash = createHash('sha256');
  private n = 0;

  constructor(
    private readonly sha256: string,
    private readonly size: number,
    private readonly what: string,
    private readonly onBytes?: (n: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.n += chunk.length;
    if (this.n > this.size) {
      done(this.mismatch(`more than ${this.size} bytes`));
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(chunk.length);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const sha = this.hash.digest('hex');
    if (this.n !== this.size || sha !== this.sha256) done(this.mismatch(`${sha.slice(0, 16)}… (${this.n} bytes)`));
    else done();
  }

  private mismatch(got: string): Error {
    return integrityError(
      `${this.what}: sha256 check failed: the store holds ${got}, the manifest says ${this.sha256.slice(0, 16)}… (${this.size} bytes)`,
      'the object was altered or replaced; it is not copied (and a copy holding it is not complete): check the source with `tykdr verify`',
    );
  }
}

function devNull() {
  return async function* (source: AsyncIterable<unknown>) {
    for await (const _ of source) {
      // drained
    }
  };
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
