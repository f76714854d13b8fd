import type { Transform } from 'node:stream';
import type { CheckName } from '../checks/registry.js';
import type { Component, Config } from '../config/load.js';
import type { ManifestComponent } from '../manifest.js';
import type { PlanComponent } from '../plan/roles.js';
import type { CheckResult } from '../restore/types.js';
import type { KeySelection } from '../tyk/key-selection.js';

/** One staged, checked segment of a point-in-time feed (core/pitr/chain.ts), cut at `bytes`. */
export interface FeedSegment {
  /** The staged plaintext (RESP, as the master sent it). */
  file: string;
  /** Replay this many bytes of it (a point in time inside the segment), else all of it. */
  bytes: number;
  /** [bytes from the segment start, unix ms] marks, ascending: when each part arrived (for relative expiries). */
  marks: Array<[number, number]>;
}

/** What a restore would overwrite in one target, for the dry run and the confirmation. */
export interface TargetAssessment {
  component: string;
  /** Where it goes, for people: "redis 10.0.0.5:6379", "/opt/tyk-gateway". */
  target: string;
  /** What would be overwritten ("2,004 keys", "12 entries"), or null when the target is empty. */
  liveData: string | null;
  warning?: string;
}

/** One snapshot component to put back, with everything resolved by the engine. */
export interface TargetRestoreInput<C extends Component = Component> {
  /** The snapshot component name (an object of the snapshot). */
  name: string;
  /** Its tykdr.yaml component (for an extra artifact such as "<db>-globals", the component it came from). */
  component: C;
  entry: ManifestComponent;
  /** The staged plaintext, already proven intact (SHA-256 and every age chunk). */
  stagedFile: string;
  /**
   * Set when the target asked for it (`Target.stagesCompressed`): `stagedFile` holds the decrypted artifact still
   * compressed with this algorithm (proven intact all the same); the target decompresses it while it loads and
   * checks the plaintext size against `entry.artifact.plaintext_bytes`.
   */
  stagedCompression?: 'zstd' | 'gzip';
  /** A private scratch folder on the staging filesystem; the engine removes it. */
  workDir: string;
  /** The checks the plan step lists; a target runs those it offers and ignores the rest. */
  checks: readonly string[];
  restoreId: string;
  /** The snapshot being restored (for markers a target leaves while it is partial). */
  snapshotId: string;
  /** Files restores: put files under this folder instead of their configured destination. */
  filesTo?: string;
  /** A selective restore (Redis): only the selected keys are written; keys not selected are never touched. */
  selection?: KeySelection;
  /** With a selection: decide what would be written and kept, write nothing, run no check (restore --dry-run). */
  dryRun?: boolean;
  /**
   * With a selection (Redis, restore --to-time): the staged replication feed to apply to the snapshot before
   * the keys are selected, so that the selection sees, and writes, the keys as they were at the point in time.
   */
  feed?: FeedSegment[];
  /** The target's own read of the plaintext, made while it was staged (readWhileStaging's result). */
  stagedRead?: Promise<unknown>;
  signal: AbortSignal;
  note(line: string): void;
}

/** What a target's readWhileStaging is told: the restore input it will get, less what staging makes. */
export type StagingReadInput<C extends Component = Component> = Pick<TargetRestoreInput<C>, 'name' | 'component' | 'entry' | 'checks' | 'selection' | 'dryRun' | 'feed' | 'signal'>;

export interface StagingRead {
  through: Transform;
  result: Promise<unknown>;
}

export interface TargetRestoreOutcome {
  /** What was done (counts, versions, timings). No secrets, no key names. */
  details: Record<string, unknown>;
  /** One result per requested check this target offers. */
  checks: CheckResult[];
}

/** A throwaway target a drill restores into; stop() removes it and returns what could not be cleaned. */
export interface ScratchTarget<C extends Component = Component> {
  /** The component's config pointed at the scratch target. */
  component: C;
  /** What was started, for the drill report ("Valkey 8.1.8 (/opt/valkey/bin/valkey-server)"), when it says more than the kind. */
  description?: string;
  /** Things the drill report should warn about (a binary other than the configured one, and why). */
  warnings?: string[];
  stop(): Promise<string[]>;
}

/**
 * The restore side of one component kind; `Source` is its backup side. Registered by kind in
 * src/backends/registry.ts. Contracts:
 * - `assess` only reads: it never writes to the target. It may run more than once.
 * - `restore` is called once per snapshot component, only after every artifact of the restore was staged
 *   and proven intact. It rejects with a TykdrError whose kind gives the exit code (targetError,
 *   badInput, integrityError, ...) and returns one CheckResult per requested check it offers.
 *   When `signal` aborts it stops promptly and rejects with an AbortError.
 * - `scratch` starts (or points at) an empty target of this kind for a drill; production is never touched.
 */
export interface Target<C extends Component = Component> {
  readonly kind: C['kind'];
  /** Manifest component kinds this target restores (a component may back up more than one artifact). */
  readonly artifactKinds: readonly string[];
  /** The checks it runs after restoring, from the check registry. */
  readonly checks: readonly CheckName[];
  /** The plan role that restores this snapshot component; null when no plan step restores it. */
  role(entry: ManifestComponent): PlanComponent | null;
  /** The plan role of a configured component (for component drills). */
  roleOf(component: C): PlanComponent | null;
  assess(input: { name: string; component: C; entry: ManifestComponent; filesTo?: string; signal?: AbortSignal }): Promise<TargetAssessment[]>;
  restore(input: TargetRestoreInput<C>): Promise<TargetRestoreOutcome>;
  /**
   * True when this target wants `entry` staged decrypted but still compressed (see `stagedCompression`): it streams
   * the decompression into its load instead of waiting for a plaintext file. Absent: staged as plaintext.
   */
  stagesCompressed?(entry: ManifestComponent, component: C): boolean;
  /**
   * A read of the plaintext while it is staged, for a target whose restore reads the whole artifact before its first
   * write: the read then overlaps the download and decompression instead of following them. `input` is what restore()
   * will get (less the staged file); null when that restore reads nothing first. The engine sends every plaintext chunk
   * through `through` (it must pass them on unchanged, and may slow them: bounded memory) and hands `result` to restore()
   * as `stagedRead`; `result` must settle once `through` ends or is destroyed.
   */
  readWhileStaging?(input: StagingReadInput<C>): StagingRead | null;
  /**
   * Bytes the staging folder holds for `entry` while this target restores it, for the free-space preflight. Absent:
   * the plaintext, plus the stored bytes when staged compressed (a target may decompress that into a file beside it).
   */
  stagingBytes?(entry: ManifestComponent, component: C): number;
  /** `entry`: the snapshot's component the drill restores into it, so the scratch target can fit it (a server version). */
  scratch(input: { component: C; config: Config; dir: string; entry?: ManifestComponent; signal?: AbortSignal }): Promise<ScratchTarget<C>>;
  /** A copy of the component restoring to another address (`--target NAME=HOST:PORT`); absent when the kind has none. */
  retarget?(component: C, address: { host: string; port: number }): C;
}

/** The service checks (gateway and dashboard over HTTP): run by name against the configured services. */
export type ServiceCheck = (name: CheckName, config: Config, signal: AbortSignal) => Promise<CheckResult>;
