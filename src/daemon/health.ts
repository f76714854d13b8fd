import { formatDuration } from '../core/duration.js';

/**
 * Backup health per component, as pure functions of what the daemon knows and the time, so the rules
 * can be tested without clocks or servers. Output follows the Health Check Response Format for HTTP
 * APIs (the draft Tyk's /hello implements).
 */

export type HealthStatus = 'pass' | 'warn' | 'fail';

export interface ComponentState {
  name: string;
  tier: string;
  rpoMs: number;
  /** Consistent point of the newest successful backup (RPO is measured from the data's point in time). */
  lastSuccessAt?: Date;
  lastSnapshot?: string;
  lastDurationSeconds?: number;
  lastBytes?: number;
  /** The outcome of the most recent attempt this daemon knows of. */
  lastOutcome?: 'success' | 'failure';
  lastFailureAt?: Date;
  lastError?: string;
  failuresTotal: number;
  /** Set while a backup of this component runs. */
  runningSince?: Date;
  /** Redis under point-in-time capture (`tykdr stream`): the time its newest stored segment covers up to. */
  streamCoveredAt?: Date;
}

export interface ComponentHealth {
  status: HealthStatus;
  /** Seconds since the last successful backup's consistent point (absent when there never was one). */
  ageSeconds?: number;
  /** True when the RPO is breached by age (what rpo_breached reports); a failed attempt alone is not a breach. */
  late: boolean;
  output: string;
}

/**
 * The rules:
 * - fail: the last attempt failed; or the newest backup is more than twice the RPO old; or there has
 *   never been a backup and the first RPO interval since the daemon started has passed.
 * - warn: the newest backup is older than the RPO (late); or there is none yet, within the first interval.
 * - pass: the newest backup is within the RPO.
 * A backup that is running and started while the component was still within its RPO keeps it from
 * counting as late (an interval equal to the RPO would otherwise flap to warn on every run), but never
 * past twice the RPO.
 */
export function componentHealth(s: ComponentState, now: Date, daemonStartedAt: Date): ComponentHealth {
  // A point-in-time stream that covers a later moment than the newest backup is the recovery point.
  const streamed = s.streamCoveredAt !== undefined && (s.lastSuccessAt === undefined || s.streamCoveredAt > s.lastSuccessAt);
  const lastGood = streamed ? s.streamCoveredAt : s.lastSuccessAt;
  const what = streamed ? 'point-in-time stream covers up to' : 'last successful backup';
  const ref = lastGood ?? daemonStartedAt;
  const ageMs = Math.max(0, now.getTime() - ref.getTime());
  const startedInTime = s.runningSince !== undefined && s.runningSince.getTime() - ref.getTime() <= s.rpoMs;
  const veryLate = ageMs > 2 * s.rpoMs;
  const late = veryLate || (ageMs > s.rpoMs && !startedInTime);
  const ageSeconds = lastGood ? Math.floor(ageMs / 1000) : undefined;
  const rpo = formatDuration(s.rpoMs);
  const age = formatDuration(ageMs);
  const running = s.runningSince ? '; a backup is running' : '';
  if (s.lastOutcome === 'failure') {
    const when = s.lastFailureAt ? ` at ${s.lastFailureAt.toISOString()}` : '';
    const prior = lastGood ? ` (${streamed ? 'stream covers up to' : 'last success'} ${age} ago, RPO ${rpo})` : ' (never succeeded)';
    return { status: 'fail', ageSeconds, late, output: `last backup failed${when}: ${s.lastError ?? 'unknown error'}${prior}${running}` };
  }
  if (!lastGood) {
    if (late) return { status: 'fail', ageSeconds, late, output: `no successful backup since the daemon started ${age} ago (RPO ${rpo})${running}` };
    return { status: 'warn', ageSeconds, late, output: `no backup yet; the daemon started ${age} ago (RPO ${rpo})${running}` };
  }
  if (veryLate) return { status: 'fail', ageSeconds, late, output: `${what} ${age} ago is more than twice the RPO of ${rpo}${running}` };
  if (late) return { status: 'warn', ageSeconds, late, output: `${what} ${age} ago exceeds the RPO of ${rpo}${running}` };
  return { status: 'pass', ageSeconds, late, output: `${what} ${age} ago (RPO ${rpo})${running}` };
}

/** Tyk's rule for the top level: pass when every check passes, fail when every check fails, warn otherwise. */
export function overallStatus(statuses: HealthStatus[]): HealthStatus {
  if (statuses.every((s) => s === 'pass')) return 'pass';
  if (statuses.length > 0 && statuses.every((s) => s === 'fail')) return 'fail';
  return 'warn';
}

export interface HelloCheck {
  status: HealthStatus;
  componentType: 'datastore';
  time: string;
  observedValue?: number;
  observedUnit?: 's';
  output: string;
}

export interface HelloBody {
  status: HealthStatus;
  version: string;
  description: string;
  details: Record<string, HelloCheck[]>;
}

/** The /hello body and its HTTP status (200 for pass and warn, 503 for fail). */
export function helloResponse(
  states: ComponentState[],
  now: Date,
  daemonStartedAt: Date,
  meta: { version: string; description: string },
): { httpStatus: number; body: HelloBody } {
  const details: Record<string, HelloCheck[]> = {};
  const statuses: HealthStatus[] = [];
  for (const s of states) {
    const h = componentHealth(s, now, daemonStartedAt);
    statuses.push(h.status);
    details[s.name] = [
      {
        status: h.status,
        componentType: 'datastore',
        time: now.toISOString(),
        ...(h.ageSeconds === undefined ? {} : { observedValue: h.ageSeconds, observedUnit: 's' as const }),
        output: h.output,
      },
    ];
  }
  const status = overallStatus(statuses);
  return { httpStatus: status === 'fail' ? 503 : 200, body: { status, version: meta.version, description: meta.description, details } };
}
