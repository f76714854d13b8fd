import type { Readable } from 'node:stream';

/** What a source hands the pipeline for one artifact. */
export interface SourceArtifact {
  /** The plaintext bytes, streamed; the pipeline consumes it exactly once. */
  stream: Readable;
  /** Plaintext format, used in the object name and manifest: "rdb", "tar", ... */
  format: string;
  /** When the data is consistent as of: RPO is measured from this instant. */
  consistentAt: Date;
  /**
   * Called once, after `stream` ended and was stored. Validates what passed (e.g. the RDB checksum)
   * and returns the facts for the manifest. Rejects with an integrityError when the data is not whole:
   * the snapshot then never becomes complete.
   */
  finish(): Promise<SourceFacts>;
}

export interface SourceFacts {
  /** Facts about the source for the manifest: versions, counts. No secrets. */
  source: Record<string, unknown>;
  /** Snapshot-level Tyk facts (hash_keys, secret fingerprint), when this source saw tyk.conf. */
  tyk?: Record<string, unknown>;
}

/**
 * A backup source. Contracts:
 * - `check` connects and proves access without producing data; it may run more than once. Rejects with
 *   sourceUnreachable / badInput errors that name the component, the address and the fix.
 * - `open` starts producing the artifact; called once per backup. The source releases its connections
 *   when the stream ends, errors, is destroyed, or the signal aborts.
 */
export interface Source {
  /** The snapshot component (and object) name this source writes. */
  readonly component: string;
  /** The tykdr.yaml component it belongs to, when different from `component` (an extra artifact). */
  readonly configName?: string;
  readonly kind: string;
  check(signal?: AbortSignal): Promise<void>;
  open(signal?: AbortSignal): Promise<SourceArtifact>;
}
