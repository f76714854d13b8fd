import { listSnapshots } from '../catalog.js';
import { badInput, storeError } from '../errors.js';
import type { Store } from '../interfaces/store.js';
import type { Manifest } from '../manifest.js';

/** `drill --pick random --within 30d [--seed N]`: which older recovery point to prove. */
export interface RandomPick {
  within: string;
  withinMs: number;
  /** Absent: one is drawn, and reported so the pick can be repeated. */
  seed?: number;
}

export interface Picked {
  manifest: Manifest;
  seed: number;
  /** Snapshots it was picked from. */
  candidates: number;
  /** For the report and the output: "picked at random from N snapshots within 30d, seed S". */
  reason: string;
}

/**
 * A complete snapshot created within `within` of `now`, chosen with a seeded generator: the same seed over
 * the same snapshots picks the same one. Candidates are ordered by id, so the store's listing order does
 * not matter. A snapshot in the window whose manifest the store failed to give stops the pick (a storeError).
 */
export async function pickRandomSnapshot(store: Store, pick: RandomPick, now: Date, signal?: AbortSignal): Promise<Picked> {
  const since = now.getTime() - pick.withinMs;
  const listed = (await listSnapshots(store, signal)).filter((s) => s.createdAt.getTime() >= since);
  // A manifest the store failed to give may be a complete snapshot: a pick without it would not be the pick the seed
  // names, and the drill would pass over it in silence.
  const unreadable = listed.find((s) => s.unreadable);
  if (unreadable) {
    throw storeError(
      `the manifest of snapshot ${unreadable.id} in ${store.location} could not be read (${unreadable.problem ?? 'unknown'}), so no random pick within ${pick.within} can be made`,
      `check the store, then run the drill again; or drill that snapshot by id with --snapshot ${unreadable.id}`,
    );
  }
  const candidates = listed.filter((s) => s.complete && s.manifest).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (candidates.length === 0) {
    throw badInput(`no complete snapshot within ${pick.within} in ${store.location}`, 'widen --within, or list them with `tykdr snapshots`');
  }
  const seed = pick.seed ?? Math.floor(Math.random() * 2 ** 31);
  const index = Math.floor(mulberry32(seed)() * candidates.length);
  const n = candidates.length;
  return {
    manifest: candidates[index]!.manifest!,
    seed,
    candidates: n,
    reason: `picked at random from ${n} snapshot${n === 1 ? '' : 's'} within ${pick.within}, seed ${seed}`,
  };
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1), the same sequence for the same seed everywhere. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
