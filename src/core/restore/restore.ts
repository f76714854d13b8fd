import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import type { Store } from '../interfaces/store.js';
import { listSnapshots, newestComplete, resolveSnapshot } from '../catalog.js';
import type { Component, Config } from '../config/load.js';
import { badInput, isAbortError, TykdrError, type ErrorKind } from '../errors.js';
import type { Backends } from '../interfaces/backends.js';
import { newSnapshotId } from '../layout.js';
import type { Manifest } from '../manifest.js';
import type { Plan } from '../plan/plan.js';
import type { PlanStep } from '../plan/schema.js';
import { PLAN_COMPONENTS } from '../plan/roles.js';
import { TOOL_VERSION } from '../version.js';
import { checkTicket, gatherEvidence, type Evidence } from '../report/evidence.js';
import { trustedManifest } from '../signing/manifest-signature.js';
import { resolveDecryptionKeys } from './decryption-keys.js';
import { measureRpo, measureRto, missedObjectives } from './objectives.js';
import { assessTargets, planMembers, preflightRestore, secretWarnings, stagingNeed, type PlanMembers, type TargetAssessment } from './preflight.js';
import { stageArtifact, type StagedArtifact } from './staging.js';
import { makeWorkDir, removeWorkDir, sweepStaleWorkDirs } from './work-dirs.js';
import { describeKilled, forgetRestore, Journal, killedRestores, type JournalEntry } from './journal.js';
import { runStep, StepFailure } from './steps.js';
import type { DrillGatewayStarter, RestoreReport, StepResult } from './types.js';
import { checkSelectionPlan, previewSelection, type SelectionPreview } from './selection.js';
import type { KeySelection } from '../tyk/key-selection.js';
import type { FeedSegment, StagingRead, Target } from '../interfaces/target.js';

export interface RestoreProgress {
  note?(line: string): void;
  stepStarted?(step: PlanStep, index: number, total: number): void;
  stepDone?(result: StepResult): void;
}

export interface RestoreOptions {
  config: Config;
  backends: Backends;
  plan: Plan;
  /** "latest", a snapshot id, or undefined with `before`. */
  snapshot?: string;
  /** Newest complete snapshot created before this time. */
  before?: Date;
  incidentAt?: Date;
  dryRun?: boolean;
  /** Confirmed up front (--yes). */
  yes?: boolean;
  /** Asks a person; resolves false when they decline. Absent: not interactive. */
  confirm?: (question: string) => Promise<boolean>;
  identityFile?: string;
  /** Extract file components under this folder instead of their original roots. */
  filesTo?: string;
  kind?: 'restore' | 'drill';
  signal?: AbortSignal;
  progress?: RestoreProgress;
  /** Store override (drills restore from the configured store; tests may pass one). */
  store?: Store;
  /** Stores passed over before `store` was chosen (unreachable, or without the snapshot): warned and reported. */
  storeFallback?: Array<{ name: string; location: string; reason: string }>;
  /** Newer snapshots passed over, when the caller chose the snapshot (a drill): warned and reported. */
  passedOver?: string[];
  /** Finish a killed restore (from its journal): same snapshot and plan; steps it completed are not run again. */
  resume?: JournalEntry;
  /** Restore what the snapshot has when a plan step's component is configured but missing from it. */
  allowPartial?: boolean;
  /** --target overrides as given, recorded in the journal so --resume restores to the same place. */
  targetOverrides?: Record<string, { host: string; port: number }>;
  /** What started the run, for the report's evidence: "manual" (default) or "schedule <job>" from the daemon. */
  trigger?: string;
  /** --ticket: the change or incident ticket, for the report's evidence. */
  ticket?: string;
  /** Drills with drill.gateway.binary: the gateway step starts this gateway and runs the gateway checks against it. */
  drillGateway?: DrillGatewayStarter;
  /** --key/--class/--org/--api/--no-overwrite: a selective Redis restore (plan redis only); see selection.ts. */
  selection?: KeySelection;
  /** restore --to-time with a selection: the staged feed applied to this Redis component's snapshot before selecting. */
  feed?: { component: string; segments: FeedSegment[] };
  /** restore --to-time: the time asked, recorded in the journal (the snapshot is the chain's base). */
  toTime?: Date;
}

