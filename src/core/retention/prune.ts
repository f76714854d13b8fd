import { describeLock, type ObjectInfo, type ObjectLock, type Store, type UnfinishedUpload } from '../interfaces/store.js';
import { listSnapshots, type SnapshotSummary } from '../catalog.js';
import { requireDuration } from '../duration.js';
import { isAbortError, storeError, TykdrError } from '../errors.js';
import { manifestKey, parseStreamKey, snapshotPrefix, STREAMS_PREFIX } from '../layout.js';
import { reportKey } from '../restore/report-files.js';
import { drillPassedIds } from './drills.js';
import { evidenceCutoff, partitionReports, sweepOrphanReports, type EvidencePolicy, type ReportSweep } from './evidence.js';
import { planRetention, type RetentionPolicy } from './policy.js';

export interface PruneOptions {
  store: Store;
  policy: RetentionPolicy;
  /** evidence.keepWithin: reports younger than this are never deleted (default 400d). */
  evidence?: EvidencePolicy;
  /** Delete for real; otherwise a dry run that only says what would go. */
  confirm: boolean;
  /** Default: the current time. */
  now?: Date;
  signal?: AbortSignal;
  progress?: PruneProgress;
}

/** Progress of a confirmed prune; every method is optional. */
export interface PruneProgress {
  removing?(id: string): void;
  removed?(id: string, removal: Removal): void;
}

export interface LockedObject {
  key: string;
  lock: ObjectLock;
  /** "locked until 2026-12-21 (GOVERNANCE)". */
  detail: string;
}

/**
 * What happened to a snapshot retention let go:
 * - would-remove: dry run.
 * - removed: every object of it and its reports are gone.
 * - locked: nothing of it could be deleted. For a complete snapshot: its manifest is under Object Lock, so
 *   nothing of it was touched (it stays complete and usable); for an incomplete one: every object is locked.
 * - partly-removed: some objects are gone, others are locked. The manifest is always among the deleted
 *   ones, so the snapshot now reads as incomplete; a later prune removes the rest once retention ends.
 * - failed: the store failed; `error` says how. What was deleted before the failure is counted.
 */
export interface Removal {
  status: 'would-remove' | 'removed' | 'locked' | 'partly-removed' | 'failed';
  /** Objects deleted (dry run: objects that would be). */
  objects: number;
  /** Bytes freed (dry run: bytes that would be). */
  bytes: number;
  locked: LockedObject[];
  error?: string;
  /** Report objects (reports/<id>/) kept as evidence: younger than evidence.keepWithin. */
  evidenceKept?: number;
}

export interface PruneEntry {
  id: string;
  complete: boolean;
  /** Not complete, but its manifest is there: damaged, or in a newer format (kept: retention/policy.ts). */
  damaged?: boolean;
  newerFormat?: boolean;
  createdAt: Date;
  components: string[];
  objects: number;
  storedBytes: number;
  keep: boolean;
  reasons: string[];
  /** Set for every snapshot that is not kept. */
  removal?: Removal;
}

/**
 * A write that never finished (an S3 multipart upload, a local ".partial-" file), and what prune did to
 * it. Only those older than retention.incompleteGrace are `stale`; younger ones may belong to a backup
 * that is running right now and are left alone.
 */
export interface UnfinishedEntry {
  key: string;
  id: string;
  since: Date;
  bytes?: number;
  stale: boolean;
  /** For stale ones: would-remove (dry run), removed, missing (gone meanwhile), failed (`error` says why). */
  action?: 'would-remove' | 'removed' | 'missing' | 'failed';
  error?: string;
}

export interface UnfinishedSweep {
  /** retention.incompleteGrace, as written. */
  grace: string;
  entries: UnfinishedEntry[];
  /** Set when the store could not list its unfinished writes (nothing was removed then). */
  error?: string;
  /** How to fix `error`, when known. */
  fix?: string;
  totals: { stale: number; removed: number; failed: number; bytes: number };
}

export interface PruneResult {
  dryRun: boolean;
  location: string;
  /** Every snapshot, newest first, with its decision. */
  snapshots: PruneEntry[];
  /** Writes that never finished, oldest first; the stale ones are removed with --confirm. */
  unfinished: UnfinishedSweep;
  totals: {
    kept: number;
    /** Snapshots retention lets go (whatever happened to them). */
    toRemove: number;
    removed: number;
    locked: number;
    failed: number;
    /** Objects and bytes deleted (dry run: that would be). */
    objects: number;
    bytes: number;
  };
  /** Reports of snapshots already gone: removed once older than evidence.keepWithin, kept until then. */
  orphanReports: ReportSweep;
}

