import type { Readable } from 'node:stream';

export interface ObjectInfo {
  /** Key relative to the store's root (never includes the S3 prefix or the local folder). */
  key: string;
  size: number;
  modified: Date;
  /** Set by `stat` when the store holds the object under a lock (S3 Object Lock); `list` leaves it unset. */
  lock?: ObjectLock;
}

/** Why a store refuses to delete an object: S3 Object Lock retention or a legal hold. */
export interface ObjectLock {
  /** GOVERNANCE or COMPLIANCE for a retention period; "LEGAL HOLD" for a legal hold. */
  mode: string;
  /** End of the retention period; absent for a legal hold (it lasts until someone lifts it). */
  until?: Date;
}

/**
 * What `delete` did: removed the object (every version of it, in a versioned bucket), found nothing to
 * remove, or was refused because the object is locked. A lock is an answer, not an error: WORM storage
 * is working as intended.
 */
export type DeleteResult = { status: 'deleted' } | { status: 'missing' } | { status: 'locked'; lock: ObjectLock };

export interface PutResult {
  /** Size of the object as the store holds it after the write (read back, not counted on the way in). */
  bytes: number;
}

/**
 * A store moves bytes; it knows nothing of snapshots (see core/layout.ts for key names).
 *
 * Contracts:
 * - `put` is write-once: it consumes `body` to its end, and the object becomes visible under `key`
 *   only when the whole body was stored. On failure or abort it rejects, and removes what it wrote
 *   where the backend allows. It never overwrites an existing object (it rejects instead), so a store
 *   with S3 Object Lock works. It is not retried internally beyond what the SDK does per part.
 * - `get` returns the object's bytes as a stream; a missing key rejects with a storeError.
 * - `stat` resolves null for a missing key.
 * - `list` yields every object under a key prefix, in no promised order.
 * - `delete` removes the data for good, not just its name: in a versioned bucket it deletes every version
 *   of the key by version id (a plain delete would only add a delete marker and free nothing). A missing
 *   key resolves { status: 'missing' }. A version under Object Lock retention (or legal hold) is left in
 *   place and the result is { status: 'locked', lock } with the lock's mode and end; other versions are
 *   still removed. Any other failure rejects with a storeError.
 * Every method honours its AbortSignal.
 */
export interface Store {
  /** Human-readable location, e.g. "s3://bucket/prefix/" or "/var/backups/tyk". Never includes credentials. */
  readonly location: string;
  /** Checks the store is reachable and writable enough to start a backup; rejects with a storeError that says how to fix it. */
  check(signal?: AbortSignal): Promise<void>;
  put(key: string, body: Readable, opts?: { signal?: AbortSignal; contentType?: string }): Promise<PutResult>;
  get(key: string, opts?: { signal?: AbortSignal }): Promise<Readable>;
  stat(key: string, opts?: { signal?: AbortSignal }): Promise<ObjectInfo | null>;
  list(prefix: string, opts?: { signal?: AbortSignal }): AsyncIterable<ObjectInfo>;
  delete(key: string, opts?: { signal?: AbortSignal }): Promise<DeleteResult>;
}

/** "locked until 2026-12-21 (GOVERNANCE)", "under legal hold". */
export function describeLock(lock: ObjectLock): string {
  if (lock.until === undefined) return lock.mode === 'LEGAL HOLD' ? 'under legal hold' : `locked (${lock.mode})`;
  return `locked until ${lock.until.toISOString().slice(0, 10)} (${lock.mode})`;
}

/** Keys are slash-separated, relative, and never climb out of the store's root. */
export function assertSafeKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '.' || part === '')) {
    throw new Error(`invalid object key "${key}"`);
  }
}