export interface DryRunSummary {
  snapshot: { id: string; created_at: string; location: string };
  plan: string;
  steps: Array<{ id: string; component: string; action: string; members: string[]; verify: string[] }>;
  objects: Array<{ component: string; name: string; stored_bytes: number; plaintext_bytes: number }>;
  targets: TargetAssessment[];
  expected: { seconds: number; from: string } | null;
  /** The manifest signature check: verified, or "manifest signature not checked" without signing.verifyKeys. */
  manifest_signature: string;
  /** A selective restore: per Redis component, what would be written, kept and skipped. */
  selection?: SelectionPreview[];
  /** Restores on this host that were killed (their journal is left): what each may have left partial. */
  killed_restores: string[];
}

export interface RestoreOutcome {
  report: RestoreReport;
  /** The exit-code kind when the restore failed. */
  failureKind?: ErrorKind;
}

/**
 * Picks the snapshot a restore uses: an id, "latest", or the newest complete one before a time. Newer snapshots passed
 * over for a damaged manifest are said in `passedOver`.
 */
export async function chooseSnapshot(store: Store, ref: string | undefined, before: Date | undefined, signal?: AbortSignal, passedOver?: string[]): Promise<Manifest> {
  if (before === undefined) return resolveSnapshot(store, ref ?? 'latest', signal, passedOver);
  if (ref !== undefined && ref !== 'latest') throw badInput('--snapshot ID and --before TIME exclude each other', 'use one of them');
  const found = newestComplete((await listSnapshots(store, signal)).filter((s) => s.createdAt.getTime() < before.getTime()), store, passedOver);
  if (!found?.manifest) throw badInput(`no complete snapshot before ${before.toISOString()} in ${store.location}`, 'list them with `tykdr snapshots`');
  return found.manifest;
}

/** What a restore would do, without doing it. */
export async function planRestore(opts: RestoreOptions): Promise<DryRunSummary> {
  const store = opts.store ?? opts.backends.openStore(opts.config.store);
  const manifest = await chooseSnapshot(store, opts.snapshot, opts.before, opts.signal);
  const signature = await trustedManifest(store, manifest, opts.config.signing, opts.signal);
  const members = await planMembers(opts.plan, manifest, opts.config, opts.backends);
  if (opts.selection) checkSelectionPlan(opts.selection, opts.plan, members);
  const names = PLAN_COMPONENTS.flatMap((r) => members.byRole[r]);
  const selection = opts.selection
    ? await previewSelection({ config: opts.config, store, manifest, members, selection: opts.selection, feed: opts.feed, identityFile: opts.identityFile, signal: opts.signal, note: opts.progress?.note })
    : undefined;
  return {
    snapshot: { id: manifest.id, created_at: manifest.created_at, location: store.location },
    plan: opts.plan.name,
    steps: opts.plan.ordered.map((s) => ({ id: s.id, component: s.component, action: s.action, members: members.byRole[s.component], verify: s.verify })),
    objects: names.map((n) => ({
      component: n,
      name: manifest.components[n]!.artifact.name,
      stored_bytes: manifest.components[n]!.artifact.stored_bytes,
      plaintext_bytes: manifest.components[n]!.artifact.plaintext_bytes,
    })),
    targets: await assessTargets(members, manifest, opts.filesTo, opts.signal),
    expected: null,
    manifest_signature: signature.detail,
    ...(selection ? { selection } : {}),
    killed_restores: (await killedRestores(opts.config.restore.stagingDir)).map((k) => `${describeKilled(k)}; \`tykdr restore --resume\` finishes it`),
  };
}

/** One restore in progress: what was chosen, and the results so far. */
interface RestoreRun {
  opts: RestoreOptions;
  id: string;
  startedAt: Date;
  incidentAt: Date;
  store: Store;
  manifest: Manifest;
  members: PlanMembers;
  /** Snapshot components to stage, in manifest order. */
  names: string[];
  keys: Awaited<ReturnType<typeof resolveDecryptionKeys>>;
  targets: TargetAssessment[];
  warnings: string[];
  /** Killed restores this one makes moot when it succeeds (same plan, or the full plan). */
  superseded: JournalEntry[];
  evidence: Evidence;
  steps: StepResult[];
  failureKind?: ErrorKind;
  journal?: Journal;
  note(line: string): void;
}

/**
 * Runs a plan: stages and verifies every artifact first (nothing touches a target before all proved
 * intact), asks before overwriting live data, then runs the steps in order. Always returns a full
 * report; a failed step stops (or not, per on_error) the steps after it.
 */