/**
 * Applies the retention policy to a store. The drill-passed guard reads the drill reports stored next to
 * the snapshots. A snapshot is removed manifest FIRST, so an interrupted prune leaves an incomplete
 * snapshot (which is never restored, and is removed by a later prune) rather than a complete-looking
 * one with missing objects; then its other objects, then its reports (reports/<id>/) older than
 * evidence.keepWithin: younger reports are evidence and stay (retention/evidence.ts), and are removed by
 * a later prune once they are older.
 * A locked object is skipped and reported, never counted as deleted, and does not fail the prune.
 * Then writes that never finished (Store.listUnfinished: multipart uploads and partial files a crash
 * left) are swept: those older than retention.incompleteGrace are removed (listed in a dry run).
 */
export async function pruneSnapshots(opts: PruneOptions): Promise<PruneResult> {
  const { store, signal } = opts;
  const now = opts.now ?? new Date();
  const snapshots = await listSnapshots(store, signal);
  // A snapshot whose manifest is there but could not be read is not known to be incomplete: deleting it as one (after
  // retention.incompleteGrace), or counting retention without it, could remove a complete snapshot. Nothing is pruned.
  const unreadable = snapshots.filter((s) => s.unreadable);
  if (unreadable.length > 0) {
    throw storeError(
      `the manifest of ${unreadable.length === 1 ? 'snapshot' : `${unreadable.length} snapshots, the first`} ${unreadable[0]!.id} in ${store.location} could not be read (${unreadable[0]!.problem}); nothing was pruned`,
      'prune again when the store answers again; `tykdr snapshots` lists the snapshots it can read',
    );
  }
  const drillPassed = await drillPassedIds(store, { among: new Set(snapshots.filter((s) => s.complete).map((s) => s.id)), signal });
  const decisions = new Map(planRetention(snapshots, opts.policy, { now, drillPassed }).map((d) => [d.id, d]));
  // A point-in-time chain (streams/<id>/) replays onto its base snapshot (the same id): without it, no time
  // inside the chain can be restored. Chains have no retention of their own yet, so their bases stay.
  for (const id of await chainBases(store, signal)) {
    const d = decisions.get(id);
    if (d && snapshots.some((x) => x.id === id && x.complete)) {
      if (!d.keep) d.reasons = [];
      d.keep = true;
      d.reasons.push(`base of point-in-time chain ${STREAMS_PREFIX}${id}/`);
    }
  }
  const cutoff = evidenceCutoff(now, opts.evidence);

  const entries: PruneEntry[] = [];
  for (const s of snapshots) {
    const d = decisions.get(s.id)!;
    const entry: PruneEntry = {
      id: s.id,
      complete: s.complete,
      ...(s.damaged ? { damaged: true } : {}),
      ...(s.newerFormat ? { newerFormat: true } : {}),
      createdAt: s.createdAt,
      components: s.components,
      objects: s.objects,
      storedBytes: s.storedBytes,
      keep: d.keep,
      reasons: d.reasons,
    };
    if (!d.keep) {
      if (opts.confirm) {
        opts.progress?.removing?.(s.id);
        entry.removal = await removeSnapshot(store, s, cutoff, signal);
        opts.progress?.removed?.(s.id, entry.removal);
      } else {
        entry.removal = await previewRemoval(store, s, cutoff, signal);
      }
    }
    entries.push(entry);
  }

  const unfinished = await sweepUnfinished(store, opts.policy.incompleteGrace, { now, confirm: opts.confirm, signal });

  const orphanReports = await sweepOrphanReports(store, { snapshotIds: new Set(snapshots.map((x) => x.id)), cutoff, confirm: opts.confirm, signal });
  const gone = entries.filter((e) => e.removal);
  return {
    dryRun: !opts.confirm,
    location: store.location,
    snapshots: entries,
    unfinished,
    totals: {
      kept: entries.length - gone.length,
      toRemove: gone.length,
      removed: gone.filter((e) => e.removal!.status === 'removed').length,
      locked: gone.filter((e) => e.removal!.status === 'locked' || e.removal!.status === 'partly-removed').length,
      failed: gone.filter((e) => e.removal!.status === 'failed').length,
      objects: gone.reduce((n, e) => n + e.removal!.objects, 0),
      bytes: gone.reduce((n, e) => n + e.removal!.bytes, 0),
    },
    orphanReports,
  };
}

