import type { DrillRecord, DrillVerdict } from './history.js';

/*
 * Figures of a drill history, computed once for both the HTML and the Markdown page: per plan (how many
 * drills, how many succeeded, how many proved everything, RTO figures) and per component (when it was
 * last proven). Records come newest first, as listDrills returns them.
 */

export interface PlanSummary {
  plan: string;
  drills: number;
  /** Status succeeded: every step worked and every objective was met (checks may have been skipped). */
  succeeded: number;
  /** Verdict PASSED: succeeded with no check skipped. */
  proven: number;
  failed: number;
  missed: number;
  notProven: number;
  latest: DrillRecord;
  /** Measured RTOs (s), oldest first. */
  rtos: number[];
  objectiveSeconds: number;
}

export interface ComponentSummary {
  component: string;
  /** The newest drill in which a step of this component was ok with a passed check and no failed one. */
  lastSuccess: DrillRecord | null;
  /** The newest drill that ran a step of this component, and how that step ended. */
  lastRun: DrillRecord;
  lastRunResult: 'OK' | 'FAILED' | 'SKIPPED' | 'NOT PROVEN';
  /** Checks of this component skipped in the last success (so proven only in part). */
  lastSuccessSkipped: number;
}

const count = (records: DrillRecord[], v: DrillVerdict): number => records.filter((d) => d.verdict === v).length;

export function planSummaries(records: DrillRecord[]): PlanSummary[] {
  const plans = [...new Set(records.map((d) => d.plan))].sort();
  return plans.map((plan) => {
    const mine = records.filter((d) => d.plan === plan);
    return {
      plan,
      drills: mine.length,
      succeeded: mine.filter((d) => d.status === 'succeeded').length,
      proven: count(mine, 'PASSED'),
      failed: count(mine, 'FAILED'),
      missed: count(mine, 'MISSED'),
      notProven: count(mine, 'NOT PROVEN'),
      latest: mine[0]!,
      rtos: mine.map((d) => d.rtoSeconds).filter((x): x is number => x !== null).reverse(),
      objectiveSeconds: mine[0]!.rtoObjectiveSeconds,
    };
  });
}

type StepOutcome = DrillRecord['steps'][number];

const proven = (s: StepOutcome): boolean => s.status === 'ok' && s.passed > 0 && s.failed === 0;

function result(steps: StepOutcome[]): ComponentSummary['lastRunResult'] {
  if (steps.some((s) => s.status === 'failed' || s.failed > 0)) return 'FAILED';
  if (steps.every((s) => s.status === 'skipped')) return 'SKIPPED';
  return steps.some(proven) && steps.every((s) => s.skipped === 0) ? 'OK' : 'NOT PROVEN';
}

export function componentSummaries(records: DrillRecord[]): ComponentSummary[] {
  const components = [...new Set(records.flatMap((d) => (d.steps ?? []).map((s) => s.component)))];
  return components.map((component) => {
    const ran = records.filter((d) => (d.steps ?? []).some((s) => s.component === component));
    const lastRun = ran[0]!;
    const lastSuccess = ran.find((d) => d.steps.some((s) => s.component === component && proven(s))) ?? null;
    return {
      component,
      lastSuccess,
      lastSuccessSkipped: (lastSuccess?.steps ?? []).filter((s) => s.component === component).reduce((n, s) => n + s.skipped, 0),
      lastRun,
      lastRunResult: result(lastRun.steps.filter((s) => s.component === component)),
    };
  });
}

export const percent = (n: number, of: number): string => (of === 0 ? 'n/a' : `${Math.round((n / of) * 100)}%`);