export async function runRestore(opts: RestoreOptions): Promise<RestoreOutcome> {
  const run = await chooseAndAssess(opts);
  await confirmOverwrite(run);
  const stagingDir = opts.config.restore.stagingDir;
  const workDir = await makeWorkDir(stagingDir, `tykdr-restore-${run.id}-`);
  try {
    if (opts.kind !== 'drill') run.journal = await startJournal(run);
    const staged = await stageAll(run, workDir);
    if (staged) {
      await run.journal?.phase('restoring');
      await runSteps(run, staged, workDir);
    }
  } finally {
    await removeWorkDir(workDir).catch((err: Error) => run.note(`warning: could not remove the staging folder ${workDir}: ${err.message}; it may hold decrypted snapshot data: remove it by hand`));
  }
  // An interrupted restore keeps its journal: `--resume` finishes it. Otherwise the report tells the rest.
  if (run.failureKind !== 'interrupted') {
    await run.journal?.close();
    if (opts.resume) await forgetRestore(stagingDir, opts.resume.restore_id);
    if (run.failureKind === undefined) for (const k of run.superseded) await forgetRestore(stagingDir, k.restore_id);
  }
  return { report: buildReport(run), failureKind: run.failureKind };
}

async function startJournal(run: RestoreRun): Promise<Journal> {
  const { opts } = run;
  return Journal.create(opts.config.restore.stagingDir, {
    restore_id: run.id,
    started_at: run.startedAt.toISOString(),
    incident_at: run.incidentAt.toISOString(),
    plan: opts.plan.file,
    snapshot: run.manifest.id,
    ...(opts.filesTo ? { files_to: opts.filesTo } : {}),
    ...(opts.targetOverrides && Object.keys(opts.targetOverrides).length ? { targets: opts.targetOverrides } : {}),
    ...(opts.selection ? { selection: opts.selection } : {}),
    ...(opts.toTime ? { to_time: opts.toTime.toISOString() } : {}),
    target_descriptions: run.targets.map((t) => t.target),
  });
}

/** Phase 1: the snapshot, its members per plan role, the keys, and what each target holds now. */
async function chooseAndAssess(opts: RestoreOptions): Promise<RestoreRun> {
  const { config, plan } = opts;
  const startedAt = new Date();
  const incidentAt = opts.incidentAt ?? startedAt;
  const store = opts.store ?? opts.backends.openStore(config.store);
  const passedOver: string[] = [];
  const manifest = await chooseSnapshot(store, opts.snapshot, opts.before, opts.signal, passedOver);
  checkTicket(opts.ticket);
  // The manifest's signature (a store round trip or two) is checked while the plan and the targets are assessed, which
  // only read; its verdict is awaited before anything else fails or goes on, so a refused manifest is still the error.
  const gathering = gatherEvidence({ store, manifest, plan, config, trigger: opts.trigger, ticket: opts.ticket, signal: opts.signal });
  gathering.catch(() => undefined);
  let assessed: Awaited<ReturnType<typeof assessPlan>>;
  try {
    assessed = await assessPlan(opts, store, manifest);
  } catch (err) {
    await gathering;
    throw err;
  }
  const evidence = await gathering;
  const { members, names, keys, warnings, targets } = assessed;
  warnings.push(...(opts.passedOver ?? []), ...passedOver);
  for (const n of names) {
    if (Date.parse(manifest.components[n]!.consistent_at) > incidentAt.getTime()) {
      warnings.push(`${n}: snapshot ${manifest.id} was taken after the incident began (${incidentAt.toISOString()}); it may contain the damage. Use --before to pick an earlier one.`);
    }
  }
  const note = (l: string) => opts.progress?.note?.(l);
  for (const line of await sweepStaleWorkDirs(config.restore.stagingDir)) note(line);
  const killed = opts.kind === 'drill' ? [] : (await killedRestores(config.restore.stagingDir)).filter((k) => k.restore_id !== opts.resume?.restore_id);
  for (const k of killed) {
    warnings.push(`${describeKilled(k)}. This restore does not finish it; \`tykdr restore --resume\` would.`);
  }
  for (const w of warnings) note(`warning: ${w}`);
  const superseded = killed.filter((k) => k.plan === plan.file || plan.name === 'full');
  return { opts, id: newSnapshotId(startedAt), startedAt, incidentAt, store, manifest, members, names, keys, targets, warnings, superseded, evidence, steps: [], note };
}

