import type { Store } from '../interfaces/store.js';
import type { RestoreReport } from '../restore/types.js';

export interface DrillRecord {
  id: string;
  plan: string;
  snapshot: string;
  status: RestoreReport['status'];
  finishedAt: string;
  rtoSeconds: number | null;
  rtoObjectiveSeconds: number;
  rtoMet: boolean | null;
  /** Change of the measured RTO against the previous drill of the same plan (seconds), when both have one. */
  rtoTrendSeconds: number | null;
  checks: { passed: number; failed: number; skipped: number };
}

/** Every drill report stored next to the snapshots (reports/<snapshot>/drill-*.json), newest first. */
export async function listDrills(store: Store, opts: { plan?: string; signal?: AbortSignal } = {}): Promise<DrillRecord[]> {
  const reports: RestoreReport[] = [];
  for await (const o of store.list('reports/', { signal: opts.signal })) {
    if (!/\/drill-[^/]+\.json$/.test(o.key)) continue;
    try {
      const chunks: Buffer[] = [];
      for await (const c of await store.get(o.key, { signal: opts.signal })) chunks.push(c as Buffer);
      const r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RestoreReport;
      if (r.kind === 'drill' && (!opts.plan || r.plan.name === opts.plan)) reports.push(r);
    } catch {
      // An unreadable report is left out of the history; prune and verify report store problems.
    }
  }
  reports.sort((a, b) => Date.parse(a.finished_at) - Date.parse(b.finished_at));
  const lastRto = new Map<string, number>();
  const out: DrillRecord[] = [];
  for (const r of reports) {
    const rto = r.rto.achievedSeconds;
    const prev = lastRto.get(r.plan.name);
    const all = r.steps.flatMap((s) => s.checks);
    out.push({
      id: r.id,
      plan: r.plan.name,
      snapshot: r.snapshot.id,
      status: r.status,
      finishedAt: r.finished_at,
      rtoSeconds: rto,
      rtoObjectiveSeconds: r.rto.objectiveSeconds,
      rtoMet: r.rto.met,
      rtoTrendSeconds: rto !== null && prev !== undefined ? rto - prev : null,
      checks: {
        passed: all.filter((c) => c.status === 'passed').length,
        failed: all.filter((c) => c.status === 'failed').length,
        skipped: all.filter((c) => c.status === 'skipped').length,
      },
    });
    if (rto !== null) lastRto.set(r.plan.name, rto);
  }
  return out.reverse();
}
