import { formatDuration } from '../duration.js';
import type { RestoreReport } from '../restore/types.js';

/*
 * The time axis of a run, shared by the HTML timeline (SVG) and the Markdown one (text bars). It is drawn
 * to the run's own scale, so a 2 s drill fills the width instead of being a sliver against a 15 min
 * objective. Two things that would squash the run are moved behind an axis break instead:
 * - a wait from the incident to the restore start much longer than the run (left break);
 * - an RTO objective far beyond the run's end (right break, the objective drawn past it with its value).
 */

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const NICE_STEPS = [10, 20, 50, 100, 200, 250, 500]
  .concat([1, 2, 5, 10, 15, 30].map((n) => n * SEC), [1, 2, 5, 10, 15, 30].map((n) => n * MIN), [1, 2, 3, 6, 12, 24, 48].map((n) => n * HOUR));

/** A wait before the run longer than this many times the run is drawn behind a break. */
export const LEFT_BREAK_RATIO = 3;
/** An objective later than this many times the run's end is drawn behind a break. */
export const RIGHT_BREAK_RATIO = 1.5;

/** Where, as fractions of the plot width, the parts of a broken axis go. */
const LAYOUT = { incident: 0, leftBreak: 0.065, mainStartAfterBreak: 0.13, rightBreak: 0.9, mainEndBeforeBreak: 0.86, objective: 0.97 } as const;

export interface TimelineScale {
  /** Time since the incident (ms) of the part of the axis drawn to scale. */
  from: number;
  to: number;
  /** The wait from the incident to `from` is not to scale. */
  leftBreak: boolean;
  /** The objective (ms) when it is drawn beyond a break on the right, else null. */
  objectiveBeyond: number | null;
  /** Fraction of the plot width (0 to 1) for a time since the incident. */
  at(ms: number): number;
  /** Fractions where the axis is broken. */
  breaks: number[];
  /** Grid times (ms) inside [from, to], `step` apart. */
  ticks: number[];
  step: number;
}

/** Milliseconds from the incident to an ISO time (0 if unreadable). */
function since(r: RestoreReport, iso: string | null | undefined): number {
  if (!iso) return Number.NaN;
  const ms = Date.parse(iso) - Date.parse(r.incident_at);
  return Number.isFinite(ms) ? ms : Number.NaN;
}

/** The latest moment the run shows: its end, every step and check end, the measured moments. */
export function runEndMs(r: RestoreReport): number {
  const ends = [since(r, r.finished_at), (r.rto.achievedSeconds ?? 0) * SEC, (r.rto.service_restored_seconds ?? 0) * SEC];
  for (const s of r.steps) ends.push(since(r, s.finishedAt), ...s.checks.map((c) => since(r, c.finishedAt)));
  return Math.max(0, ...ends.filter(Number.isFinite));
}

export function timelineScale(r: RestoreReport): TimelineScale {
  const start = Math.max(0, since(r, r.started_at) || 0);
  const end = Math.max(runEndMs(r), start + 1);
  const span = end - start;
  const objective = r.rto.objectiveSeconds * SEC;
  const leftBreak = start > LEFT_BREAK_RATIO * span;
  const from = leftBreak ? Math.max(0, start - span * 0.05) : 0;
  const objectiveBeyond = objective - from > RIGHT_BREAK_RATIO * (end - from) ? objective : null;
  const to = objectiveBeyond === null ? Math.max(end, objective) : end + span * 0.03;
  const x0 = leftBreak ? LAYOUT.mainStartAfterBreak : 0;
  const x1 = objectiveBeyond === null ? 1 : LAYOUT.mainEndBeforeBreak;
  const width = Math.max(to - from, 1);
  const at = (ms: number): number => {
    if (!Number.isFinite(ms)) return x0;
    if (objectiveBeyond !== null && ms >= objectiveBeyond) return LAYOUT.objective;
    if (leftBreak && ms <= 0) return LAYOUT.incident;
    const clamped = Math.min(Math.max(ms, from), to);
    return x0 + ((clamped - from) / width) * (x1 - x0);
  };
  const step = NICE_STEPS.find((n) => width / n <= 8) ?? NICE_STEPS[NICE_STEPS.length - 1]!;
  const ticks: number[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to + 1e-6; t += step) ticks.push(t);
  const breaks = [...(leftBreak ? [LAYOUT.leftBreak] : []), ...(objectiveBeyond === null ? [] : [LAYOUT.rightBreak])];
  return { from, to, leftBreak, objectiveBeyond, at, breaks, ticks, step };
}

/** A tick label: "incident", "500ms", "1.5s", "10m 3.5s", "2m 30s"; `step` (the tick interval) sets the precision. */
export function tickLabel(ms: number, step = SEC): string {
  if (ms === 0) return 'incident';
  if (ms < SEC) return `${Math.round(ms)}ms`;
  if (step >= SEC && ms % SEC === 0) return formatDuration(ms);
  const digits = step % 100 === 0 ? 1 : 2;
  const minutes = Math.floor(ms / MIN);
  const seconds = `${((ms - minutes * MIN) / SEC).toFixed(digits)}s`;
  return minutes > 0 ? `${formatDuration(minutes * MIN)} ${seconds}` : seconds;
}

/** A precise duration for marker labels: "0.27s" under a minute, formatDuration above. */
export function preciseDuration(ms: number): string {
  if (ms < 10 * SEC) return `${(ms / SEC).toFixed(2)}s`;
  if (ms < MIN) return `${(ms / SEC).toFixed(1)}s`;
  return formatDuration(ms);
}
