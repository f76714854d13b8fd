import type { ObjectInfo, Store } from '../interfaces/store.js';
import { isAbortError } from '../errors.js';
import { requireDuration } from '../duration.js';
import { isSnapshotId } from '../layout.js';
import { REPORTS_PREFIX } from './drills.js';

/**
 * Evidence retention. Restore and drill reports (reports/<snapshot-id>/<kind>-<run-id>.json|md|html and
 * their .sig) are what an auditor asks for, long after the snapshots they tested are gone: prune never
 * deletes one younger than evidence.keepWithin (default 400 days), whatever retention decides about its
 * snapshot. Older ones go with their snapshot, or, when the snapshot is already gone, in a later prune.
 */
export const DEFAULT_EVIDENCE_KEEP_WITHIN = '400d';

export interface EvidencePolicy {
  keepWithin: string;
}

/** Reports newer than this instant are evidence. */
export function evidenceCutoff(now: Date, policy: EvidencePolicy | undefined): Date {
  const keepWithin = policy?.keepWithin ?? DEFAULT_EVIDENCE_KEEP_WITHIN;
  return new Date(now.getTime() - requireDuration(keepWithin, 'evidence.keepWithin'));
}

const RUN_NAME = /^(?:restore|drill)-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-/;

/**
 * When a report object was made: the later of the store's time for it and the time in its run id (a name
 * that claims to be newer keeps it longer, never shorter).
 */
export function reportTime(o: ObjectInfo): Date {
  const name = o.key.slice(o.key.lastIndexOf('/') + 1);
  const m = RUN_NAME.exec(name);
  const named = m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : Number.NaN;
  return new Date(Number.isFinite(named) ? Math.max(named, o.modified.getTime()) : o.modified.getTime());
}

/** True when prune must keep this report object. */
export function isEvidence(o: ObjectInfo, cutoff: Date): boolean {
  return reportTime(o).getTime() > cutoff.getTime();
}

/** Splits a snapshot's report objects into those prune may delete and those it keeps as evidence. */
export function partitionReports(reports: ObjectInfo[], cutoff: Date): { expired: ObjectInfo[]; kept: ObjectInfo[] } {
  const kept = reports.filter((o) => isEvidence(o, cutoff));
  return { expired: reports.filter((o) => !kept.includes(o)), kept };
}

export interface ReportSweep {
  /** Report objects of snapshots no longer in the store, older than keepWithin: deleted (dry run: would be). */
  removed: number;
  bytes: number;
  /** Report objects of snapshots no longer in the store, kept as evidence. */
  kept: number;
  /** Locked ones (S3 Object Lock): left in place. */
  locked: number;
  error?: string;
}

/**
 * Reports whose snapshot is gone (no object under snapshots/<id>/ at all): deletes those older than the
 * cutoff, when `confirm`; keeps the rest. A store failure is returned, not thrown (prune goes on).
 */
export async function sweepOrphanReports(
  store: Store,
  opts: { snapshotIds: ReadonlySet<string>; cutoff: Date; confirm: boolean; signal?: AbortSignal },
): Promise<ReportSweep> {
  const sweep: ReportSweep = { removed: 0, bytes: 0, kept: 0, locked: 0 };
  try {
    const orphans: ObjectInfo[] = [];
    for await (const o of store.list(REPORTS_PREFIX, { signal: opts.signal })) {
      const id = o.key.slice(REPORTS_PREFIX.length).split('/')[0]!;
      if (isSnapshotId(id) && !opts.snapshotIds.has(id)) orphans.push(o);
    }
    const { expired, kept } = partitionReports(orphans, opts.cutoff);
    sweep.kept = kept.length;
    for (const o of expired) {
      if (!opts.confirm) {
        sweep.removed++;
        sweep.bytes += o.size;
        continue;
      }
      const r = await store.delete(o.key, { signal: opts.signal });
      if (r.status === 'deleted') {
        sweep.removed++;
        sweep.bytes += o.size;
      } else if (r.status === 'locked') sweep.locked++;
    }
  } catch (err) {
    if (isAbortError(err) || opts.signal?.aborted) throw err;
    sweep.error = (err as Error).message;
  }
  return sweep;
}
