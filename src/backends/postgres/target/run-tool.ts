import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { abortError } from '../../../core/util/abort.js';
import { scrub } from '../../../core/util/text.js';
import { watchChild } from '../../../core/util/watchdog.js';

export interface ToolRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Every stderr line (secrets scrubbed), up to the first 5,000. */
  lines: string[];
  /** Total stderr lines, including those past the kept ones. */
  lineCount: number;
  durationMs: number;
}

const MAX_LINES = 5000;
const KILL_GRACE_MS = 2000;

/**
 * Runs pg_restore or psql without a shell (stdout discarded, stderr read line by line) and resolves when it exits.
 * A non-zero exit resolves too: the caller judges it from the lines. Rejects when the binary cannot be started,
 * and with an AbortError when `signal` aborts (after SIGTERM, then SIGKILL, ended the tool).
 */
export function runTool(command: string, args: string[], opts: { env: NodeJS.ProcessEnv; secrets: string[]; signal?: AbortSignal }): Promise<ToolRun> {
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
    const onAbort = () => {
      aborted = true;
      child.kill('SIGTERM');
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (aborted && signal) return reject(abortError(signal));
      resolve({ code, signal: sig, lines, lineCount, durationMs: Date.now() - started });
    });
  });
}
