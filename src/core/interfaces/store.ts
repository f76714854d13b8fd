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
  /** Requests of this put the store sent again after a transient failure (reset, 5xx, throttling); 0 when none. */
  retries: number;
}

/**
 * A write that never finished: an S3 multipart upload that was neither completed nor aborted, or a local
 * ".partial-" file. A crash (SIGKILL, power loss) leaves one behind; `list` never reports it.
 */
export interface UnfinishedUpload {
  /** The key the write was for, relative to the store's root. */
  key: string;
  /** What tells this write apart from others for the same key (S3 upload id, partial file name). Opaque. */
  id: string;
  /** When it started (S3) or was last written to (local): a grace period is measured from here. */
  since: Date;
  /** Bytes it holds, when the store can tell without extra requests (local); otherwise unset. */
  bytes?: number;
}

/** What a store reports while it works, for progress output and logs. Never contains a secret. */
export type StoreEvent =
  /** A request failed in a way worth trying again; attempt `attempt` of `maxAttempts` follows after `delayMs`. */
  | { type: 'retry'; operation: string; attempt: number; maxAttempts: number; reason: string; delayMs: number }
  /** Nothing moved for `idleMs` while the store owed us bytes or an answer; the operation fails at `limitMs`. */
  | { type: 'stalled'; operation: string; idleMs: number; limitMs: number }
  /** Bytes move again after a reported stall of `stalledMs`. */
  | { type: 'resumed'; operation: string; stalledMs: number };

/** Options every store implementation takes besides its config section. */
export interface StoreOptions {
  /** Called for every StoreEvent; must not throw. */
  onEvent?(event: StoreEvent): void;
}

/**
 * A store moves bytes; it knows nothing of snapshots (see core/layout.ts for key names).
 *
 * Contracts:
 * - `put` is write-once: it consumes `body` to its end, and the object becomes visible under `key`
 *   only when the whole body was stored. On failure or abort it rejects, and removes what it wrote
 *   (for S3: aborts the multipart upload) before it settles, within a bounded time; what a crash leaves
 *   is found by `listUnfinished`. It never overwrites an existing object (it rejects instead), so a store
 *   with S3 Object Lock works. A request that fails transiently (connection reset, 5xx, throttling) is
 *   retried with backoff up to the store's attempt limit, and counted in `PutResult.retries`; a body is
 *   never consumed twice (parts are buffered).
 * - `get` returns the object's bytes as a stream; a missing key rejects with a storeError. A transfer
 *   broken mid-way (reset) may be resumed where it stopped; the stream then still yields every byte once.
 * - A store that talks over a network gives every request a timeout, and an operation that moves no bytes
 *   while it waits on the store for longer than its stall limit fails with a storeError that names the
 *   store and the stall
 *   (an idle consumer of a `get` stream, or a `put` body waiting on its source, is not a stall).
 *   Failures that are the store's (unreachable, reset after the last attempt, stalled) are storeErrors;
 *   an AbortError means the caller's signal aborted, never anything else.
 * - `stat` resolves null for a missing key.
 * - `list` yields every object under a key prefix, in no promised order.
 * - `delete` removes the data for good, not just its name: in a versioned bucket it deletes every version
 *   of the key by version id (a plain delete would only add a delete marker and free nothing). A missing
 *   key resolves { status: 'missing' }. A version under Object Lock retention (or legal hold) is left in
 *   place and the result is { status: 'locked', lock } with the lock's mode and end; other versions are
 *   still removed. Any other failure rejects with a storeError.
 * - `listUnfinished` yields every unfinished write whose key starts with `prefix`, of any age, in no
 *   promised order; a write that is in progress right now is one of them, so callers remove only those
 *   older than a grace period. It never yields a finished object.
 * - `removeUnfinished` discards what one unfinished write left (S3: AbortMultipartUpload; local: the
 *   partial file) and resolves 'removed', or 'missing' when it is already gone (finished, aborted or
 *   removed meanwhile). It never touches a finished object. Other failures reject with a storeError.
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
  listUnfinished(prefix: string, opts?: { signal?: AbortSignal }): AsyncIterable<UnfinishedUpload>;
  removeUnfinished(upload: UnfinishedUpload, opts?: { signal?: AbortSignal }): Promise<'removed' | 'missing'>;
}

/** One line for a StoreEvent: "store s3://b/p/: no progress for 30s on upload of x, waiting up to 1m". */
export function describeStoreEvent(location: string, e: StoreEvent): string {
  const secs = (ms: number) => `${Math.round(ms / 1000)}s`;
  switch (e.type) {
    case 'retry':
      return `store ${location}: ${e.operation} failed (${e.reason}); retry ${e.attempt - 1} of ${e.maxAttempts - 1} in ${(e.delayMs / 1000).toFixed(1)}s`;
    case 'stalled':
      return `store ${location}: no progress for ${secs(e.idleMs)} on ${e.operation}, waiting up to ${secs(e.limitMs)} (store.stallTimeout)`;
    case 'resumed':
      return `store ${location}: ${e.operation} moves again after ${secs(e.stalledMs)} without progress`;
  }
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
