import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { abortError } from '../../../core/util/abort.js';
import { scrub } from '../../../core/util/text.js';
import { watchChild } from '../../../core/util/watchdog.js';
import { ioOfTree } from './tool-progress.js';

export interface ToolRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Every stderr line (secrets scrubbed), up to the first 5,000. */
  lines: string[];
  /** Total stderr lines, including those past the kept ones. */
  lineCount: number;
  durationMs: number;
  /** Set when the tool was stopped because it made no progress for `stall.ms`: how long it had been idle. */
  stalledMs?: number;
}

/**
 * Stall watch: the tool fails when neither its I/O (its own and its children's, /proc/<pid>/io) nor its
 * stderr moved for `ms`, and `busy()` (asked then, e.g. the server's view of the tool's sessions) does not
 * say it is waiting on honest work (a long CREATE INDEX moves no byte). busy() must settle by itself;
 * one that rejects counts as "not busy".
 */
export interface StallWatch {
  ms: number;
  busy: () => Promise<boolean>;
}

const MAX_LINES = 5000;
const KILL_GRACE_MS = 2000;

/**
 * Runs pg_restore or psql without a shell (stdout discarded, stderr read line by line) and resolves when it exits.
 * A non-zero exit resolves too: the caller judges it from the lines. Rejects when the binary cannot be started,
 * and with an AbortError when `signal` aborts (after SIGTERM, then SIGKILL, ended the tool).
 */
export function runTool(command: string, args: string[], opts: { env: NodeJS.ProcessEnv; secrets: string[]; signal?: AbortSignal; stall?: StallWatch }): Promise<ToolRun> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env });
    watchChild(child);
    const lines: string[] = [];
    let lineCount = 0;
    createInterface({ input: child.stderr }).on('line', (l) => {
      lineCount++;
      if (lines.length < MAX_LINES) lines.push(scrub(l, opts.secrets));
    });
    let aborted = false;
    const stop = () => {
      child.kill('SIGTERM');
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const onAbort = () => {
      aborted = true;
      stop();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let stalledMs: number | undefined;
    const watch = opts.stall ? watchProgress(child.pid, opts.stall, () => lineCount, (idle) => {
      stalledMs = idle;
      stop();
    }) : undefined;
    child.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      clearInterval(watch);
      reject(err);
    });
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      clearInterval(watch);
      if (aborted && signal) return reject(abortError(signal));
      resolve({ code, signal: sig, lines, lineCount, durationMs: Date.now() - started, ...(stalledMs !== undefined ? { stalledMs } : {}) });
    });
  });
}

/** Polls the tool's progress; calls `stalled` once when it made none for `w.ms` and `w.busy()` said no. */
function watchProgress(pid: number | undefined, w: StallWatch, lines: () => number, stalled: (idleMs: number) => void): NodeJS.Timeout | undefined {
  if (pid === undefined) return undefined;
  let last = Date.now();
  let seen = -1;
  let checking = false;
  let done = false;
  const timer = setInterval(() => {
    if (checking || done) return;
    checking = true;
    void (async () => {
      const now = lines() + (await ioOfTree(pid));
      if (now !== seen) {
        seen = now;
        last = Date.now();
      } else if (Date.now() - last >= w.ms) {
        if (await w.busy().catch(() => false)) last = Date.now();
        else {
          done = true;
          stalled(Date.now() - last);
        }
      }
    })().finally(() => (checking = false));
  }, Math.min(1000, Math.max(100, w.ms / 8)));
  timer.unref();
  return timer;
}
