import path from 'node:path';
import type { Config, FilesComponent, MongoComponent, PostgresComponent, RedisComponent } from '../config/load.js';
import { formatDuration, parseDuration } from '../duration.js';
import { TykdrError, type ErrorKind } from '../errors.js';
import type { Manifest } from '../manifest.js';
import type { PlanStep } from '../plan/schema.js';
import { restoreFiles } from '../../backends/files/target/restore-files.js';
import { restoreMongo } from '../../backends/mongo/target/restore-mongo.js';
import { restorePostgres } from '../../backends/postgres/target/restore-postgres.js';
import { restoreRedis } from '../../backends/redis/target/restore-redis.js';
import { runCommand } from '../util/run-command.js';
import {
  checkDashboardHealth,
  checkGatewayHello,
  checkGatewayKeyProbe,
  checkGatewayReady,
  checkUpstreams,
} from '../../verify/http-checks.js';
import type { StagedArtifact } from './staging.js';
import type { CheckResult } from './types.js';

/** Everything a step needs, resolved once per restore. */
export interface StepContext {
  config: Config;
  manifest: Manifest;
  restoreId: string;
  staged: Map<string, StagedArtifact>;
  workDir: string;
  /** Snapshot component names per plan role. */
  members: Record<PlanStep['component'], string[]>;
  filesTo?: string;
  /** A drill restores into scratch targets: production services are never restarted or probed. */
  drill: boolean;
  signal: AbortSignal;
  note(line: string): void;
}

export interface StepOutcome {
  details: Record<string, unknown>;
  checks: CheckResult[];
}

/** A step failure that carries the exit-code kind of its cause. */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly kind: ErrorKind,
    readonly partial: StepOutcome,
  ) {
    super(message);
  }
}

const skipped = (name: string, detail: string): CheckResult => ({
  name,
  status: 'skipped',
  detail,
  finishedAt: new Date().toISOString(),
  durationMs: 0,
});

/** Runs one plan step's action, then the checks it lists. Throws StepFailure when the action fails. */
export async function runStep(step: PlanStep, ctx: StepContext): Promise<StepOutcome> {
  const details: Record<string, unknown> = {};
  const checks: CheckResult[] = [];
  const wanted = new Set(step.verify);
  const keep = (list: CheckResult[]) => checks.push(...list.filter((c) => wanted.has(c.name)));
  const members = ctx.members[step.component];
  try {
    if (step.action === 'restore') {
      if (step.component === 'redis') {
        for (const name of members) {
          ctx.note(`  restoring ${name} (redis)`);
          const staged = ctx.staged.get(name)!;
          let shown = 0;
          const out = await restoreRedis({
            component: ctx.config.components[name] as RedisComponent,
            manifest: ctx.manifest.components[name]!,
            rdbFile: staged.file,
            workDir: path.join(ctx.workDir, name),
            checks: step.verify,
            signal: ctx.signal,
            progress: (e) => {
              // Print each time another 100,000 keys are crossed (SCAN pages are uneven).
              if (e.keys !== undefined && Math.floor(e.keys / 100_000) > shown) {
                shown = Math.floor(e.keys / 100_000);
                ctx.note(`    ${name}: ${e.phase} ${e.keys}${e.totalKeys ? ` of ${e.totalKeys}` : ''} keys`);
              }
            },
          });
          details[name] = out.details;
          keep(out.checks);
        }
      } else if (step.component === 'database') {
        for (const name of members) {
          const entry = ctx.manifest.components[name]!;
          const cfgName = entry.config_component ?? name;
          ctx.note(`  restoring ${name} (${entry.kind})`);
          const input = {
            manifest: entry,
            stagedFile: ctx.staged.get(name)!.file,
            workDir: path.join(ctx.workDir, name),
            checks: step.verify,
            signal: ctx.signal,
          };
          const out =
            entry.kind === 'mongo'
              ? await restoreMongo({ ...input, component: ctx.config.components[cfgName] as MongoComponent })
              : await restorePostgres({ ...input, component: ctx.config.components[cfgName] as PostgresComponent });
          details[name] = out.details;
          keep(out.checks);
        }
      } else if (step.component === 'dashboard' || step.component === 'gateway') {
        for (const name of members) {
          ctx.note(`  restoring ${name} (files)`);
          const out = await restoreFiles({
            component: ctx.config.components[name] as FilesComponent,
            manifest: ctx.manifest.components[name]!,
            tarFile: ctx.staged.get(name)!.file,
            to: ctx.filesTo ?? (ctx.config.components[name] as FilesComponent).restore.to,
            restoreId: ctx.restoreId,
            signal: ctx.signal,
          });
          details[name] = out.details;
          keep(out.checks);
        }
      }
    }
    if (step.action === 'restore' || step.action === 'restart') await restart(step, ctx, details);
  } catch (err) {
    const kind: ErrorKind = err instanceof TykdrError ? err.kind : 'internal';
    throw new StepFailure(err instanceof Error ? err.message : String(err), kind, { details, checks });
  }
  // HTTP and service checks run after the action, against whatever is configured.
  for (const name of step.verify) {
    if (checks.some((c) => c.name === name)) continue;
    checks.push(...(await serviceCheck(name, step, ctx)));
  }
  return { details, checks };
}

