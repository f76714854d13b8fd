import { isAbortError, TykdrError } from '../core/errors.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';

export type RunStatus = 'ok' | 'failed' | 'aborted' | 'skipped-overlap' | 'skipped-conflict';

export interface RunResult<T> {
  status: RunStatus;
  value?: T;
  error?: unknown;
  durationMs: number;
}

/**
 * Runs jobs by name, never two runs of the same name at once: a run requested while the previous one
 * is still going is skipped, logged and counted (`tykdr_job_skipped_overlap_total`), never queued.
 * Different jobs may run side by side. Every run gets its own AbortSignal, aborted by the caller's
 * signal or by `abortAll`.
 */
export class JobRunner {
  readonly #running = new Map<string, { since: Date; ac: AbortController; done: Promise<unknown> }>();
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #now: () => Date;

  constructor(opts: { log: Logger; metrics: Metrics; now?: () => Date }) {
    this.#log = opts.log;
    this.#metrics = opts.metrics;
    this.#now = opts.now ?? (() => new Date());
    const m = this.#metrics;
    m.define('tykdr_job_runs_total', 'counter', 'Job runs by outcome (success, failure, aborted).');
    m.define('tykdr_job_skipped_overlap_total', 'counter', 'Scheduled runs skipped because the previous run of the job was still going.');
    m.define('tykdr_job_running', 'gauge', '1 while the job runs.');
    m.define('tykdr_job_last_duration_seconds', 'gauge', 'Duration of the last finished run of the job.');
    m.define('tykdr_job_last_success_timestamp_seconds', 'gauge', 'End of the last successful run of the job (unix time).');
  }

  isRunning(name: string): boolean {
    return this.#running.has(name);
  }

  get runningJobs(): string[] {
    return [...this.#running.keys()];
  }

  async run<T>(name: string, signal: AbortSignal, fn: (signal: AbortSignal) => Promise<T>, fields: Record<string, unknown> = {}): Promise<RunResult<T>> {
    const current = this.#running.get(name);
    if (current) {
      this.#metrics.inc('tykdr_job_skipped_overlap_total', { job: name });
      this.#log.warn('skipped: the previous run is still going', { job: name, running_since: current.since.toISOString(), ...fields });
      return { status: 'skipped-overlap', durationMs: 0 };
    }
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const started = this.#now();
    let settle!: (v: unknown) => void;
    this.#running.set(name, { since: started, ac, done: new Promise((r) => (settle = r)) });
    this.#metrics.set('tykdr_job_running', { job: name }, 1);
    this.#log.info('job started', { job: name, ...fields });
    let result: RunResult<T>;
    try {
      const value = await fn(ac.signal);
      result = { status: 'ok', value, durationMs: this.#now().getTime() - started.getTime() };
    } catch (error) {
      const aborted = ac.signal.aborted || isAbortError(error) || (error instanceof TykdrError && error.kind === 'interrupted');
      result = { status: aborted ? 'aborted' : 'failed', error, durationMs: this.#now().getTime() - started.getTime() };
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#running.delete(name);
      this.#metrics.set('tykdr_job_running', { job: name }, 0);
      settle(undefined);
    }
    const outcome = result.status === 'ok' ? 'success' : result.status === 'failed' ? 'failure' : 'aborted';
    this.#metrics.inc('tykdr_job_runs_total', { job: name, result: outcome });
    this.#metrics.set('tykdr_job_last_duration_seconds', { job: name }, result.durationMs / 1000);
    if (result.status === 'ok') this.#metrics.set('tykdr_job_last_success_timestamp_seconds', { job: name }, this.#now().getTime() / 1000);
    return result;
  }

  /** Aborts every running job (shutdown after the grace period, or lost leadership). */
  abortAll(reason: unknown): void {
    for (const r of this.#running.values()) r.ac.abort(reason);
  }

  /** Resolves when no job runs, or after `timeoutMs` (then false). */
  async idle(timeoutMs = Infinity): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#running.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.#running.values()].map((r) => r.done)),
        ...(Number.isFinite(left) ? [new Promise((r) => (timer = setTimeout(r, left)))] : []),
      ]);
      clearTimeout(timer);
    }
    return true;
  }
}
