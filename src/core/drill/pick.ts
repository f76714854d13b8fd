import { listSnapshots } from '../catalog.js';
import { badInput } from '../errors.js';
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
 * not matter.
 */
export async function pickRandomSnapshot(store: Store, pick: RandomPick, now: Date, signal?: AbortSignal): Promise<Picked> {
  const since = now.getTime() - pick.withinMs;
  const candidates = (await listSnapshots(store, signal))
    .filter((s) => s.complete && s.manifest && s.createdAt.getTime() >= since)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
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
