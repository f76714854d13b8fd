import { describeLock, type ObjectInfo, type ObjectLock, type Store } from '../interfaces/store.js';
import { listSnapshots, type SnapshotSummary } from '../catalog.js';
import { isAbortError } from '../errors.js';
import { manifestKey, snapshotPrefix } from '../layout.js';
import { reportKey } from '../restore/report-files.js';
import { drillPassedIds } from './drills.js';
import { planRetention, type RetentionPolicy } from './policy.js';

export interface PruneOptions {
  store: Store;
  policy: RetentionPolicy;
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
}

export interface PruneEntry {
  id: string;
  complete: boolean;
  createdAt: Date;
  components: string[];
  objects: number;
  storedBytes: number;
  keep: boolean;
  reasons: string[];
  /** Set for every snapshot that is not kept. */
  removal?: Removal;
}

export interface PruneResult {
  dryRun: boolean;
  location: string;
  /** Every snapshot, newest first, with its decision. */
  snapshots: PruneEntry[];
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
}

/**
 * Applies the retention policy to a store. The drill-passed guard reads the drill reports stored next to
 * the snapshots. A snapshot is removed manifest FIRST, so an interrupted prune leaves an incomplete
 * snapshot (which is never restored, and is removed by a later prune) rather than a complete-looking
 * one with missing objects; then its other objects, then its reports (reports/<id>/).
 * A locked object is skipped and reported, never counted as deleted, and does not fail the prune.
 */
export async function pruneSnapshots(opts: PruneOptions): Promise<PruneResult> {
  const { store, signal } = opts;
  const now = opts.now ?? new Date();
  const snapshots = await listSnapshots(store, signal);
  const drillPassed = await drillPassedIds(store, { among: new Set(snapshots.filter((s) => s.complete).map((s) => s.id)), signal });
  const decisions = new Map(planRetention(snapshots, opts.policy, { now, drillPassed }).map((d) => [d.id, d]));

  const entries: PruneEntry[] = [];
  for (const s of snapshots) {
    const d = decisions.get(s.id)!;
    const entry: PruneEntry = {
      id: s.id,
      complete: s.complete,
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
        entry.removal = await removeSnapshot(store, s, signal);
        opts.progress?.removed?.(s.id, entry.removal);
      } else {
        entry.removal = await previewRemoval(store, s, signal);
      }
    }
    entries.push(entry);
  }

  const gone = entries.filter((e) => e.removal);
  return {
    dryRun: !opts.confirm,
    location: store.location,
    snapshots: entries,
    totals: {
      kept: entries.length - gone.length,
      toRemove: gone.length,
      removed: gone.filter((e) => e.removal!.status === 'removed').length,
      locked: gone.filter((e) => e.removal!.status === 'locked' || e.removal!.status === 'partly-removed').length,
      failed: gone.filter((e) => e.removal!.status === 'failed').length,
      objects: gone.reduce((n, e) => n + e.removal!.objects, 0),
      bytes: gone.reduce((n, e) => n + e.removal!.bytes, 0),
    },
  };
}

async function objectsOf(store: Store, id: string, signal?: AbortSignal): Promise<{ snapshot: ObjectInfo[]; reports: ObjectInfo[] }> {
  const collect = async (prefix: string) => {
    const out: ObjectInfo[] = [];
    for await (const o of store.list(prefix, { signal })) out.push(o);
    return out;
  };
  return { snapshot: await collect(snapshotPrefix(id)), reports: await collect(reportKey(id, '')) };
}

/** Dry run: what would be deleted, and whether the manifest's lock would stop it today. */
async function previewRemoval(store: Store, s: SnapshotSummary, signal?: AbortSignal): Promise<Removal> {
  const { snapshot, reports } = await objectsOf(store, s.id, signal);
  const all = [...snapshot, ...reports];
  const removal: Removal = { status: 'would-remove', objects: all.length, bytes: all.reduce((n, o) => n + o.size, 0), locked: [] };
  if (snapshot.some((o) => o.key === manifestKey(s.id))) {
    const lock = (await store.stat(manifestKey(s.id), { signal }))?.lock;
    if (lock) removal.locked.push({ key: manifestKey(s.id), lock, detail: describeLock(lock) });
  }
  return removal;
}

async function removeSnapshot(store: Store, s: SnapshotSummary, signal?: AbortSignal): Promise<Removal> {
  const removal: Removal = { status: 'removed', objects: 0, bytes: 0, locked: [] };
  try {
    const { snapshot, reports } = await objectsOf(store, s.id, signal);
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
