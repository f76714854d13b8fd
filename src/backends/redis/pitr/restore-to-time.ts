import { rm } from 'node:fs/promises';
import path from 'node:path';
import { readManifest } from '../../../core/catalog.js';
import type { RedisComponent } from '../../../core/config/load.js';
import { badInput, TykdrError } from '../../../core/errors.js';
import type { Store } from '../../../core/interfaces/store.js';
import { listChains, planToTime, stageSegment, type PointInTimePlan } from '../../../core/pitr/chain.js';
import { resolveDecryptionKeys } from '../../../core/restore/decryption-keys.js';
import { missedObjectives } from '../../../core/restore/objectives.js';
import { planRestore, runRestore, type DryRunSummary, type RestoreOptions, type RestoreOutcome } from '../../../core/restore/restore.js';
import type { FeedSegment } from '../../../core/interfaces/target.js';
import type { Manifest } from '../../../core/manifest.js';
import type { StepResult } from '../../../core/restore/types.js';
import { makeWorkDir } from '../../../core/restore/work-dirs.js';
import { connectTarget, openTargetPipe, resolveRestoreTarget } from '../protocol/target-connection.js';
import { clearRestoreMarker, setRestoreMarker } from '../target/restore-marker.js';
import { replaySegments } from './replay.js';

export interface PointInTimeSummary {
  component: string;
  asked: string;
  reached: string;
  reached_offset: number;
  chain: string;
  base_snapshot: string;
  segments: number;
  /** Why the point reached is before the one asked for, when it is. */
  short_by?: string;
}

/** What `restore --to-time` would use: the chain, its base snapshot, the segments and the point reached. */
export async function planRedisToTime(opts: RestoreOptions & { at: Date }): Promise<{ component: RedisComponent; plan: PointInTimePlan; summary: PointInTimeSummary }> {
  if (!opts.plan.ordered.every((s) => s.component === 'redis')) {
    throw badInput(`--to-time restores Redis only; plan "${opts.plan.name}" has other steps`, 'use --plan redis (restore the database and files from a snapshot separately)');
  }
  const store = opts.store ?? opts.backends.openStore(opts.config.store);
  const redis = Object.values(opts.config.components).filter((c): c is RedisComponent => c.kind === 'redis');
  const chains = await listChains(store, opts.signal);
  for (const component of redis) {
    const plan = planToTime(chains, component.name, opts.at);
    if (!plan) continue;
    return {
      component,
      plan,
      summary: {
        component: component.name,
        asked: opts.at.toISOString(),
        reached: plan.reachedAt.toISOString(),
        reached_offset: plan.reachedOffset,
        chain: plan.chain.record.chain,
        base_snapshot: plan.chain.record.base_snapshot,
        segments: plan.segments.length,
        ...(plan.shortBy ? { short_by: plan.shortBy } : {}),
      },
    };
  }
  const ranges = chains.map((c) => `${c.record.component}: ${c.record.base_at} to ${c.coveredTo.at} (chain ${c.record.chain})`);
  throw badInput(
    `no point-in-time chain in ${store.location} starts at or before ${opts.at.toISOString()}`,
    ranges.length ? `chains cover: ${ranges.join('; ')}` : 'start one with `tykdr stream --component NAME`',
  );
}

/** Downloads, checks and decrypts the segments a point in time needs into `work`; the last one is cut at the point. */
async function stageFeed(opts: RestoreOptions, store: Store, plan: PointInTimePlan, work: string, note: (l: string) => void): Promise<{ base: Manifest; staged: FeedSegment[] }> {
  const base = await readManifest(store, plan.chain.record.base_snapshot, opts.signal);
  const keys = await resolveDecryptionKeys(opts.config, base, opts.identityFile);
  const staged: FeedSegment[] = [];
  for (const [i, seg] of plan.segments.entries()) {
    const file = path.join(work, seg.name.replace(/\.age$/, '').replace(/\.(zst|gz)$/, ''));
    await stageSegment({ store, seg, keys, file, signal: opts.signal });
    const last = i === plan.segments.length - 1;
    staged.push({ file, bytes: last ? plan.lastBytes : seg.plaintext_bytes, marks: seg.marks });
  }
  note(`${staged.length} segment(s) checked and staged`);
  return { base, staged };
}

