import type { Store } from '../interfaces/store.js';
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
