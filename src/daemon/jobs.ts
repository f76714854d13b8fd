import type { BackupResult } from '../core/backup.js';

/**
 * What the daemon runs. Injected so the scheduling, leadership and health logic can be tested with
 * stand-ins; `real-jobs.ts` wires the real services.
 *
 * Contracts, for every method:
 * - It is called at most once at a time per job (the daemon never overlaps runs of the same job).
 * - It must honour `signal`: on abort it stops promptly, cleans up what it started (a backup leaves no
 *   snapshot objects behind), and rejects (with an AbortError or a TykdrError of kind 'interrupted').
 * - It rejects on failure with an error whose message names what failed; messages may be logged and sent
 *   to webhooks (after redaction), so they must not contain secrets.
 * - It is not retried by the daemon: the next scheduled slot is the retry.
 */
export interface Jobs {
  /** One snapshot of exactly these configured components. */
  backup(components: string[], signal: AbortSignal): Promise<BackupResult>;
  /** Applies config.retention to the store. */
  prune(signal: AbortSignal): Promise<JobSummary>;
  /** Re-reads and checks a random sample (percent of complete snapshots) of the store. */
  verify(samplePercent: number, signal: AbortSignal): Promise<JobSummary>;
  /** 'components': one drill per component plan (monthly); 'full': the full simulation (quarterly). */
  drill(kind: DrillKind, signal: AbortSignal): Promise<DrillOutcomes>;
  /**
   * Optional: drills already on record (newest first), read once at start so the drill metrics survive a
   * restart. May reject; the daemon then starts without them.
   */
  drillHistory?(signal: AbortSignal): Promise<DrillRecordSummary[]>;
  /**
   * Optional: copies a new snapshot to every copy store with `auto` (none configured: resolves ok with nothing
   * done), each copy read back and compared with its manifest. Resolves not ok when a copy failed.
   */
  copy?(snapshotId: string, signal: AbortSignal): Promise<JobSummary & { copied: string[] }>;
  /** Optional: the newest complete snapshot of every store (primary first), for /metrics. May reject. */
  storesLatest?(signal: AbortSignal): Promise<Array<{ store: string; latest: Date | null }>>;
}

export interface DrillRecordSummary {
  plan: string;
  passed: boolean;
  rtoSeconds: number | null;
  finishedAt: Date;
}

export type DrillKind = 'components' | 'full';

/** The result of a job that only needs a line in the log (prune, verify). */
export interface JobSummary {
  /** false when the job ran but found a problem (e.g. a corrupt snapshot): logged as an error and counted as a failure. */
  ok: boolean;
  message: string;
  details?: Record<string, unknown>;
}

export interface DrillPlanOutcome {
  plan: string;
  passed: boolean;
  /** Measured RTO (seconds), when the drill got far enough to measure it. */
  rtoSeconds: number | null;
  snapshot?: string;
  /** Why it failed. */
  reason?: string;
  details?: Record<string, unknown>;
}

export interface DrillOutcomes {
  plans: DrillPlanOutcome[];
}

/** The names the daemon knows jobs by (logs, metrics, --job). Backup jobs are "backup:<components>". */
export const JOB_KINDS = ['backup', 'prune', 'verify', 'drill-components', 'drill-full'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
