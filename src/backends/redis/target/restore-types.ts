/** The input and outcome of a redis restore, shared by the restore modes (kept apart so they import no restore module). */
import type { RedisComponent } from '../../../core/config/load.js';
import type { FeedSegment } from '../../../core/interfaces/target.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import type { CheckResult } from '../../../core/restore/types.js';
import type { KeySelection } from '../../../core/tyk/key-selection.js';
import type { StagedRead } from './keys-inspect.js';

export interface RedisRestoreInput {
  component: RedisComponent;
  /** The snapshot's entry for this component; `artifact.format` (rdb, aof, keys) decides how it is restored. */
  manifest: ManifestComponent;
  /**
   * The staged plaintext artifact, already SHA-256 verified and decrypted, whatever its format: an RDB, an
   * AOF folder's tar, or a keys stream. File modes move the RDB (or the unpacked AOF folder) into the target's data dir.
   */
  rdbFile: string;
  /**
   * Set when staged decrypted but still compressed (restore.load replication: redis-target.ts stagesCompressed):
   * `rdbFile` holds the RDB compressed with this algorithm, proven intact all the same. A load by replication
   * decompresses it into the target as it loads; every other path inflates it to a plaintext file first.
   */
  stagedCompression?: 'zstd' | 'gzip';
  /** Scratch folder on the same filesystem as rdbFile; the caller removes it afterwards. */
  workDir: string;
  /** Checks to run after the restore (names that are not Redis checks are ignored). */
  checks: string[];
  signal?: AbortSignal;
  /** Live writes: the restore run and snapshot named by the marker key while the target is partial. */
  marker?: { restore_id: string; snapshot: string };
  progress?: (e: { phase: string; keys?: number; totalKeys?: number }) => void;
  /** A selective restore (selective-restore.ts): only these keys are written, into the running target. */
  selection?: KeySelection;
  /** With a selection: decide and look up (EXISTS) only; nothing is written and no check runs. */
  dryRun?: boolean;
  /**
   * With a selection (restore --to-time): the staged replication feed. The snapshot is loaded into a scratch
   * server and the feed replayed there first, so the selection decides on, and writes, the keys as at that time.
   */
  feed?: FeedSegment[];
  /**
   * A live restore's read of the plaintext (an RDB or a keys stream) made while it was staged (redis-target.ts
   * readWhileStaging), with the options liveReadPlan gives for this input: checkStaged takes it instead of reading the
   * file again. Its rejection is the restore's (a damaged RDB or stream, a module value).
   */
  stagedRead?: Promise<StagedRead>;
}

export interface RedisRestoreOutcome {
  /** What was done: target, versions, keys copied/skipped per class, timings, the old RDB's new name. No secrets, no key names. */
  details: Record<string, unknown>;
  /** One result per requested Redis check, in the order requested. */
  checks: CheckResult[];
}