/** chooseAndAssess's reads of the plan, the keys and the targets, with the warnings they give. */
async function assessPlan(opts: RestoreOptions, store: Store, manifest: Manifest) {
  const { config, plan } = opts;
  const members = await planMembers(plan, manifest, config, opts.backends);
  if (opts.selection) checkSelectionPlan(opts.selection, plan, members);
  const names = PLAN_COMPONENTS.flatMap((r) => members.byRole[r]);
  const keys = await resolveDecryptionKeys(config, manifest, opts.identityFile);
  const warnings = await preflightRestore({
    plan,
    manifest,
    config,
    members,
    backends: opts.backends,
    allowPartial: opts.allowPartial ?? false,
    targetOverrides: opts.targetOverrides,
    stagingDir: config.restore.stagingDir ?? tmpdir(),
    reportDir: opts.kind === 'drill' ? (config.drill.reportDir ?? config.restore.reportDir) : config.restore.reportDir,
    stagingBytes: stagingNeed(names, manifest, members),
  });
  const targets = await assessTargets(members, manifest, opts.filesTo, opts.signal);
  for (const s of opts.storeFallback ?? []) warnings.push(`store "${s.name}" (${s.location}) was not used: ${s.reason}; the snapshot was read from ${store.location}`);
  warnings.push(...targets.flatMap((t) => (t.warning ? [t.warning] : [])));
  warnings.push(...(await secretWarnings(manifest, members.byRole, config, opts.filesTo)));
  return { members, names, keys, warnings, targets };
}

/** Phase 2: a restore that overwrites live data goes ahead only when confirmed (--yes or a person). */
async function confirmOverwrite(run: RestoreRun): Promise<void> {
  const live = run.targets.filter((t) => t.liveData);
  // A selective restore that keeps existing keys overwrites nothing (the plan restores only Redis).
  if (live.length === 0 || run.opts.yes || (run.opts.selection && !run.opts.selection.overwrite)) return;
  const what = live.map((t) => `${t.target} (${t.liveData})`).join('; ');
  const ok = run.opts.confirm ? await run.opts.confirm(`This restore overwrites live data: ${what}. Continue?`) : false;
  if (!ok) {
    throw badInput(
      `restore would overwrite live data: ${what}`,
      run.opts.confirm ? 'nothing was changed; run again and confirm, or pass --yes' : 'pass --yes to confirm (nothing was changed)',
    );
  }
}

/** Phase 3: every artifact staged and proven intact, as one recorded step; null when one was not. */
async function stageAll(run: RestoreRun, workDir: string): Promise<Map<string, StagedArtifact> | null> {
  const { manifest, names, opts } = run;
  const staged = new Map<string, StagedArtifact>();
  const stageStart = new Date();
  const stageChecks: StepResult['checks'] = [];
  try {
    for (const n of names) {
      run.note(`staging ${n}: ${manifest.components[n]!.artifact.name}`);
      const t0 = Date.now();
      // A target that decompresses while it loads gets the artifact decrypted but still compressed (proven intact the same way).
      const member = run.members.resolved.get(n);
      const keepCompressed = member?.target.stagesCompressed?.(manifest.components[n]!, member.component) === true;
      // A target that reads the whole artifact before it writes reads it here, as it is staged (not again afterwards).
      const reader = member ? stagingReader(run, n, member) : null;
      const s = await stageArtifact({
        store: run.store, manifest, component: n, dir: path.join(workDir, 'staged'), keys: run.keys, signal: opts.signal, keepCompressed,
        ...(reader ? { through: reader.through } : {}),
      });
      staged.set(n, reader ? { ...s, read: reader.result } : s);
      stageChecks.push({
        name: 'artifact-integrity',
        status: 'passed',
        detail: `${manifest.components[n]!.artifact.name}: SHA-256 matches the manifest and every age chunk authenticated`,
        evidence: s.compression
          ? { component: n, stored_bytes: s.storedBytes, staged_compressed_bytes: s.plaintextBytes, staged_compression: s.compression }
          : { component: n, stored_bytes: s.storedBytes, plaintext_bytes: s.plaintextBytes },
        finishedAt: new Date().toISOString(),
        durationMs: Date.now() - t0,
      });
    }
    run.steps.push(stepResult('stage', 'snapshot', 'stage', 'ok', stageStart, { artifacts: names }, stageChecks));
    return staged;
  } catch (err) {
    const interrupted = stoppedBy(opts.signal, err);
    run.failureKind = interrupted ? 'interrupted' : err instanceof TykdrError ? err.kind : 'internal';
    const reason = interrupted ? stopReason(opts.signal!) : (err as Error).message;
    run.steps.push(stepResult('stage', 'snapshot', 'stage', 'failed', stageStart, { artifacts: names }, stageChecks, reason));
    for (const s of opts.plan.ordered) run.steps.push(stepResult(s.id, s.component, s.action, 'skipped', new Date(), {}, [], 'staging failed: no target was touched'));
    return null;
  }
}

