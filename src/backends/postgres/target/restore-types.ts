/** The input and outcome of a postgres restore, shared by the restore modes (kept apart so they import no restore module). */
import type { PostgresComponent } from '../../../core/config/load.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import type { CheckResult } from '../../../core/restore/types.js';

export interface PostgresRestoreInput {
  component: PostgresComponent;
  /** The snapshot's entry: kind `postgres` (a pg_dump archive) or `postgres-globals` (pg_dumpall SQL). */
  manifest: ManifestComponent;
  /** The staged plaintext (already SHA-256 verified and decrypted): the archive pg_restore reads (seekable, so --jobs works). */
  stagedFile: string;
  /**
   * Set when `stagedFile` holds the archive decrypted but still compressed with this algorithm (proven intact all
   * the same): one job reads it decompressed through a pipe; --jobs and the excluded-tables listing get a plaintext copy.
   */
  stagedCompression?: 'zstd' | 'gzip';
  /** Scratch folder; the caller removes it afterwards. */
  workDir: string;
  /** Checks to run after the restore (names that are not database checks are ignored). */
  checks: string[];
  signal?: AbortSignal;
}

export interface PostgresRestoreOutcome {
  /** Target, versions, what was created, owners kept or not, timings, warnings. No passwords. */
  details: Record<string, unknown>;
  /** One result per requested database check, in the order requested. */
  checks: CheckResult[];
}
