import type { BackupResult } from '../core/backup.js';
import { TykdrError } from '../core/errors.js';
import type { BackupState } from './backup-state.js';
import { componentHealth } from './health.js';
import type { JobRunner, RunResult } from './job-runner.js';
import type { DrillKind, DrillOutcomes, Jobs, JobSummary } from './jobs.js';
import { errorMessage, type Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Notifier } from './notify.js';

export interface HandlerDeps {
  jobs: Jobs;
  runner: JobRunner;
  state: BackupState;
  metrics: Metrics;
  notifier: Notifier;
  log: Logger;
  instanceId: string;
  now: () => Date;
  startedAt: Date;
}

/**
 * What each kind of job does around the service it calls: backups update the per-component state and
 * send backup_failed; prune and verify log their summary; drills set the drill metrics and send
 * drill_passed / drill_failed per plan. An aborted run (shutdown, lost leadership) is neither a success
 * nor a failure: nothing is notified.
 */
export class JobHandlers {
  readonly #d: HandlerDeps;

  constructor(d: HandlerDeps) {
    this.#d = d;
    defineMetrics(d);
  }

  async backup(name: string, components: string[], signal: AbortSignal): Promise<RunResult<BackupResult>> {
    const { runner, state, log, now } = this.#d;
    const r = await runner.run(
      name,
      signal,
      (s) => {
        state.started(components, now());
        return this.#d.jobs.backup(components, s);
      },
      { components },
    );
    if (r.status === 'ok' && r.value) {
      const res = r.value;
      state.applyManifest(res.manifest, { ranHere: true });
      const bytes = Object.values(res.manifest.components).reduce((n, c) => n + c.artifact.stored_bytes, 0);
      log.info('backup complete', { job: name, snapshot: res.id, components, duration_ms: r.durationMs, stored_bytes: bytes });
      this.#d.metrics.set('tykdr_store_latest_snapshot_timestamp_seconds', { store: 'primary' }, new Date(res.manifest.created_at).getTime() / 1000);
      await this.copyAfterBackup(res.id, res.manifest.created_at, signal);
    } else if (r.status === 'aborted') {
      state.ended(components);
      log.warn('backup aborted; its partial objects were removed', { job: name, components, duration_ms: r.durationMs, error: r.error });
    } else if (r.status === 'failed') {
      const message = log.redact(errorMessage(r.error));
      state.failed(components, message, now());
      log.error('backup failed', { job: name, components, duration_ms: r.durationMs, error: r.error });
      // runBackup prefixes errors with the component they came from.
      const named = /^components\.([a-z][a-z0-9-]*)/.exec(message)?.[1];
      const component = named && components.includes(named) ? named : components.length === 1 ? components[0] : undefined;
      this.#d.notifier.notify({
        event: 'backup_failed',
        ...(component ? { component } : {}),
        message,
        details: {
          components,
          instance: this.#d.instanceId,
          error_kind: r.error instanceof TykdrError ? r.error.kind : 'internal',
          ...(r.error instanceof TykdrError && r.error.fix ? { fix: log.redact(r.error.fix) } : {}),
        },
      });
    }
    return r;
  }

  /**
   * The off-site copies of a new snapshot (job "copy"): each auto copy store gets it, read back and checked.
   * A failed copy is a failed run (logged, counted in tykdr_job_runs_total{job="copy"}); the backup stays a success.
   */
  async copyAfterBackup(snapshotId: string, createdAt: string, signal: AbortSignal): Promise<void> {
    const copy = this.#d.jobs.copy;
    if (!copy || signal.aborted) return;
    let copied: string[] = [];
    await this.summary('copy', signal, async (s) => {
      const r = await copy(snapshotId, s);
      copied = r.copied;
      return r;
    });
    for (const store of copied) this.#d.metrics.set('tykdr_store_latest_snapshot_timestamp_seconds', { store }, new Date(createdAt).getTime() / 1000);
  }

  /** Sets each store's newest complete snapshot from the stores themselves (at start). */
  async loadStoresLatest(signal: AbortSignal): Promise<void> {
    if (!this.#d.jobs.storesLatest) return;
    try {
      for (const { store, latest } of await this.#d.jobs.storesLatest(signal)) {
        if (latest) this.#d.metrics.set('tykdr_store_latest_snapshot_timestamp_seconds', { store }, latest.getTime() / 1000);
      }
    } catch (err) {
      this.#d.log.warn('could not list the stores; tykdr_store_latest_snapshot_timestamp_seconds starts empty', { error: err });
    }
  }

  /** prune and verify: a summary that is not ok counts as a failed run. */
  async summary(name: string, signal: AbortSignal, fn: (s: AbortSignal) => Promise<JobSummary>): Promise<RunResult<JobSummary>> {
    const { log } = this.#d;
    const r = await this.#d.runner.run(name, signal, async (s) => {
      const summary = await fn(s);
      if (!summary.ok) throw new JobProblem(summary.message, summary.details);
      return summary;
    });
    if (r.status === 'ok') log.info(`${name} complete: ${r.value!.message}`, { job: name, duration_ms: r.durationMs, details: r.value!.details });
    else if (r.status === 'failed') {
      const details = r.error instanceof JobProblem ? r.error.details : undefined;
      log.error(`${name} failed`, { job: name, duration_ms: r.durationMs, error: r.error, details });
    } else if (r.status === 'aborted') log.warn(`${name} aborted`, { job: name, duration_ms: r.durationMs, error: r.error });
    return r;
  }

  /** Sets the drill metrics from the drills on record (newest per plan), so they survive a restart. */
  async loadDrillHistory(signal: AbortSignal): Promise<void> {
    if (!this.#d.jobs.drillHistory) return;
    try {
      const records = await this.#d.jobs.drillHistory(signal);
      const seen = new Set<string>();
      const passed = new Set<string>();
      for (const r of records) {
        // The newest passing drill per plan: the evidence an audit asks for, even when a later drill failed.
        if (r.passed && !passed.has(r.plan)) {
          passed.add(r.plan);
          this.#d.metrics.set('tykdr_drill_last_pass_timestamp_seconds', { plan: r.plan }, r.finishedAt.getTime() / 1000);
        }
        if (seen.has(r.plan)) continue;
        seen.add(r.plan);
        this.#d.metrics.set('tykdr_drill_last_success', { plan: r.plan }, r.passed ? 1 : 0);
        this.#d.metrics.set('tykdr_drill_last_timestamp_seconds', { plan: r.plan }, r.finishedAt.getTime() / 1000);
        if (r.rtoSeconds !== null) this.#d.metrics.set('tykdr_drill_last_rto_seconds', { plan: r.plan }, r.rtoSeconds);
      }
      if (seen.size) this.#d.log.info('drill history loaded', { plans: [...seen] });
    } catch (err) {
      this.#d.log.warn('could not read the drill history; drill metrics start empty', { error: err });
    }
  }

  async drill(name: string, kind: DrillKind, signal: AbortSignal): Promise<RunResult<DrillOutcomes>> {
    const { log, metrics, notifier, instanceId } = this.#d;
    const r = await this.#d.runner.run(name, signal, async (s) => {
      const out = await this.#d.jobs.drill(kind, s);
      const finished = this.#d.now().getTime() / 1000;
      for (const p of out.plans) {
        metrics.set('tykdr_drill_last_success', { plan: p.plan }, p.passed ? 1 : 0);
        metrics.set('tykdr_drill_last_timestamp_seconds', { plan: p.plan }, finished);
        if (p.passed) metrics.set('tykdr_drill_last_pass_timestamp_seconds', { plan: p.plan }, finished);
        if (p.rtoSeconds !== null) metrics.set('tykdr_drill_last_rto_seconds', { plan: p.plan }, p.rtoSeconds);
        const message = p.passed
          ? `drill of plan ${p.plan} passed${p.rtoSeconds !== null ? ` (RTO ${p.rtoSeconds}s)` : ''}`
          : `drill of plan ${p.plan} failed: ${p.reason ?? 'see the report'}`;
        log[p.passed ? 'info' : 'error'](message, { job: name, plan: p.plan, snapshot: p.snapshot, rto_seconds: p.rtoSeconds });
        notifier.notify({
          event: p.passed ? 'drill_passed' : 'drill_failed',
          ...(p.snapshot ? { snapshot: p.snapshot } : {}),
          message,
          details: { plan: p.plan, kind, rto_seconds: p.rtoSeconds, instance: instanceId, ...(p.details ?? {}) },
        });
      }
      const failed = out.plans.filter((p) => !p.passed);
      if (failed.length) throw new JobProblem(`drill failed: ${failed.map((p) => p.plan).join(', ')}`);
      return out;
    });
    if (r.status === 'failed' && !(r.error instanceof JobProblem)) {
      // The drill could not run at all (no snapshot, a scratch server missing, a module that did not load).
      const message = log.redact(errorMessage(r.error));
      metrics.set('tykdr_drill_last_success', { plan: kind === 'full' ? 'full' : 'components' }, 0);
      log.error(`${name} failed`, { job: name, duration_ms: r.durationMs, error: r.error });
      notifier.notify({ event: 'drill_failed', message, details: { kind, instance: instanceId } });
    } else if (r.status === 'ok') log.info(`${name} complete`, { job: name, duration_ms: r.durationMs });
    else if (r.status === 'aborted') log.warn(`${name} aborted`, { job: name, duration_ms: r.durationMs, error: r.error });
    return r;
  }
}