/** What a step or the stage says when SIGINT/SIGTERM stopped it: the signal's reason ("interrupted by SIGTERM"). */
function stopReason(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : 'interrupted';
}

/**
 * True when `err` is how a stop by SIGINT/SIGTERM (`signal` aborted) surfaced: an abort error, the signal's own reason,
 * an 'interrupted' TykdrError, or an error that is not tykdr's (a stream torn down reports node's own AbortError, or a
 * premature close, before the store's download gives the signal's reason). A tykdr error of another kind (a SHA-256
 * mismatch found as the signal came) is what it says.
 */
function stoppedBy(signal: AbortSignal | undefined, err: unknown): boolean {
  if (signal?.aborted !== true) return false;
  if (err === signal.reason || isAbortError(err)) return true;
  return !(err instanceof TykdrError) || err.kind === 'interrupted';
}

/**
 * The target's read of component `n` while it is staged (Target.readWhileStaging), told what its restore step will
 * be given; null when it reads nothing first, or when that step will not run (done before a --resume). The result is
 * held by the staged artifact; a rejection nobody awaits (staging failed, or the step did not run) is not unhandled.
 */
function stagingReader(run: RestoreRun, n: string, member: { component: Component; target: Target }): StagingRead | null {
  const { opts, manifest } = run;
  const entry = manifest.components[n]!;
  if (!member.target.readWhileStaging) return null;
  const role = member.target.role(entry);
  const step = opts.plan.ordered.find((s) => s.action === 'restore' && s.component === role);
  if (!step || opts.resume?.steps[step.id] === 'ok') return null;
  const reader = member.target.readWhileStaging({
    name: n,
    component: member.component,
    entry,
    checks: step.verify,
    selection: opts.selection,
    ...(opts.feed?.component === n ? { feed: opts.feed.segments } : {}),
    signal: opts.signal ?? new AbortController().signal,
  });
  reader?.result.catch(() => undefined);
  return reader;
}

/** Phase 4: the plan's steps in order; a failed step stops or skips its dependants per on_error. */
async function runSteps(run: RestoreRun, staged: Map<string, StagedArtifact>, workDir: string): Promise<void> {
  const { opts, manifest } = run;
  const { config, plan } = opts;
  const failed = new Set<string>();
  let stopped: string | undefined;
  for (const [i, step] of plan.ordered.entries()) {
    const t0 = new Date();
    if (stopped) {
      run.steps.push(stepResult(step.id, step.component, step.action, 'skipped', t0, {}, [], `stopped after step ${stopped} failed`));
      continue;
    }
    // Stopped by SIGINT/SIGTERM: no step starts after it (on_error: continue or not), so none touches a target.
    if (opts.signal?.aborted) {
      run.failureKind = 'interrupted';
      run.steps.push(stepResult(step.id, step.component, step.action, 'skipped', t0, {}, [], `not started: ${stopReason(opts.signal)}`));
      continue;
    }
    const blocked = step.depends_on.find((d) => failed.has(d));
    if (blocked) {
      failed.add(step.id);
      run.steps.push(stepResult(step.id, step.component, step.action, 'skipped', t0, {}, [], `depends on ${blocked}, which failed`));
      continue;
    }
    if (opts.resume?.steps[step.id] === 'ok') {
      const r = stepResult(step.id, step.component, step.action, 'ok', t0, { resumed: `done by restore ${opts.resume.restore_id} before it was killed; not run again` }, []);
      run.steps.push(r);
      opts.progress?.stepDone?.(r);
      continue;
    }
    opts.progress?.stepStarted?.(step, i, plan.ordered.length);
    const nothing = run.members.byRole[step.component].length === 0 && step.action === 'restore' && !hasService(step, config);
    if (nothing) {
      const r = stepResult(step.id, step.component, step.action, 'skipped', t0, {}, [], `the snapshot has no ${step.component} component and none is configured`);
      run.steps.push(r);
      opts.progress?.stepDone?.(r);
      continue;
    }
    await run.journal?.step(step.id, 'started');
    const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(step.timeoutMs)]) : AbortSignal.timeout(step.timeoutMs);
    let r: StepResult;
    try {
      const out = await runStep(step, {
        config,
        manifest,
        restoreId: run.id,
        snapshotId: manifest.id,
        staged,
        workDir,
        members: run.members,
        serviceCheck: opts.backends.serviceCheck,
        filesTo: opts.filesTo,
        selection: opts.selection,
        feed: opts.feed,
        drill: opts.kind === 'drill',
        drillGateway: opts.kind === 'drill' ? opts.drillGateway : undefined,
        signal,
        note: run.note,
      });
      const bad = out.checks.filter((c) => c.status === 'failed');
      r = stepResult(step.id, step.component, step.action, bad.length ? 'failed' : 'ok', t0, out.details, out.checks, bad.length ? `check ${bad.map((c) => c.name).join(', ')} failed: ${bad[0]!.detail}` : undefined);
      if (bad.length) run.failureKind ??= 'verifyFailed';
    } catch (err) {
      const f = err instanceof StepFailure ? err : new StepFailure(String(err), 'internal', { details: {}, checks: [] });
      const timedOut = signal.aborted && !opts.signal?.aborted;
      // Any step error once the signal aborted is the stop: a step's own errors carry their kind (a target's
      // connection torn down by the abort reports a targetError), so they cannot be told apart here as the stage's can.
      const interrupted = opts.signal?.aborted === true;
      const reason = timedOut ? `timed out after ${step.timeout}` : interrupted ? stopReason(opts.signal!) : f.message;
      r = stepResult(step.id, step.component, step.action, 'failed', t0, f.partial.details, f.partial.checks, reason);
      // Interrupted wins over an earlier step's failure (on_error: continue): the run stopped, its journal is kept for
      // --resume, and it exits 130.
      if (interrupted) run.failureKind = 'interrupted';
      else run.failureKind ??= f.kind === 'internal' && timedOut ? 'targetError' : f.kind;
    }
    for (const c of r.checks) {
      if (c.status === 'skipped' && !/^drill( only)?:/.test(c.detail)) run.warnings.push(`${step.id}: check ${c.name} skipped: ${c.detail}`);
    }
    run.steps.push(r);
    await run.journal?.step(step.id, r.status);
    opts.progress?.stepDone?.(r);
    if (r.status === 'failed') {
      failed.add(step.id);
      if (step.on_error === 'stop') stopped = step.id;
    }
  }
}