/** Lists every unfinished write in the store; with `confirm`, removes those older than the grace. */
export async function sweepUnfinished(
  store: Store,
  grace: string,
  opts: { now: Date; confirm: boolean; signal?: AbortSignal },
): Promise<UnfinishedSweep> {
  const graceMs = requireDuration(grace, 'retention.incompleteGrace');
  const sweep: UnfinishedSweep = { grace, entries: [], totals: { stale: 0, removed: 0, failed: 0, bytes: 0 } };
  const found: UnfinishedUpload[] = [];
  try {
    for await (const u of store.listUnfinished('', { signal: opts.signal })) found.push(u);
  } catch (err) {
    if (isAbortError(err) || opts.signal?.aborted) throw err;
    sweep.error = `cannot list unfinished uploads: ${(err as Error).message}`;
    sweep.fix =
      err instanceof TykdrError && err.fix ? err.fix : 'for S3, grant s3:ListBucketMultipartUploads, s3:ListMultipartUploadParts and s3:AbortMultipartUpload to the credentials that prune';
    return sweep;
  }
  found.sort((a, b) => a.since.getTime() - b.since.getTime() || (a.key < b.key ? -1 : 1));
  for (const u of found) {
    const stale = opts.now.getTime() - u.since.getTime() > graceMs;
    const entry: UnfinishedEntry = { key: u.key, id: u.id, since: u.since, ...(u.bytes === undefined ? {} : { bytes: u.bytes }), stale };
    sweep.entries.push(entry);
    if (!stale) continue;
    sweep.totals.stale++;
    sweep.totals.bytes += u.bytes ?? 0;
    if (!opts.confirm) {
      entry.action = 'would-remove';
      continue;
    }
    try {
      entry.action = await store.removeUnfinished(u, { signal: opts.signal });
      if (entry.action === 'removed') sweep.totals.removed++;
    } catch (err) {
      if (isAbortError(err) || opts.signal?.aborted) throw err;
      entry.action = 'failed';
      entry.error = (err as Error).message;
      sweep.totals.failed++;
    }
  }
  return sweep;
}

/** A snapshot's objects, and its reports old enough to go (`kept`: how many are evidence and stay). */
async function objectsOf(store: Store, id: string, cutoff: Date, signal?: AbortSignal): Promise<{ snapshot: ObjectInfo[]; reports: ObjectInfo[]; kept: number }> {
  const collect = async (prefix: string) => {
    const out: ObjectInfo[] = [];
    for await (const o of store.list(prefix, { signal })) out.push(o);
    return out;
  };
  const { expired, kept } = partitionReports(await collect(reportKey(id, '')), cutoff);
  return { snapshot: await collect(snapshotPrefix(id)), reports: expired, kept: kept.length };
}

/** Dry run: what would be deleted, and whether the manifest's lock would stop it today. */
async function previewRemoval(store: Store, s: SnapshotSummary, cutoff: Date, signal?: AbortSignal): Promise<Removal> {
  const { snapshot, reports, kept } = await objectsOf(store, s.id, cutoff, signal);
  const all = [...snapshot, ...reports];
  const removal: Removal = { status: 'would-remove', objects: all.length, bytes: all.reduce((n, o) => n + o.size, 0), locked: [], ...(kept ? { evidenceKept: kept } : {}) };
  if (snapshot.some((o) => o.key === manifestKey(s.id))) {
    const lock = (await store.stat(manifestKey(s.id), { signal }))?.lock;
    if (lock) removal.locked.push({ key: manifestKey(s.id), lock, detail: describeLock(lock) });
  }
  return removal;
}

async function removeSnapshot(store: Store, s: SnapshotSummary, cutoff: Date, signal?: AbortSignal): Promise<Removal> {
  const removal: Removal = { status: 'removed', objects: 0, bytes: 0, locked: [] };
  try {
    const { snapshot, reports, kept } = await objectsOf(store, s.id, cutoff, signal);
    if (kept) removal.evidenceKept = kept;
    const manifest = snapshot.find((o) => o.key === manifestKey(s.id));
    const rest = [...snapshot.filter((o) => o !== manifest), ...reports];
    if (manifest) {
      const r = await store.delete(manifest.key, { signal });
      if (r.status === 'locked') {
        // Deleting the other objects would leave a complete-looking snapshot with holes: keep all of it.
        removal.status = 'locked';
        removal.locked.push({ key: manifest.key, lock: r.lock, detail: describeLock(r.lock) });
        return removal;
      }
      if (r.status === 'deleted') count(removal, manifest);
    }
    for (const o of rest) {
      const r = await store.delete(o.key, { signal });
      if (r.status === 'deleted') count(removal, o);
      else if (r.status === 'locked') removal.locked.push({ key: o.key, lock: r.lock, detail: describeLock(r.lock) });
    }
    if (removal.locked.length > 0) removal.status = removal.objects === 0 ? 'locked' : 'partly-removed';
  } catch (err) {
    if (isAbortError(err) || signal?.aborted) throw err;
    removal.status = 'failed';
    removal.error = (err as Error).message;
  }
  return removal;
}

function count(r: Removal, o: ObjectInfo): void {
  r.objects++;
  r.bytes += o.size;
}

/** Ids of the snapshots that are the base of a point-in-time chain (a streams/<id>/chain.json exists). */
async function chainBases(store: Store, signal?: AbortSignal): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const o of store.list(STREAMS_PREFIX, { signal })) {
    const k = parseStreamKey(o.key);
    if (k?.name === 'chain.json') out.add(k.chain);
  }
  return out;
}
