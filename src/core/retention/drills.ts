import type { Store } from '../interfaces/store.js';
import { isSnapshotId } from '../layout.js';

const DRILL_REPORT = /^drill-[A-Za-z0-9._-]+\.json$/;
/** The folder reportKey() writes into: reports/<snapshot-id>/<name>. */
export const REPORTS_PREFIX = 'reports/';

/**
 * Ids of the snapshots that passed a drill: those with a `reports/<id>/drill-*.json` in the store that is
 * a drill report for that very snapshot with status "succeeded" (a dry run proves nothing). A report that
 * cannot be read or parsed counts as no pass. Only ids in `among` are looked at, when given.
 */
export async function drillPassedIds(store: Store, opts: { among?: ReadonlySet<string>; signal?: AbortSignal } = {}): Promise<Set<string>> {
  const prefix = REPORTS_PREFIX;
  const candidates: Array<{ id: string; key: string }> = [];
  for await (const o of store.list(prefix, { signal: opts.signal })) {
    const [id, name, ...rest] = o.key.slice(prefix.length).split('/');
    if (id === undefined || name === undefined || rest.length > 0 || !isSnapshotId(id) || !DRILL_REPORT.test(name)) continue;
    if (opts.among && !opts.among.has(id)) continue;
    candidates.push({ id, key: o.key });
  }
  const passed = new Set<string>();
  for (const c of candidates) {
    if (passed.has(c.id)) continue;
    if (await isPassedDrill(store, c.key, c.id, opts.signal)) passed.add(c.id);
  }
  return passed;
}

async function isPassedDrill(store: Store, key: string, id: string, signal?: AbortSignal): Promise<boolean> {
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of await store.get(key, { signal })) {
      chunks.push(c as Buffer);
      size += (c as Buffer).length;
      if (size > 16 * 1024 * 1024) return false; // no report is that big
    }
    const r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const snapshot = r.snapshot as { id?: unknown } | undefined;
    return r.kind === 'drill' && r.status === 'succeeded' && r.dry_run !== true && snapshot?.id === id;
  } catch {
    signal?.throwIfAborted();
    return false;
  }
}