/** Phase 5: RTO and RPO measured against the tiers, and the report. */
function buildReport(run: RestoreRun): RestoreReport {
  const { opts, manifest, names } = run;
  const succeeded = run.failureKind === undefined;
  const rto = measureRto({ incidentAt: run.incidentAt, steps: run.steps, succeeded, tiers: opts.config.tiers, componentTiers: names.map((n) => manifest.components[n]!.tier) });
  const rpo = measureRpo({ incidentAt: run.incidentAt, manifest, components: names, tiers: opts.config.tiers });
  const missed = missedObjectives(rto, rpo, succeeded);
  // A run that worked but missed an objective fails, with its own exit code.
  if (succeeded && missed.length > 0) run.failureKind = 'objectiveMissed';
  const notProven = run.steps.flatMap((s) => s.checks.filter((c) => c.status === 'skipped').map((c) => `${s.id}/${c.name}`));
  return {
    format: 'tykdr-restore-report/1',
    id: run.id,
    kind: opts.kind ?? 'restore',
    plan: { name: opts.plan.name, file: opts.plan.file, version: opts.plan.version },
    snapshot: { id: manifest.id, created_at: manifest.created_at, location: run.store.location },
    host: hostname(),
    tool_version: TOOL_VERSION,
    dry_run: false,
    incident_at: run.incidentAt.toISOString(),
    started_at: run.startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    status: run.failureKind === undefined ? 'succeeded' : 'failed',
    steps: run.steps,
    rto,
    rpo,
    warnings: run.warnings,
    verdict: { passed: run.failureKind === undefined, missed, not_proven: notProven },
    evidence: run.evidence,
  };
}

function hasService(step: PlanStep, config: Config): boolean {
  return (step.component === 'gateway' && config.gateway !== undefined) || (step.component === 'dashboard' && config.dashboard !== undefined);
}

function stepResult(
  id: string,
  component: string,
  action: string,
  status: StepResult['status'],
  start: Date,
  details: Record<string, unknown>,
  checks: StepResult['checks'],
  reason?: string,
): StepResult {
  const end = new Date();
  return {
    id,
    component,
    action,
    status,
    ...(reason ? { reason } : {}),
    startedAt: start.toISOString(),
    finishedAt: end.toISOString(),
    durationMs: end.getTime() - start.getTime(),
    details,
    checks,
  };
}