/** A job that ran but reported a problem (prune/verify not ok, a drill plan failed). */
class JobProblem extends Error {
  constructor(
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'JobProblem';
  }
}

function defineMetrics(d: HandlerDeps): void {
  const m = d.metrics;
  m.define('tykdr_backup_last_success_timestamp_seconds', 'gauge', 'Consistent point of the newest complete backup of the component (unix time).');
  m.define('tykdr_backup_last_duration_seconds', 'gauge', 'Duration of the newest complete backup of the component.');
  m.define('tykdr_backup_last_bytes', 'gauge', 'Stored (compressed, encrypted) bytes of the newest complete backup of the component.');
  m.define('tykdr_backup_failures_total', 'counter', 'Failed backup runs that included the component, since the daemon started.');
  m.define('tykdr_backup_rpo_seconds', 'gauge', 'Recovery point objective of the component (from its tier).');
  m.define('tykdr_backup_health', 'gauge', 'Backup health of the component as in /hello: 0 pass, 1 warn, 2 fail.');
  m.define('tykdr_store_latest_snapshot_timestamp_seconds', 'gauge', 'Creation time of the newest complete snapshot in the store (primary, or a copy store by name), unix time.');
  m.define('tykdr_stream_lag_seconds', 'gauge', 'Point-in-time capture of the component (tykdr stream): seconds since the moment its newest stored segment covers up to.');
  m.define('tykdr_drill_last_rto_seconds', 'gauge', 'RTO measured by the last drill of the plan.');
  m.define('tykdr_drill_last_success', 'gauge', '1 when the last drill of the plan passed, 0 when it failed.');
  m.define('tykdr_drill_last_timestamp_seconds', 'gauge', 'When the last drill of the plan finished (unix time).');
  m.define('tykdr_drill_last_pass_timestamp_seconds', 'gauge', 'When the newest passing drill of the plan finished (unix time): the age of the restore evidence.');
  m.collect(() => {
    const now = d.now();
    for (const s of d.state.all()) {
      const l = { component: s.name };
      m.set('tykdr_backup_rpo_seconds', l, s.rpoMs / 1000);
      m.set('tykdr_backup_failures_total', l, s.failuresTotal);
      const h = componentHealth(s, now, d.startedAt);
      m.set('tykdr_backup_health', l, h.status === 'pass' ? 0 : h.status === 'warn' ? 1 : 2);
      if (s.lastSuccessAt) m.set('tykdr_backup_last_success_timestamp_seconds', l, s.lastSuccessAt.getTime() / 1000);
      if (s.lastDurationSeconds !== undefined) m.set('tykdr_backup_last_duration_seconds', l, s.lastDurationSeconds);
      if (s.lastBytes !== undefined) m.set('tykdr_backup_last_bytes', l, s.lastBytes);
      if (s.streamCoveredAt) m.set('tykdr_stream_lag_seconds', l, Math.max(0, (now.getTime() - s.streamCoveredAt.getTime()) / 1000));
    }
  });
}
