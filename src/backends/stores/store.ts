import type { Readable } from 'node:stream';

export interface ObjectInfo {
  /** Key relative to the store's root (never includes the S3 prefix or the local folder). */
  key: string;
  size: number;
  modified: Date;
}

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
 * - `delete` of a missing key succeeds.
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
  delete(key: string, opts?: { signal?: AbortSignal }): Promise<void>;
}

/** Keys are slash-separated, relative, and never climb out of the store's root. */
export function assertSafeKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '.' || part === '')) {
    throw new Error(`invalid object key "${key}"`);
  }
}
