import { openLoggingStore } from './store-log.js';
import { CoverageTracker } from '../core/pitr/chain.js';
import type { Store } from '../core/interfaces/store.js';
import type { Config } from '../core/config/load.js';
import { EXIT_CODES, exitCodeOf, sourceUnreachable, TykdrError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { TOOL_VERSION } from '../core/version.js';
import { BackupState } from './backup-state.js';
import { componentHealth, helloResponse } from './health.js';
import { startHealthServer, type HealthServer } from './health-server.js';
import { JobHandlers } from './job-handlers.js';
import { JobRunner, type RunResult } from './job-runner.js';
import type { JobKind, Jobs } from './jobs.js';
import { LeaderElector, SoleLeader, type Leadership } from './leader.js';
import { errorMessage, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { noNotifier, webhookNotifier, type Notifier } from './notify.js';
import { openLeaderLock, type LockBackend } from './redis-lock.js';
import { cronScheduler, type Scheduler, type Ticker } from './scheduler.js';
import { jobSpecs, type JobSpec } from './schedule.js';

export interface DaemonOptions {
  config: Config;
  jobs: Jobs;
  log: Logger;
  /** Names this process in the lock, logs and metrics (default in the command: hostname-pid). */
  instanceId: string;
  /** false: --no-leader (a single daemon, no lock). */
  useLeader: boolean;
  /** Only these job kinds (--job); all when empty. */
  only?: readonly JobKind[];
  /** How long a running job may take to finish after a stop request before it is aborted. */
  graceMs: number;
  /** How long an aborted job may take to clean up before the daemon stops without it (default 10 s, TYKDR_GRACE). */
  abortGraceMs?: number;
  /** Overrides config.health.listen; false: no health server (--once). */
  healthListen?: string | false;
  scheduler?: Scheduler;
  lock?: LockBackend;
  store?: Store;
  notifier?: Notifier;
  now?: () => Date;
}

/**
 * Jobs that must not run at the same time: prune deletes snapshots that verify may be reading or a drill
 * restoring, which would raise false alarms. The later one skips its slot (logged and counted).
 */
const CONFLICTS: Partial<Record<JobKind, JobKind[]>> = {
  prune: ['verify', 'drill-components', 'drill-full'],
  verify: ['prune'],
  'drill-components': ['prune'],
  'drill-full': ['prune'],
};

/** How long pending webhook deliveries get when the daemon stops. */
export const NOTIFY_FLUSH_MS = 10_000;
const DEFAULT_ABORT_GRACE_MS = 10_000;

/**
 * The daemon: runs the scheduled jobs while it is leader, keeps per-component backup state, serves
 * /hello and /metrics, and sends notifications. `start` + `stop` for the long-running mode, `runOnce`
 * for --once. Exit codes: 0 when it stopped cleanly, 130 when a running job had to be aborted; --once
 * returns the exit code of the first failed job.
 */
export class Daemon {
  readonly metrics = new Metrics();
  readonly state: BackupState;
  readonly startedAt: Date;
  readonly #o: DaemonOptions;
  readonly #log: Logger;
  readonly #now: () => Date;
  readonly #runner: JobRunner;
  readonly #handlers: JobHandlers;
  readonly #notifier: Notifier;
  readonly #leadership: Leadership;
  readonly #store: Store;
  readonly #abortAll = new AbortController();
  readonly #breached = new Set<string>();
  #specs: JobSpec[] = [];
  #tickers: Ticker[] = [];
  #timers: NodeJS.Timeout[] = [];
  #health: HealthServer | undefined;
  #stopping = false;
  #coverage: CoverageTracker | undefined;
  #streamsBusy = false;
  #started = false;
  #refreshing: Promise<void> | undefined;

  constructor(o: DaemonOptions) {
    this.#o = o;
    this.#log = o.log;
    this.#now = o.now ?? (() => new Date());
    this.startedAt = this.#now();
    this.state = new BackupState(o.config);
    this.#store = o.store ?? openLoggingStore(o.config.store, o.log);
    this.#runner = new JobRunner({ log: o.log, metrics: this.metrics, now: this.#now });
    this.#notifier = o.notifier ?? (o.config.notifications.webhooks.length ? webhookNotifier({ webhooks: o.config.notifications.webhooks, log: o.log, metrics: this.metrics }) : noNotifier);
    this.#leadership = o.useLeader
      ? new LeaderElector({
          lock: o.lock ?? openLeaderLock(o.config, o.log, Math.max(200, leaderTtlMs(o.config) / 3)),
          instanceId: o.instanceId,
          ttlMs: leaderTtlMs(o.config),
          log: o.log,
          onChange: (leader) => this.#leaderChanged(leader),
        })
      : new SoleLeader();
    this.#handlers = new JobHandlers({
      jobs: o.jobs,
      runner: this.#runner,
      state: this.state,
      metrics: this.metrics,
      notifier: this.#notifier,
      log: o.log,
      instanceId: o.instanceId,
      now: this.#now,
      startedAt: this.startedAt,
    });
    this.#defineMetrics();
  }

  get isLeader(): boolean {
    return this.#leadership.isLeader;
  }

  get healthAddress(): { host: string; port: number } | undefined {
    return this.#health?.address;
  }

  /** Validates schedules, loads the state from the store, serves health, campaigns, and schedules. */
  async start(): Promise<void> {
    const { config } = this.#o;
    this.#specs = jobSpecs(config, this.#o.only);
    this.#log.info('daemon starting', {
      instance: this.#o.instanceId,
      version: TOOL_VERSION,
      config: config.file,
      leader: this.#o.useLeader ? 'elected' : 'sole (--no-leader)',
      jobs: this.#specs.map((s) => ({ job: s.name, cron: s.cron, why: s.reason })),
    });
    await this.#refresh('start');
    await this.#handlers.loadDrillHistory(this.#abortAll.signal);
    // Not awaited: a copy store that is down must not hold up the start (the listing has its own timeouts).
    void this.#handlers.loadStoresLatest(this.#abortAll.signal);
    if (this.#o.healthListen !== false) {
      this.#health = await startHealthServer({
        listen: this.#o.healthListen ?? config.health.listen,
        token: config.health.token,
        hello: () => this.hello(),
        metrics: () => this.metrics.render(),
        log: this.#log,
      });
      const { host, port } = this.#health.address;
      this.#log.info('health server listening', { address: `${host}:${port}`, auth: config.health.token ? 'bearer token' : 'none' });
      if (!config.health.token && !isLoopback(host)) {
        this.#log.warn('health endpoints are reachable from the network without a token', { address: `${host}:${port}`, fix: 'set health.token (use ${ENV_VAR})' });
      }
    }
    this.#leadership.start();
    if (!this.#o.useLeader) this.#leaderChanged(true);
    const scheduler = this.#o.scheduler ?? cronScheduler(this.#log);
    for (const spec of this.#specs) this.#tickers.push(scheduler.schedule(spec.name, spec.cron, () => void this.trigger(spec)));
    const minRpo = Math.min(...this.state.all().map((s) => s.rpoMs));
    this.#every(clamp(minRpo / 10, 1000, 30_000), () => this.checkRpo());
    this.#every(clamp(minRpo / 4, 1000, 60_000), () => void this.#refresh('periodic'));
    if (Object.values(config.components).some((c) => c.kind === 'redis')) {
      void this.#refreshStreams();
      this.#every(clamp(minRpo / 20, 2000, 15_000), () => void this.#refreshStreams());
    }
    this.#started = true;
  }

  /** The /hello answer now. */
  hello(): ReturnType<typeof helloResponse> {
    const role = this.#o.useLeader ? (this.isLeader ? 'leader' : 'follower') : 'sole instance';
    return helloResponse(this.state.all(), this.#now(), this.startedAt, {
      version: TOOL_VERSION,
      description: `tykdr daemon ${this.#o.instanceId} (${role})`,
    });
  }

  /** Runs one scheduled job now, unless this instance is not leader, is stopping, or the job is still running. */
  async trigger(spec: JobSpec): Promise<RunResult<unknown> | undefined> {
    if (this.#stopping) return undefined;
    if (!this.#leadership.isLeader) {
      this.#log.debug('not leader: slot skipped', { job: spec.name });
      return undefined;
    }
    const busy = (CONFLICTS[spec.kind] ?? []).filter((k) => this.#runner.isRunning(k));
    if (busy.length && !this.#runner.isRunning(spec.name)) {
      this.metrics.inc('tykdr_job_skipped_conflict_total', { job: spec.name });
      this.#log.warn(`skipped: ${spec.name} does not run while ${busy.join(' and ')} runs`, { job: spec.name, running: busy });
      return { status: 'skipped-conflict', durationMs: 0 };
    }
    const signal = AbortSignal.any([this.#leadership.termSignal, this.#abortAll.signal]);
    switch (spec.task.kind) {
      case 'backup':
        return this.#handlers.backup(spec.name, spec.task.components, signal);
      case 'prune':
        return this.#handlers.summary(spec.name, signal, (s) => this.#o.jobs.prune(s));
      case 'verify': {
        const pct = spec.task.samplePercent;
        return this.#handlers.summary(spec.name, signal, (s) => this.#o.jobs.verify(pct, s));
      }
      case 'drill': {
        const kind = spec.task.drill;
        return this.#handlers.drill(spec.name, kind, signal);
      }
    }
  }

  /**
   * --once: if leader (or --no-leader), runs one backup of every component, then prune, verify and the
   * drills (or only the --job kinds), one after another; then releases the lock. Returns the exit code.
   */
  async runOnce(stop: AbortSignal, force: AbortSignal): Promise<number> {
    const { config } = this.#o;
    const specs = jobSpecs(config, this.#o.only);
    const backups = specs.filter((s) => s.kind === 'backup');
    const all = Object.keys(config.components).filter((n) => backups.some((b) => b.task.kind === 'backup' && b.task.components.includes(n)));
    const plan: JobSpec[] = [
      ...(all.length ? [{ name: `backup:${all.join(',')}`, kind: 'backup' as const, cron: '', task: { kind: 'backup' as const, components: all }, reason: '--once' }] : []),
      ...specs.filter((s) => s.kind !== 'backup'),
    ];
    this.#log.info('daemon --once starting', {
      instance: this.#o.instanceId,
      version: TOOL_VERSION,
      config: config.file,
      leader: this.#o.useLeader ? 'elected' : 'sole (--no-leader)',
      jobs: plan.map((s) => s.name),
    });
    if (this.#o.useLeader) {
      let leader: boolean;
      try {
        leader = await this.#leadership.attempt();
      } catch (err) {
        await this.#leadership.stop();
        throw sourceUnreachable(
          `cannot reach the leader lock: ${this.#log.redact(errorMessage(err))}`,
          'check leader (or the first redis component), or pass --no-leader',
          err,
        );
      }
      if (!leader) {
        this.#log.info('--once: another instance is leader; nothing to do', { instance: this.#o.instanceId });
        await this.#leadership.stop();
        return 0;
      }
      this.#leadership.start();
    }
    this.#leaderChanged(true);
    const onStop = () => (this.#stopping = true);
    stop.addEventListener('abort', onStop, { once: true });
    let code = 0;
    try {
      const onForce = () => this.#runner.abortAll(new TykdrError('interrupted', 'interrupted by a second signal'));
      force.addEventListener('abort', onForce, { once: true });
      for (const spec of plan) {
        if (this.#stopping || !this.#leadership.isLeader) break;
        const running = this.trigger(spec);
        const graceTimer = this.#graceOnStop(stop);
        const r = await running;
        graceTimer.cancel();
        if (!r) continue;
        if (r.status === 'aborted') code = 130;
        else if (r.status === 'failed' && code === 0) code = exitCodeOf(r.error);
      }
      force.removeEventListener('abort', onForce);
      if (!this.#leadership.isLeader && !this.#stopping) {
        this.#log.error('--once: lost leadership before every job ran', { instance: this.#o.instanceId });
        code = EXIT_CODES.sourceUnreachable;
      }
    } finally {
      stop.removeEventListener('abort', onStop);
      this.#stopping = true;
      await this.#leadership.stop();
      this.#leaderChanged(false);
      await this.#notifier.close(NOTIFY_FLUSH_MS);
    }
    return code;
  }

  /**
   * Stops scheduling, lets running jobs finish for up to graceMs (or until `force` aborts), then aborts
   * them and waits for their clean-up; releases the lock; returns 0, or 130 when a job was aborted.
   */
  async stop(force?: AbortSignal): Promise<number> {
    if (this.#stopping) return 0;
    this.#stopping = true;
    for (const t of this.#tickers) t.stop();
    for (const t of this.#timers) clearInterval(t);
    const running = this.#runner.runningJobs;
    let aborted = false;
    if (running.length) {
      this.#log.info('stopping: waiting for running jobs', { jobs: running, grace_ms: this.#o.graceMs });
      const finished = await raceAbort(this.#runner.idle(this.#o.graceMs), force);
      if (!finished) {
        aborted = true;
        this.#log.warn(`stopping: ${force?.aborted ? 'second signal' : 'grace period over'}; aborting running jobs`, { jobs: this.#runner.runningJobs });
        this.#abortAll.abort(new TykdrError('interrupted', 'the daemon is stopping'));
        if (!(await this.#runner.idle(this.#o.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS))) {
          this.#log.error('stopping: jobs did not finish after being aborted', { jobs: this.#runner.runningJobs });
        }
      }
    }
    await this.#leadership.stop();
    this.#leaderChanged(false);
    await this.#notifier.close(NOTIFY_FLUSH_MS);
    await this.#refreshing;
    await this.#health?.close();
    if (this.#started) this.#log.info('daemon stopped', { exit_code: aborted ? 130 : 0 });
    return aborted ? 130 : 0;
  }

  /**
   * rpo_breached once per breach, from the leader only; "RPO met again" is logged when it clears. Runs on
   * a timer (every RPO/10, between 1 and 30 s); public so tests can call it at chosen times.
   */
  checkRpo(): void {
    if (!this.#leadership.isLeader || this.#stopping) return;
    const now = this.#now();
    for (const s of this.state.all()) {
      const h = componentHealth(s, now, this.startedAt);
      if (h.late && !this.#breached.has(s.name)) {
        this.#breached.add(s.name);
        this.#log.warn('RPO breached', { component: s.name, snapshot: s.lastSnapshot, age_seconds: h.ageSeconds, rpo_seconds: s.rpoMs / 1000 });
        this.#notifier.notify({
          event: 'rpo_breached',
          component: s.name,
          ...(s.lastSnapshot ? { snapshot: s.lastSnapshot } : {}),
          message: `components.${s.name}: ${h.output}`,
          details: {
            tier: s.tier,
            rpo_seconds: s.rpoMs / 1000,
            age_seconds: h.ageSeconds ?? null,
            last_success_at: s.lastSuccessAt?.toISOString() ?? null,
            instance: this.#o.instanceId,
          },
        });
      } else if (!h.late && this.#breached.has(s.name)) {
        this.#breached.delete(s.name);
        this.#log.info('RPO met again', { component: s.name, snapshot: s.lastSnapshot, age_seconds: h.ageSeconds });
      }
    }
  }

  async #refresh(why: 'start' | 'periodic'): Promise<void> {
    if (this.#refreshing || (this.#stopping && why === 'periodic')) return;
    const run = (async () => {
      try {
        const { read } = await this.state.refresh(this.#store);
        if (why === 'start') {
          this.#log.info('state loaded from the store', {
            store: this.#store.location,
            manifests_read: read,
            components: Object.fromEntries(this.state.all().map((s) => [s.name, s.lastSnapshot ?? null])),
          });
        } else if (read > 0) this.#log.debug('state refreshed from the store', { manifests_read: read });
      } catch (err) {
        this.#log.warn('could not read the store to refresh backup state', { store: this.#store.location, error: err });
      }
    })();
    this.#refreshing = run;
    await run;
    this.#refreshing = undefined;
  }

  /** Point-in-time captures (`tykdr stream`): how far each one's stored segments reach, for /hello and /metrics. */
  async #refreshStreams(): Promise<void> {
    if (this.#streamsBusy || this.#stopping) return;
    this.#streamsBusy = true;
    try {
      this.#coverage ??= new CoverageTracker(this.#store);
      for (const c of await this.#coverage.refresh(this.#abortAll.signal)) {
        const s = this.state.get(c.component);
        if (s && (!s.streamCoveredAt || c.coveredTo > s.streamCoveredAt)) s.streamCoveredAt = c.coveredTo;
      }
    } catch (err) {
      this.#log.warn('could not read the point-in-time chains', { store: this.#store.location, error: err });
    } finally {
      this.#streamsBusy = false;
    }
  }

  #leaderChanged(leader: boolean): void {
    this.metrics.set('tykdr_leader', { instance: this.#o.instanceId }, leader ? 1 : 0);
    if (!leader) this.#breached.clear();
  }

  #graceOnStop(stop: AbortSignal): { cancel(): void } {
    let timer: NodeJS.Timeout | undefined;
    const onStop = () => {
      this.#log.info('stopping: waiting for the running job', { jobs: this.#runner.runningJobs, grace_ms: this.#o.graceMs });
      timer = setTimeout(() => this.#runner.abortAll(new TykdrError('interrupted', 'the grace period ran out')), this.#o.graceMs);
    };
    if (stop.aborted) onStop();
    else stop.addEventListener('abort', onStop, { once: true });
    return {
      cancel: () => {
        clearTimeout(timer);
        stop.removeEventListener('abort', onStop);
      },
    };
  }

  #every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    this.#timers.push(t);
  }

  #defineMetrics(): void {
    const m = this.metrics;
    m.define('tykdr_job_skipped_conflict_total', 'counter', 'Scheduled runs skipped because a conflicting job was running (prune vs verify and drills).');
    m.define('tykdr_leader', 'gauge', '1 while this instance is the leader (runs the jobs).');
    m.define('tykdr_daemon_start_time_seconds', 'gauge', 'When this daemon started (unix time).');
    m.define('tykdr_build_info', 'gauge', 'Always 1; the labels say which tykdr runs.');
    m.set('tykdr_daemon_start_time_seconds', {}, this.startedAt.getTime() / 1000);
    m.set('tykdr_build_info', { version: TOOL_VERSION }, 1);
    m.set('tykdr_leader', { instance: this.#o.instanceId }, 0);
  }
}

export function leaderTtlMs(config: Config): number {
  return parseDuration(config.leader.ttl) ?? 15_000;
}

function isLoopback(host: string): boolean {
  return host === '::1' || host.startsWith('127.') || host === 'localhost';
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** Resolves with the promise's value, or false as soon as `signal` aborts. */
async function raceAbort(p: Promise<boolean>, signal: AbortSignal | undefined): Promise<boolean> {
  if (!signal) return p;
  if (signal.aborted) return false;
  let onAbort!: () => void;
  const aborted = new Promise<boolean>((r) => {
    onAbort = () => r(false);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
