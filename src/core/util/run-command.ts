import { spawn } from 'node:child_process';
import { watchChild } from './watchdog.js';
import { abortError } from './abort.js';

/** Bytes of stdout and of stderr kept (the end of each stream). */
const TAIL_BYTES = 4096;
/** After SIGTERM to the group, how long before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After the shell exits, how long to wait for its pipes to close (a background child may hold them open). */
const PIPE_DRAIN_MS = 200;

export interface RunCommandOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

export interface CommandResult {
  /** Exit code of the shell, or null when it died from a signal. */
  code: number | null;
  signal: string | null;
  /** Last ~4 KiB of stdout / stderr, decoded as UTF-8. */
  stdoutTail: string;
  stderrTail: string;
  durationMs: number;
  /** True when the timeout expired and the process group was killed. */
  timedOut: boolean;
}

/**
 * Runs `/bin/sh -c command` in its own process group and resolves when the shell exits.
 *
 * Contract:
 * - A non-zero exit, a death by signal or a timeout resolves normally; the caller judges `code`/`timedOut`.
 * - On timeout or abort the whole process group gets SIGTERM, then SIGKILL after 2 s, so children started
 *   by the command (`sleep 30 &`, a pipeline) are not left behind.
 * - Rejects when the shell cannot be spawned, and with an AbortError when `signal` aborts (after the group
 *   has been signalled and the shell has exited). Never started when `signal` is already aborted.
 * - Background children that outlive a normal exit are left alone (a start command may daemonise).
 */
export function runCommand(command: string, opts: RunCommandOptions): Promise<CommandResult> {
  const { signal } = opts;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const started = Date.now();

  return new Promise<CommandResult>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    watchChild(child, { group: true });
    const stdout = new TailBuffer(TAIL_BYTES);
    const stderr = new TailBuffer(TAIL_BYTES);
    child.stdout?.on('data', (d: Buffer) => stdout.push(d));
    child.stderr?.on('data', (d: Buffer) => stderr.push(d));

    let timedOut = false;
    let aborted = false;
    let spawned = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;

    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // the group is already gone
      }
    };
    const stop = () => {
      killGroup('SIGTERM');
      killTimer ??= setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, opts.timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };

    child.once('spawn', () => (spawned = true));
    child.once('error', (err) => {
      if (spawned || settled) return;
      settled = true;
      cleanup();
      reject(err);
    });
    child.once('exit', (code, sig) => {
      cleanup();
      const finish = () => {
        if (settled) return;
        settled = true;
        // Killed on timeout/abort: make sure nothing of the group survives the SIGTERM grace period.
        if (killTimer !== undefined && (timedOut || aborted)) {
          clearTimeout(killTimer);
          killGroup('SIGKILL');
        }
        child.stdout?.destroy();
        child.stderr?.destroy();
        if (aborted && signal) {
          reject(abortError(signal));
          return;
        }
        resolve({
          code,
          signal: sig,
          stdoutTail: stdout.text(),
          stderrTail: stderr.text(),
          durationMs: Date.now() - started,
          timedOut,
        });
      };
      const drain = setTimeout(finish, PIPE_DRAIN_MS);
      child.once('close', () => {
        clearTimeout(drain);
        finish();
      });
    });
  });
}

/** Keeps the last `limit` bytes pushed into it. */
class TailBuffer {
  #chunks: Buffer[] = [];
  #size = 0;
  #dropped = false;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size - (this.#chunks[0]?.length ?? 0) >= this.limit && this.#chunks.length > 1) {
      this.#size -= this.#chunks.shift()!.length;
      this.#dropped = true;
    }
  }

  text(): string {
    let buf = Buffer.concat(this.#chunks);
    if (buf.length > this.limit) {
      buf = buf.subarray(buf.length - this.limit);
      this.#dropped = true;
    }
    // Skip UTF-8 continuation bytes left at the cut.
    let start = 0;
    if (this.#dropped) while (start < buf.length && start < 3 && (buf[start]! & 0xc0) === 0x80) start++;
    return buf.subarray(start).toString('utf8');
  }
}
