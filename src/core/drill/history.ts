import type { Store } from '../interfaces/store.js';
import { reportFileNames } from '../report/index.js';
import { reportKey } from '../restore/report-files.js';
import type { RestoreReport } from '../restore/types.js';

/** One line verdict of a drill: FAILED (a step failed), MISSED (an objective), NOT PROVEN (checks skipped), PASSED. */
export type DrillVerdict = 'PASSED' | 'FAILED' | 'MISSED' | 'NOT PROVEN';

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
  /** FAILED when a step failed, else MISSED when an objective was missed, else NOT PROVEN when checks were skipped. */
  verdict: DrillVerdict;
  /** Objectives missed and checks not proven (step/check), from the report's verdict. */
  missed: string[];
  notProven: string[];
  rtoTier: string;
  /** Incident to the first request served, when the drill measured it. */
  serviceRestoredSeconds: number | null;
  /** Each step's outcome: a component is proven by a step that is ok with a passed check and none failed. */
  steps: Array<{ id: string; component: string; status: RestoreReport['steps'][number]['status']; passed: number; failed: number; skipped: number }>;
  /** Store key of the drill's HTML report (reports/<snapshot>/drill-<id>.html). */
  reportKey: string;
}

export function drillVerdict(r: Pick<RestoreReport, 'status' | 'steps' | 'verdict' | 'rto' | 'rpo'>): DrillVerdict {
  if (r.steps.some((s) => s.status === 'failed')) return 'FAILED';
  if (r.verdict) {
    if (r.verdict.missed.length > 0) return 'MISSED';
  } else if (r.status === 'failed' && (r.rto.met === false || Object.values(r.rpo ?? {}).some((o) => o.met === false))) {
    return 'MISSED'; // a report from before verdicts existed
  }
  if (r.status === 'failed') return 'FAILED';
  const notProven = r.verdict ? r.verdict.not_proven.length > 0 : r.steps.some((s) => s.checks.some((c) => c.status === 'skipped'));
  return notProven ? 'NOT PROVEN' : 'PASSED';
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
  return drillRecords(reports);
}

/** Records of drill reports, newest first, each with the RTO trend against the previous drill of its plan. */
export function drillRecords(input: RestoreReport[]): DrillRecord[] {
  const reports = input.slice().sort((a, b) => Date.parse(a.finished_at) - Date.parse(b.finished_at));
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
      checks: count(all),
      verdict: drillVerdict(r),
      missed: r.verdict?.missed ?? [],
      notProven: r.verdict?.not_proven ?? [],
      rtoTier: r.rto.tier,
      serviceRestoredSeconds: r.rto.service_restored_seconds ?? null,
      steps: r.steps.map((st) => ({ id: st.id, component: st.component, status: st.status, ...count(st.checks) })),
      reportKey: reportKey(r.snapshot.id, reportFileNames(r).html),
    });
    if (rto !== null) lastRto.set(r.plan.name, rto);
  }
  return out.reverse();
}

function count(checks: Array<{ status: string }>): { passed: number; failed: number; skipped: number } {
  return {
    passed: checks.filter((c) => c.status === 'passed').length,
    failed: checks.filter((c) => c.status === 'failed').length,
    skipped: checks.filter((c) => c.status === 'skipped').length,
  };
}
