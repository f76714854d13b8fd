import type { Store } from '../interfaces/store.js';
import { MANIFEST_NAME, parseKey, SNAPSHOTS_PREFIX } from '../layout.js';
import { formatBytes } from '../duration.js';
import { checkStoredSnapshot, copySnapshot, type CopyResult } from './copy.js';

export interface CopyManyResult extends CopyResult {
  /** With `check`: what was read back from the destination and matched the manifest. */
  checked?: { objects: number; bytes: number };
}

/**
 * Copies snapshots one after another (oldest first, so an interrupted run leaves the older ones complete), each
 * optionally read back from the destination. The first failure stops the run and rejects: a copy that
 * failed is never reported as made.
 */
export async function copySnapshots(opts: {
  from: Store;
  to: Store;
  ids: string[];
  check?: boolean;
  signal?: AbortSignal;
  note?(line: string): void;
}): Promise<CopyManyResult[]> {
  const out: CopyManyResult[] = [];
  for (const id of opts.ids) {
    opts.note?.(`copying ${id} from ${opts.from.location} to ${opts.to.location}`);
    let moved = 0;
    let lastShown = 0;
    const r: CopyManyResult = await copySnapshot({
      from: opts.from,
      to: opts.to,
      id,
      signal: opts.signal,
      progress: {
        objectStarted: (o) => opts.note?.(`  ${o.name} (${formatBytes(o.bytes)})`),
        bytes: (n) => {
          moved += n;
          if (moved - lastShown >= 256 * 1024 * 1024) {
            lastShown = moved;
            opts.note?.(`    ${formatBytes(moved)} moved`);
          }
        },
        objectDone: (o) => {
          if (o.status === 'present') opts.note?.(`    already there with the manifest's bytes`);
        },
      },
    });
    if (opts.check) r.checked = await checkStoredSnapshot(opts.to, id, opts.signal);
    out.push(r);
  }
  return out;
}

/**
 * Complete snapshots of `from` that `to` does not hold complete (oldest first, at most `limit`, the newest of
 * them): from the two stores' key listings only, no manifest read.
 */
export async function missingSnapshots(from: Store, to: Store, signal?: AbortSignal, limit = 20): Promise<string[]> {
  const complete = async (s: Store) => {
    const ids = new Set<string>();
    for await (const o of s.list(SNAPSHOTS_PREFIX, { signal })) {
      const k = parseKey(o.key);
      if (k?.name === MANIFEST_NAME) ids.add(k.id);
    }
    return ids;
  };
  const [have, there] = await Promise.all([complete(from), complete(to)]);
  return [...have].filter((id) => !there.has(id)).sort().slice(-limit);
}
