import type { Config, CopyStore, Store as StoreConfig } from '../config/load.js';
import { isSnapshotId, MANIFEST_NAME, manifestKey, parseKey, SNAPSHOTS_PREFIX } from '../layout.js';
import { badInput, TykdrError } from '../errors.js';
import type { Store } from '../interfaces/store.js';
import { oneLine } from '../util/text.js';

/** The name of the `store` section among the named stores; the copies are named in `copies`. */
export const PRIMARY = 'primary';

export interface NamedStoreConfig {
  name: string;
  cfg: StoreConfig;
  /** Set for a copy store (absent for the primary). */
  copy?: CopyStore;
}

/** Every store of the config, primary first, then the copies in config order. */
export function namedStores(config: Pick<Config, 'store' | 'copies'>): NamedStoreConfig[] {
  return [{ name: PRIMARY, cfg: config.store }, ...Object.entries(config.copies ?? {}).map(([name, c]) => ({ name, cfg: c, copy: c }))];
}

/** The store called `name`, or bad input listing the names there are. */
export function namedStore(config: Pick<Config, 'store' | 'copies'>, name: string): NamedStoreConfig {
  const all = namedStores(config);
  const found = all.find((s) => s.name === name);
  if (!found) {
    throw badInput(
      `no store named "${name}" in ${(config as Partial<Config>).file ?? 'the config'}`,
      `use one of: ${all.map((s) => s.name).join(', ')} ("primary" is the store section; copies are named under copies:)`,
    );
  }
  return found;
}

export interface ChosenStore {
  name: string;
  store: Store;
  /** Stores tried first that could not be used, with why (for the output and the report). */
  skipped: Array<{ name: string; location: string; reason: string }>;
}

export interface ChooseStoreOptions {
  /** --store: the store to try first (default primary). */
  preferred?: string;
  /** Try the other stores when the preferred one cannot be used (default true). */
  fallback?: boolean;
  /** The snapshot the caller wants (an id); absent or "latest": any complete snapshot will do. */
  snapshot?: string;
  /** Longest wait for one store's listing (default 30 s): a dead store must not eat the RTO. */
  probeTimeoutMs?: number;
  signal?: AbortSignal;
  note?(line: string): void;
}

/**
 * The store a restore or a drill reads: the preferred one (or primary) when it can be listed and holds the
 * wanted snapshot (any complete one for "latest"); otherwise the next store in config order that does, each
 * store passed over said in `note`. With one store (no copies) it is returned unprobed: the caller's own reads
 * give the usual errors. When no store will do, the error names each store and why.
 */
export async function chooseStore(
  config: Pick<Config, 'store' | 'copies'>,
  openStore: (cfg: StoreConfig) => Store,
  opts: ChooseStoreOptions = {},
): Promise<ChosenStore> {
  const first = namedStore(config, opts.preferred ?? PRIMARY);
  const others = opts.fallback === false ? [] : namedStores(config).filter((s) => s.name !== first.name);
  if (others.length === 0) return { name: first.name, store: openStore(first.cfg), skipped: [] };
  const wanted = opts.snapshot !== undefined && opts.snapshot !== 'latest' ? opts.snapshot : undefined;
  // Not an id at all: the caller's own read says so, naming the value.
  if (wanted !== undefined && !isSnapshotId(wanted)) return { name: first.name, store: openStore(first.cfg), skipped: [] };
  const limitMs = opts.probeTimeoutMs ?? 30_000;
  const skipped: ChosenStore['skipped'] = [];
  let unreachable = false;
  for (const c of [first, ...others]) {
    const store = openStore(c.cfg);
    const timeout = AbortSignal.timeout(limitMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let reason: string;
    try {
      if (await holdsSnapshot(store, wanted, signal)) {
        if (skipped.length > 0) opts.note?.(`using store "${c.name}" (${store.location}) instead`);
        return { name: c.name, store, skipped };
      }
      reason = wanted === undefined ? 'it holds no complete snapshot' : `it holds no complete snapshot ${wanted}`;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      unreachable = true;
      reason = timeout.aborted ? `no answer within ${Math.round(limitMs / 1000)}s` : oneLine(err instanceof Error ? err.message : String(err));
    }
    skipped.push({ name: c.name, location: store.location, reason });
    opts.note?.(`store "${c.name}" (${store.location}) cannot be used: ${reason}`);
  }
  throw new TykdrError(unreachable ? 'storeError' : 'badInput', `no store will do: ${skipped.map((s) => `"${s.name}" (${s.location}): ${s.reason}`).join('; ')}`, {
    fix: unreachable ? 'check the endpoints and credentials of the store and its copies' : 'list the snapshots with `tykdr snapshots --store NAME`',
  });
}

/**
 * Whether a store holds the snapshot (a manifest for `wanted`), or any complete snapshot: one stat, or a listing
 * that stops at the first manifest. Cheap on purpose: the probe must not read every manifest of a large store.
 */
async function holdsSnapshot(store: Store, wanted: string | undefined, signal: AbortSignal): Promise<boolean> {
  if (wanted !== undefined) return (await store.stat(manifestKey(wanted), { signal })) !== null;
  for await (const o of store.list(SNAPSHOTS_PREFIX, { signal })) {
    if (parseKey(o.key)?.name === MANIFEST_NAME) return true;
  }
  return false;
}
