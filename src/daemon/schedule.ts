import cron from 'node-cron';
import type { Config } from '../core/config/load.js';
import { badInput } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import type { DrillKind, JobKind } from './jobs.js';

/** Intervals that divide their unit evenly, so `*\/n` fires at a steady pace (60 s, 60 min, 24 h). */
const SIXTY_DIVISORS = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30];
const DAY_DIVISORS = [1, 2, 3, 4, 6, 8, 12];

/**
 * The default backup schedule for a recovery point objective: the longest steady interval that is no
 * longer than the RPO.
 *
 *   RPO < 1 min    every n seconds, n the largest of 1,2,3,4,5,6,10,12,15,20,30 <= RPO (at least every second)
 *   RPO < 1 h      every n minutes, n from the same list (5m -> *\/5, 15m -> *\/15, 7m -> *\/6)
 *   RPO < 24 h     every n hours, n the largest of 1,2,3,4,6,8,12 <= RPO, at minute 0 (1h -> hourly, 5h -> *\/4)
 *   RPO >= 24 h    daily at 02:00 (before the default verify at 03:40 and drills at 04:00)
 */
export function cronForRpo(rpoMs: number): string {
  const s = Math.floor(rpoMs / 1000);
  const largest = (limit: number, list: number[]) => [...list].reverse().find((n) => n <= limit) ?? 1;
  if (s < 60) {
    const n = largest(s, SIXTY_DIVISORS);
    return n === 1 ? '* * * * * *' : `*/${n} * * * * *`;
  }
  if (s < 3600) {
    const n = largest(Math.floor(s / 60), SIXTY_DIVISORS);
    return n === 1 ? '* * * * *' : `*/${n} * * * *`;
  }
  if (s < 86_400) {
    const n = largest(Math.floor(s / 3600), DAY_DIVISORS);
    return n === 1 ? '0 * * * *' : `0 */${n} * * *`;
  }
  return '0 2 * * *';
}

/** Rejects an expression node-cron does not accept, naming the config path, the value and the field. */
export function validateCron(expr: string, where: string, file: string): void {
  const res = cron.validateDetailed(expr);
  if (res.valid) return;
  const why = res.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  throw badInput(
    `${where} "${expr}" in ${file} is not a valid cron expression (${why || 'unparseable'})`,
    'write 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, e.g. "*/5 * * * *"',
  );
}

export interface BackupGroup {
  cron: string;
  /** Components backed up together, in config order: one snapshot per run. */
  components: string[];
  /** Why this cron: "schedule.backups.<name>", "schedule.backups.*", or "RPO 5m (tier critical)" per component. */
  reasons: string[];
}

/**
 * One backup job per distinct cron expression. A component's cron is schedule.backups[<name>], else
 * schedule.backups['*'], else `cronForRpo(its tier's RPO)`. Unknown names in schedule.backups are errors.
 */
export function backupGroups(config: Config): BackupGroup[] {
  const names = Object.keys(config.components);
  const overrides = config.schedule.backups;
  for (const [key, expr] of Object.entries(overrides)) {
    if (key !== '*' && !names.includes(key)) {
      throw badInput(
        `schedule.backups.${key} in ${config.file} names no configured component`,
        `use "*" or one of: ${names.join(', ')}`,
      );
    }
    validateCron(expr, `schedule.backups.${key}`, config.file);
  }
  const groups = new Map<string, BackupGroup>();
  for (const name of names) {
    const c = config.components[name]!;
    const rpoMs = config.tiers[c.tier].rpoMs;
    let expr: string;
    let reason: string;
    if (overrides[name] !== undefined) {
      expr = overrides[name]!;
      reason = `${name}: schedule.backups.${name}`;
    } else if (overrides['*'] !== undefined) {
      expr = overrides['*']!;
      reason = `${name}: schedule.backups.*`;
    } else {
      expr = cronForRpo(rpoMs);
      reason = `${name}: RPO ${formatDuration(rpoMs)} (tier ${c.tier})`;
    }
    const g = groups.get(expr) ?? { cron: expr, components: [], reasons: [] };
    g.components.push(name);
    g.reasons.push(reason);
    groups.set(expr, g);
  }
  return [...groups.values()];
}

/** What to run: a job name, its cron, and what it calls. */
export type JobTask =
  | { kind: 'backup'; components: string[] }
  | { kind: 'prune' }
  | { kind: 'verify'; samplePercent: number }
  | { kind: 'drill'; drill: DrillKind };

export interface JobSpec {
  /** Name in logs and metrics: "backup:redis,config", "prune", "verify", "drill-components", "drill-full". */
  name: string;
  kind: JobKind;
  cron: string;
  task: JobTask;
  /** Why this schedule (for the start-up log). */
  reason: string;
}

/** Every scheduled job of a config, optionally only some kinds (--job). Validates every cron expression. */
export function jobSpecs(config: Config, only: readonly JobKind[] = []): JobSpec[] {
  const want = (k: JobKind) => only.length === 0 || only.includes(k);
  const s = config.schedule;
  const out: JobSpec[] = [];
  if (want('backup')) {
    for (const g of backupGroups(config)) {
      out.push({
        name: `backup:${g.components.join(',')}`,
        kind: 'backup',
        cron: g.cron,
        task: { kind: 'backup', components: g.components },
        reason: g.reasons.join('; '),
      });
    }
  }
  const fixed: Array<[JobKind, string, string, JobTask]> = [
    ['prune', s.prune, 'schedule.prune', { kind: 'prune' }],
    ['verify', s.verify.cron, 'schedule.verify.cron', { kind: 'verify', samplePercent: s.verify.samplePercent }],
    ['drill-components', s.drills.components, 'schedule.drills.components', { kind: 'drill', drill: 'components' }],
    ['drill-full', s.drills.full, 'schedule.drills.full', { kind: 'drill', drill: 'full' }],
  ];
  for (const [kind, expr, where, task] of fixed) {
    if (!want(kind)) continue;
    validateCron(expr, where, config.file);
    out.push({ name: kind, kind, cron: expr, task, reason: where });
  }
  return out;
}
