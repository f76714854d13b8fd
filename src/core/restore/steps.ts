import path from 'node:path';
import { CHECK_REGISTRY, isCheckName, type CheckName } from '../checks/registry.js';
import type { Config } from '../config/load.js';
import { formatDuration, parseDuration } from '../duration.js';
import { TykdrError, type ErrorKind } from '../errors.js';
import type { FeedSegment, ServiceCheck } from '../interfaces/target.js';
import type { Manifest } from '../manifest.js';
import type { PlanStep } from '../plan/schema.js';
import { runCommand } from '../util/run-command.js';
import type { PlanMembers } from './preflight.js';
import type { StagedArtifact } from './staging.js';
import type { CheckResult, DrillGatewayStarter } from './types.js';
import type { KeySelection } from '../tyk/key-selection.js';

/** Everything a step needs, resolved once per restore. */
export interface StepContext {
  config: Config;
  manifest: Manifest;
  restoreId: string;
  snapshotId: string;
  staged: Map<string, StagedArtifact>;
  workDir: string;
  /** Snapshot component names per plan role, with their config and target. */
  members: PlanMembers;
  serviceCheck: ServiceCheck;
  filesTo?: string;
  /** restore --key/--class/--org/--api: a selective Redis restore. */
  selection?: KeySelection;
  /** restore --to-time with a selection: the feed applied to this component's snapshot before selecting. */
  feed?: { component: string; segments: FeedSegment[] };
  /** A drill restores into scratch targets: production services are never restarted or probed. */
  drill: boolean;
  /** A drill with drill.gateway.binary: the gateway step starts this gateway and checks it. */
  drillGateway?: DrillGatewayStarter;
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
  let serviceCtx: StepContext & { drillGatewayUp?: boolean } = ctx;
  try {
    if (step.action === 'restore') {
      for (const name of ctx.members.byRole[step.component]) {
        const { component, target } = ctx.members.resolved.get(name)!;
        const out = await target.restore({
          name,
          component,
          entry: ctx.manifest.components[name]!,
          stagedFile: ctx.staged.get(name)!.file,
          ...(ctx.staged.get(name)!.compression ? { stagedCompression: ctx.staged.get(name)!.compression } : {}),
          workDir: path.join(ctx.workDir, name),
          checks: step.verify,
          restoreId: ctx.restoreId,
          snapshotId: ctx.snapshotId,
          filesTo: ctx.filesTo,
          selection: ctx.selection,
          ...(ctx.feed?.component === name ? { feed: ctx.feed.segments } : {}),
          ...(ctx.staged.get(name)!.read ? { stagedRead: ctx.staged.get(name)!.read } : {}),
          signal: ctx.signal,
          note: ctx.note,
        });
        details[name] = out.details;
        checks.push(...out.checks.filter((c) => wanted.has(c.name)));
      }
    }
    if (step.action === 'restore' || step.action === 'restart') await restart(step, ctx, details);
    if (ctx.drill && ctx.drillGateway && step.component === 'gateway') {
      const started = await ctx.drillGateway.start(ctx.signal, ctx.note);
      details.drill_gateway = started.details;
      serviceCtx = { ...ctx, config: { ...ctx.config, gateway: started.gateway }, drillGatewayUp: true };
    }
  } catch (err) {
    const kind: ErrorKind = err instanceof TykdrError ? err.kind : 'internal';
    throw new StepFailure(err instanceof Error ? err.message : String(err), kind, { details, checks });
  }
  // Service checks run after the action, against whatever is configured, all at once: the canary key is
  // probed while /hello still waits for its refresh, so "service restored" is measured when it happens.
  // A data check that no target ran is skipped.
  const rest = step.verify.filter((name) => !checks.some((c) => c.name === name));
  // A drill gateway's loaded APIs and policies are checked whether or not the plan lists it.
  if (serviceCtx.drillGatewayUp && !rest.includes('gateway-loaded')) rest.push('gateway-loaded');
  checks.push(...(await Promise.all(rest.map((name) => otherCheck(name, step, serviceCtx)))));
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
const DRILL_UPSTREAM_SKIP = "drill: upstreams are production services; the drill gateway proxies to tykdr's scratch upstream instead";

async function otherCheck(name: string, step: PlanStep, ctx: StepContext & { drillGatewayUp?: boolean }): Promise<CheckResult> {
  const def = isCheckName(name) ? CHECK_REGISTRY[name] : undefined;
  if (def?.by === 'service') {
    // A drill probes only the gateway it started itself; production services and upstreams never.
    if (ctx.drill && ctx.drillGatewayUp && name.startsWith('gateway-')) return ctx.serviceCheck(name as CheckName, ctx.config, ctx.signal);
    if (ctx.drill) return skipped(name, ctx.drillGatewayUp && name === 'upstream' ? DRILL_UPSTREAM_SKIP : DRILL_SKIP);
    return ctx.serviceCheck(name as CheckName, ctx.config, ctx.signal);
  }
  if (def === undefined) return skipped(name, 'not a known check');
  if (step.action !== 'restore') return skipped(name, 'nothing to check');
  return skipped(name, ctx.members.byRole[step.component].length === 0 ? `the snapshot has no ${step.component} component` : `no ${step.component} component was restored`);
}
