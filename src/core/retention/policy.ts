import type { z } from 'zod';
import type { SnapshotSummary } from '../catalog.js';
import type { retentionSchema } from '../config/operations.js';
import { requireDuration } from '../duration.js';
import { BUCKET_KINDS, bucketOf } from './buckets.js';

/** The `retention` section of tykdr.yaml, as validated (durations are still text: "7d"). */
export type RetentionPolicy = z.output<typeof retentionSchema>;

/** What retention says about one snapshot, and every reason why (a kept snapshot may have several). */
export interface RetentionDecision {
  id: string;
  keep: boolean;
  reasons: string[];
}

/** The part of a catalogue entry retention looks at. */
export type RetentionInput = Pick<SnapshotSummary, 'id' | 'complete' | 'createdAt' | 'components' | 'damaged' | 'newerFormat'>;

export interface RetentionOptions {
  now: Date;
  /** Ids of snapshots with a succeeded drill report. */
  drillPassed: ReadonlySet<string>;
}

/**
 * Decides which snapshots to keep, restic-style, and says why for each. Pure: no store, no clock.
 *
 * Only complete snapshots count toward a rule, ordered by manifest time (createdAt), newest first, never
 * by name; equal times fall back to the id (newest id first), so the result never depends on input order.
 * - keepLast N: the N newest.
 * - hourly/daily/weekly/monthly/yearly N: the newest snapshot in each of the N most recent UTC buckets
 *   (ISO weeks) that have one; empty buckets are skipped, not counted.
 * - keepWithin d: every snapshot newer than now - d.
 * - Always kept: the newest complete snapshot of each component (a `--component` backup holds only some),
 *   and the newest one that passed a drill.
 * Incomplete snapshots (no valid manifest) are removed once older than incompleteGrace, measured from the
 * time in their id; younger ones are kept, since a backup may still be writing them.
 *
 * Returns one decision per snapshot, newest first.
 */
export function planRetention(snapshots: readonly RetentionInput[], policy: RetentionPolicy, opts: RetentionOptions): RetentionDecision[] {
  const now = opts.now.getTime();
  const graceMs = requireDuration(policy.incompleteGrace, 'retention.incompleteGrace');
  const withinMs = policy.keepWithin === undefined ? undefined : requireDuration(policy.keepWithin, 'retention.keepWithin');
  const ordered = [...snapshots].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const reasons = new Map<string, string[]>(ordered.map((s) => [s.id, []]));
  const complete = ordered.filter((s) => s.complete);
  const keep = (s: RetentionInput, why: string) => reasons.get(s.id)!.push(why);

  complete.slice(0, policy.keepLast).forEach((s, i) => keep(s, `last ${i + 1} of ${policy.keepLast}`));

  for (const kind of BUCKET_KINDS) {
    const n = policy[kind];
    let last: string | undefined;
    let kept = 0;
    for (const s of complete) {
      if (kept >= n) break;
      const bucket = bucketOf(kind, s.createdAt);
      if (bucket === last) continue;
      last = bucket;
      kept++;
      keep(s, `${kind} ${bucket}`);
    }
  }

  if (withinMs !== undefined) {
    for (const s of complete) if (s.createdAt.getTime() > now - withinMs) keep(s, `within ${policy.keepWithin}`);
  }

  const seen = new Set<string>();
  for (const s of complete) {
    for (const c of [...s.components].sort()) {
      if (seen.has(c)) continue;
      seen.add(c);
      keep(s, `newest complete snapshot of component ${c}`);
    }
  }
  const drilled = complete.find((s) => opts.drillPassed.has(s.id));
  if (drilled) keep(drilled, 'newest snapshot that passed a drill');

  return ordered.map((s) => {
    // A manifest is there: not an unfinished backup. One a newer tykdr wrote is that version's to prune (an older tykdr
    // left running, or rolled back to, would otherwise delete every snapshot the newer one made); a damaged one is the
    // evidence of what happened to it (`tykdr verify --all` fails on it) until someone has looked.
    if (!s.complete && s.newerFormat) {
      return { id: s.id, keep: true, reasons: ['its manifest is in a newer format: prune it with the tykdr that wrote it'] };
    }
    if (!s.complete && s.damaged) {
      return {
        id: s.id,
        keep: true,
        reasons: [
          `its manifest is damaged: kept as evidence (\`tykdr verify --all\` fails on it); once inspected, delete snapshots/${s.id}/ from the store by hand, manifest.json first (a later prune sweeps its reports)`,
        ],
      };
    }
    if (!s.complete) {
      const old = now - s.createdAt.getTime() > graceMs;
      return {
        id: s.id,
        keep: !old,
        reasons: [old ? `incomplete, older than ${policy.incompleteGrace}` : `incomplete, not older than ${policy.incompleteGrace}: a backup may still be writing it`],
      };
    }
    const why = reasons.get(s.id)!;
    return why.length > 0 ? { id: s.id, keep: true, reasons: why } : { id: s.id, keep: false, reasons: ['no retention rule keeps it'] };
  });
}
