import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Bulk bytes (the plaintext a backup, or a point-in-time stream's segment, writes) moved between two young-generation
 * collections.
 *
 * Why: every chunk a stream reads or makes (socket reads, zstd and age output) is a Buffer whose memory lives
 * outside V8's heap and is freed only when a collection finds its small JS object dead. The objects are few, so the
 * young generation rarely fills; V8 collects for the outside memory's sake only after about 32 MB of it has piled up
 * (`node --trace-gc`: "external memory pressure" every 180 ms of a 110 MB/s backup). That pile is most of a backup's
 * memory above start-up. Asking for a minor collection every 8 MiB bounds the pile at about that: 18 MB less for a
 * 1,000,000-key backup, for about 0.1 CPU-s (89 collections of 1-1.6 ms; bench/README.md, "Dropped buffers freed every
 * 8 MiB"). Not in a restore: there the collections cost the main thread 0.56 s more for a 690 MB RDB (restore/staging.ts).
 */
export const COLLECT_EVERY_BYTES = 8 * 1024 * 1024;

type Collect = () => void;
let collect: Collect | null | undefined;
let moved = 0;

/**
 * V8's own `gc` function, asked for a minor (young-generation) collection. Exposed for a new context only (the flag
 * is set back at once, so no other context gains a `gc` global); null when this V8 does not give one.
 */
function minorCollector(): Collect | null {
  const existing = (globalThis as { gc?: unknown }).gc;
  try {
    let gc = existing;
    if (typeof gc !== 'function') {
      v8.setFlagsFromString('--expose-gc');
      try {
        gc = vm.runInNewContext('typeof gc === "function" ? gc : undefined');
      } finally {
        v8.setFlagsFromString('--no-expose-gc');
      }
    }
    if (typeof gc !== 'function') return null;
    const fn = gc as (opts: { type: 'minor' }) => void;
    return () => {
      try {
        fn({ type: 'minor' });
      } catch {
        // A V8 whose gc refuses the call: the chunks are freed as V8 decides, as without this module.
        collect = null;
      }
    };
  } catch {
    return null;
  }
}

/**
 * Counts bulk bytes moved; every COLLECT_EVERY_BYTES of them, a minor collection frees the chunks already dropped.
 * Call it from one place per data path (the plaintext tap), with each chunk's length.
 */
export function bulkBytesMoved(n: number): void {
  moved += n;
  if (moved < COLLECT_EVERY_BYTES) return;
  moved = 0;
  // undefined: not looked for yet; null: none to be had here (looked for once only).
  if (collect === undefined) collect = minorCollector();
  collect?.();
}

/** For tests: whether a minor collection can be asked for here. */
export function canCollect(): boolean {
  if (collect === undefined) collect = minorCollector();
  return collect !== null;
}
