import { hostname } from 'node:os';
import type { Config } from '../core/config/load.js';
import { badInput } from '../core/errors.js';
import { EXIT_CODES } from '../core/errors.js';
import { Daemon, leaderTtlMs, NOTIFY_FLUSH_MS } from './daemon.js';
import type { JobKind, Jobs } from './jobs.js';
import type { Logger } from './log.js';

export interface RunDaemonOptions {
  config: Config;
  jobs: Jobs;
  log: Logger;
  instanceId?: string;
  useLeader: boolean;
  once: boolean;
  only?: readonly JobKind[];
  graceMs: number;
  /** How long aborted jobs get to clean up (TYKDR_GRACE). */
  abortGraceMs?: number;
  /** Aborted by the first SIGTERM/SIGINT: stop scheduling, let running jobs finish within graceMs. */
  stop: AbortSignal;
  /** Aborted by a second signal: abort running jobs now. */
  force: AbortSignal;
  healthListen?: string;
}

/** `tykdr daemon`: runs until `stop` aborts (or, with once, until every job ran once). Returns the exit code. */
export async function runDaemon(o: RunDaemonOptions): Promise<number> {
  checkConfig(o.config, o.useLeader);
  const daemon = new Daemon({
    config: o.config,
    jobs: o.jobs,
    log: o.log,
    instanceId: o.instanceId ?? defaultInstanceId(),
    useLeader: o.useLeader,
    only: o.only,
    graceMs: o.graceMs,
    abortGraceMs: o.abortGraceMs,
    healthListen: o.once ? false : o.healthListen,
  });
  try {
    if (o.once) return await daemon.runOnce(o.stop, o.force);
    await daemon.start();
  } catch (err) {
    o.log.error(o.once ? 'daemon --once failed' : 'daemon could not start', { error: err });
    // Closes whatever was opened (the lock's Redis connection, the health server) so the process can exit.
    await daemon.stop();
    throw err;
  }
  await new Promise<void>((resolve) => {
    if (o.stop.aborted) resolve();
    else o.stop.addEventListener('abort', () => resolve(), { once: true });
  });
  return daemon.stop(o.force);
}

export function defaultInstanceId(): string {
  return `${hostname()}-${process.pid}`;
}

function checkConfig(config: Config, useLeader: boolean): void {
  if (config.health.token !== undefined && config.health.token.reveal().trim() === '') {
    throw badInput(`health.token in ${config.file} is empty (an unset \${VAR}?)`, 'set it to a long random string, or remove health.token');
  }
  if (useLeader && leaderTtlMs(config) < 1000) {
    throw badInput(`leader.ttl "${config.leader.ttl}" in ${config.file} is shorter than 1s`, 'use 1s or more (15s by default)');
  }
}

/**
 * SIGTERM/SIGINT for the daemon: the first signal aborts `stop` (running jobs may finish within graceMs,
 * then are aborted and get abortGraceMs to clean up), a second one aborts `force` (abort running jobs now;
 * the daemon still cleans up and releases the lock), a third exits at once. Whatever hangs (a store or a
 * lock that stopped answering), the process exits with 130 once graceMs + abortGraceMs + the webhook
 * flush have passed since the first signal, or abortGraceMs since the second: neither timer keeps the
 * process alive.
 */
export function shutdownSignals(
  log: Logger,
  graceMs: number,
  abortGraceMs: number,
  exit: (code: number) => void = (code) => process.exit(code),
): { stop: AbortSignal; force: AbortSignal; dispose(): void } {
  const stop = new AbortController();
  const force = new AbortController();
  let deadline: NodeJS.Timeout | undefined;
  let deadlineAt = Infinity;
  const exitBy = (ms: number, why: string) => {
    if (Date.now() + ms >= deadlineAt) return;
    clearTimeout(deadline);
    deadlineAt = Date.now() + ms;
    deadline = setTimeout(() => {
      log.error(`still running ${why}: exiting now; clean-up may be incomplete`, { exit_code: EXIT_CODES.interrupted });
      exit(EXIT_CODES.interrupted);
    }, ms);
    deadline.unref();
  };
  const handler = (sig: NodeJS.Signals) => {
    if (!stop.signal.aborted) {
      log.info(`${sig} received: stopping`, { signal: sig, grace_ms: graceMs, abort_grace_ms: abortGraceMs });
      stop.abort();
      exitBy(graceMs + abortGraceMs + NOTIFY_FLUSH_MS, `${Math.round((graceMs + abortGraceMs + NOTIFY_FLUSH_MS) / 1000)}s after ${sig} (--grace + TYKDR_GRACE + webhook flush)`);
    } else if (!force.signal.aborted) {
      log.warn(`${sig} received again: aborting running jobs now`, { signal: sig });
      force.abort();
      exitBy(abortGraceMs, `${Math.round(abortGraceMs / 1000)}s after the second signal (TYKDR_GRACE)`);
    } else {
      log.warn(`${sig} received a third time: exiting now`, { signal: sig });
      exit(EXIT_CODES.interrupted);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    stop: stop.signal,
    force: force.signal,
    dispose: () => {
      // After a signal the handlers and the deadline stay: the bound holds until the process has exited.
      if (stop.signal.aborted) return;
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