async function restart(step: PlanStep, ctx: StepContext, details: Record<string, unknown>): Promise<void> {
  const section = step.component === 'gateway' ? ctx.config.gateway : step.component === 'dashboard' ? ctx.config.dashboard : undefined;
  const command = section?.restartCommand;
  if (!command) return;
  if (ctx.drill) {
    details.restart = 'not run: a drill never restarts production services';
    return;
  }
  ctx.note(`  running ${step.component} restart command`);
  const timeoutMs = parseDuration(section.timeout) ?? 120_000;
  const res = await runCommand(command, { timeoutMs, signal: ctx.signal });
  details.restart = { exit_code: res.code, duration: formatDuration(res.durationMs), timed_out: res.timedOut };
  if (res.code !== 0) {
    throw new TykdrError(
      'targetError',
      `${step.component} restart command ${res.timedOut ? `timed out after ${formatDuration(timeoutMs)}` : `exited with ${res.code ?? res.signal}`}: ${res.stderrTail.trim().split('\n').slice(-2).join(' | ')}`,
      { fix: `check ${step.component}.restartCommand in tykdr.yaml` },
    );
  }
}

const DRILL_SKIP = 'drill: runs against the production service, which a drill never touches';

async function serviceCheck(name: string, step: PlanStep, ctx: StepContext): Promise<CheckResult[]> {
  if (ctx.drill && (name.startsWith('gateway-') || name === 'upstream' || name === 'dashboard-health')) return [skipped(name, DRILL_SKIP)];
  const gw = ctx.config.gateway;
  const db = ctx.config.dashboard;
  switch (name) {
    case 'gateway-ready':
      return gw ? [await checkGatewayReady(gw, ctx.signal)] : [skipped(name, 'no gateway section in tykdr.yaml')];
    case 'gateway-hello':
      return gw ? [await checkGatewayHello(gw, ctx.signal)] : [skipped(name, 'no gateway section in tykdr.yaml')];
    case 'gateway-key-probe':
      return gw ? [await checkGatewayKeyProbe(gw, ctx.signal)] : [skipped(name, 'no gateway section in tykdr.yaml')];
    case 'upstream':
      return gw ? [await checkUpstreams(gw, ctx.signal)] : [skipped(name, 'no gateway section in tykdr.yaml')];
    case 'dashboard-health':
      return db ? [await checkDashboardHealth(db, ctx.signal)] : [skipped(name, 'no dashboard section in tykdr.yaml')];
    case 'files-restored':
      return [skipped(name, `the snapshot has no ${step.component} files`)];
    case 'database-counts':
    case 'database-indexes':
      return [skipped(name, 'the snapshot has no database component')];
    default:
      return [skipped(name, step.action === 'restore' ? `no ${step.component} component was restored` : 'nothing to check')];
  }
}