/**
 * The dry run of a selective point-in-time restore: the segments and the base are staged (this needs the
 * identity), put together in a scratch server, and the selection read from it; the target is only asked
 * EXISTS. Nothing is written.
 */
export async function previewRedisToTime(opts: RestoreOptions & { at: Date }): Promise<{ summary: PointInTimeSummary; preview: DryRunSummary }> {
  const store: Store = opts.store ?? opts.backends.openStore(opts.config.store);
  const { component, plan, summary } = await planRedisToTime({ ...opts, store });
  const note = (l: string) => opts.progress?.note?.(l);
  const work = await makeWorkDir(opts.config.restore.stagingDir, 'tykdr-restore-pitr-');
  try {
    const { base, staged } = await stageFeed(opts, store, plan, work, note);
    const preview = await planRestore({ ...opts, store, snapshot: base.id, before: undefined, feed: { component: component.name, segments: staged } });
    return { summary, preview };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Point-in-time restore of a Redis component: every segment needed is downloaded, checked against its record
 * and decrypted first; then the chain's base snapshot is restored with the plan (and its checks); then the feed
 * is replayed into the same target up to the point. While it replays the target holds the restore marker. The
 * report gains a replay step and `point_in_time`, and the component's RPO is measured from the point reached.
 *
 * With a selection (--key/--class/--org/--api/--[no-]overwrite) the target never sees the feed: the base and
 * the feed are put together in a scratch server (selective-restore.ts), and only the selected keys, as they
 * were at the point, are written; other keys keep their current values.
 */
export async function restoreRedisToTime(opts: RestoreOptions & { at: Date }): Promise<RestoreOutcome & { pointInTime: PointInTimeSummary }> {
  const store: Store = opts.store ?? opts.backends.openStore(opts.config.store);
  const { component, plan, summary } = await planRedisToTime({ ...opts, store });
  const note = (l: string) => opts.progress?.note?.(l);
  note(`point in time ${summary.asked}: chain ${summary.chain} (base ${summary.base_snapshot}), ${summary.segments} segment(s), reaching ${summary.reached}`);
  if (plan.shortBy) note(`warning: ${plan.shortBy}`);
  const work = await makeWorkDir(opts.config.restore.stagingDir, 'tykdr-restore-pitr-');
  try {
    const { base, staged } = await stageFeed(opts, store, plan, work, note);

    if (opts.selection) {
      const outcome = await runRestore({ ...opts, store, snapshot: base.id, before: undefined, toTime: opts.at, feed: { component: component.name, segments: staged } });
      if (outcome.report.status !== 'succeeded' && outcome.report.steps.some((s) => s.status === 'failed')) {
        (outcome.report as typeof outcome.report & { point_in_time: PointInTimeSummary }).point_in_time = summary;
        return { ...outcome, pointInTime: summary };
      }
      return { ...finishReport(outcome, component, plan, summary, undefined), pointInTime: summary };
    }

    const outcome = await runRestore({ ...opts, store, snapshot: base.id, before: undefined, toTime: opts.at });
    const report = outcome.report;
    if (report.status !== 'succeeded' && report.steps.some((s) => s.status === 'failed')) {
      return { ...outcome, pointInTime: summary };
    }
    const started = new Date();
    const step: StepResult = {
      id: 'redis-replay',
      component: 'redis',
      action: 'replay the replication feed',
      status: 'ok',
      startedAt: started.toISOString(),
      finishedAt: started.toISOString(),
      durationMs: 0,
      details: { ...summary },
      checks: [],
    };
    let failureKind = outcome.failureKind;
    try {
      const target = await resolveRestoreTarget(component, opts.signal);
      const client = await connectTarget(target, 0, opts.signal);
      try {
        await setRestoreMarker(client, { restore_id: report.id, snapshot: `${base.id} + feed to ${summary.reached}`, started_at: started.toISOString() });
        note(`replaying the feed into ${target.display} up to ${summary.reached}`);
        const pipe = await openTargetPipe(target, 0, opts.signal);
        let r;
        try {
          r = await replaySegments(pipe, staged, { signal: opts.signal });
        } finally {
          pipe.close();
        }
        step.details = { ...step.details, target: target.display, commands: r.commands, skipped: r.skipped, expiries_made_absolute: r.expiriesMadeAbsolute, errors: r.errors };
        const ok = r.errors === 0;
        step.checks.push({
          name: 'redis-replay-clean',
          status: ok ? 'passed' : 'failed',
          detail: ok
            ? `${r.commands} command(s) replayed to offset ${summary.reached_offset} without an error reply`
            : `${r.errors} of ${r.commands} command(s) were refused: ${r.firstErrors.join('; ')}`,
          finishedAt: new Date().toISOString(),
          durationMs: Date.now() - started.getTime(),
        });
        note(`    ${ok ? 'pass' : 'FAIL'}    redis-replay-clean: ${step.checks[0]!.detail}`);
        if (!ok) {
          step.status = 'failed';
          step.reason = `${r.errors} replayed command(s) were refused by the target`;
          failureKind ??= 'targetError';
        } else {
          await clearRestoreMarker(client);
        }
      } finally {
        client.disconnect();
      }
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      step.status = 'failed';
      step.reason = err instanceof Error ? err.message : String(err);
      failureKind ??= err instanceof TykdrError ? err.kind : 'targetError';
    }
    const finished = new Date();
    step.finishedAt = finished.toISOString();
    step.durationMs = finished.getTime() - started.getTime();
    return { ...finishReport({ report, failureKind }, component, plan, summary, step), pointInTime: summary };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The report of a point-in-time restore: the replay step (when the target replayed the feed), the point
 * reached, RPO measured from it, RTO ending with the replay's check, and the verdict again.
 */
function finishReport(outcome: RestoreOutcome, component: RedisComponent, plan: PointInTimePlan, summary: PointInTimeSummary, step: StepResult | undefined): RestoreOutcome {
  const { report } = outcome;
  let failureKind = outcome.failureKind;
  const finished = new Date();
  if (step) report.steps.push(step);
  report.finished_at = finished.toISOString();
  (report as typeof report & { point_in_time: PointInTimeSummary }).point_in_time = summary;
  if (plan.shortBy) report.warnings.push(`point in time: ${plan.shortBy}; reached ${summary.reached} instead of ${summary.asked}`);

  // RPO is measured from the point reached; RTO now ends with the replay's check.
  const incident = new Date(report.incident_at).getTime();
  const rpo = report.rpo[component.name];
  if (rpo) {
    const achieved = Math.max(0, (incident - plan.reachedAt.getTime()) / 1000);
    report.rpo[component.name] = { ...rpo, consistent_at: summary.reached, achievedSeconds: achieved, met: achieved <= rpo.objectiveSeconds };
  }
  if (step?.status === 'ok') {
    const achieved = (finished.getTime() - incident) / 1000;
    report.rto = { ...report.rto, achievedSeconds: achieved, met: achieved <= report.rto.objectiveSeconds, last_verified_at: step.finishedAt };
  }
  const stepsOk = report.steps.every((s) => s.status !== 'failed');
  const missed = missedObjectives(report.rto, report.rpo, stepsOk);
  if (stepsOk && missed.length > 0) failureKind ??= 'objectiveMissed';
  if (stepsOk && missed.length === 0 && outcome.failureKind === 'objectiveMissed') failureKind = undefined;
  report.status = stepsOk && missed.length === 0 ? 'succeeded' : 'failed';
  report.verdict = { ...report.verdict, missed, passed: failureKind === undefined };
  return { report, failureKind };
}
