import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
  /**
   * With `stdin`: why the input stream failed (a decompression error), if it did. After a clean exit (code 0) the
   * input was read to its end (what the tool left unread is drained), so its byte counters saw every byte.
   */
  inputError?: Error;
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
 * Runs pg_restore or psql without a shell, in its own process group (stdout discarded, stderr read line by line), and
 * resolves when it and every process it forked have closed their stderr. Stopping it (abort, stall, failed input) stops
 * the whole group; so does the watchdog when this process is killed.
 * A non-zero exit resolves too: the caller judges it from the lines. Rejects when the binary cannot be started,
 * and with an AbortError when `signal` aborts (after SIGTERM, then SIGKILL, ended the tool).
 *
 * `stdin`: a stream piped into the tool's standard input with its backpressure. After a clean exit it resolves only
 * once the stream ended (bytes the tool did not read are drained, not sent); after any other end (a non-zero exit,
 * a signal, a stall stop, an abort) the stream is destroyed at once. A stream that fails stops the tool
 * (SIGTERM, then SIGKILL) and is reported as `inputError`.
 */
export function runTool(
  command: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; secrets: string[]; signal?: AbortSignal; stall?: StallWatch; stdin?: Readable },
): Promise<ToolRun> {
  const { signal } = opts;
  if (signal?.aborted) {
    opts.stdin?.destroy();
    return Promise.reject(abortError(signal));
  }
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group: pg_restore --jobs forks workers, each holding a connection and the stderr pipe. Stopping
    // only the parent left them behind on a frozen connection, and this waited for their stderr to close, for ever.
    const child = spawn(command, args, { stdio: [opts.stdin ? 'pipe' : 'ignore', 'ignore', 'pipe'], env: opts.env, detached: true });
    watchChild(child, { group: true });
    let closed = false;
    const signalTree = (sig: NodeJS.Signals) => {
      if (child.pid === undefined || closed) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // The group is gone already.
      }
    };
    let inputError: Error | undefined;
    let fed: Promise<void> = Promise.resolve();
    // Set when this side destroys the input (the tool ended or was stopped): the error that follows is not the input's.
    let dropped = false;
    const dropInput = () => {
      dropped = true;
      opts.stdin?.destroy();
    };
    let childInput: ChildInput | undefined;
    if (opts.stdin && child.stdin) {
      childInput = new ChildInput(child.stdin);
      fed = pipeline(opts.stdin, childInput).catch((err: unknown) => {
        if (!dropped) inputError ??= err as Error;
        // The tool must not take a cut input for a whole one: stopped before its stdin is closed.
        if (child.exitCode === null && child.signalCode === null) stop();
        child.stdin?.destroy();
      });
    }
    const lines: string[] = [];
    let lineCount = 0;
    createInterface({ input: child.stderr! }).on('line', (l) => {
      lineCount++;
      if (lines.length < MAX_LINES) lines.push(scrub(l, opts.secrets));
    });
    let aborted = false;
    // The whole tree: SIGTERM, then SIGKILL to whatever of it still holds the stderr pipe after the grace.
    const stop = () => {
      signalTree('SIGTERM');
      setTimeout(() => signalTree('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const onAbort = () => {
      aborted = true;
      stop();
      dropInput();
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
      dropInput();
      void fed.then(() => reject(err));
    });
    child.once('close', (code, sig) => {
      closed = true;
      clearInterval(watch);
      // Only a clean exit waits for the rest of the input (to count it); otherwise it is of no use.
      if (code !== 0 || sig || aborted || stalledMs !== undefined) dropInput();
      else childInput?.drainRest();
      void fed.then(() => {
        signal?.removeEventListener('abort', onAbort);
        if (aborted && signal) return reject(abortError(signal));
        resolve({
          code,
          signal: sig,
          lines,
          lineCount,
          durationMs: Date.now() - started,
          ...(stalledMs !== undefined ? { stalledMs } : {}),
          ...(inputError ? { inputError } : {}),
        });
      });
    });
  });
}

/**
 * Writes into a child's stdin with its backpressure. Once the child closed its end (it exited, or stopped reading:
 * EPIPE), writing waits for runTool's verdict: `drainRest()` after a clean exit accepts and drops the rest, so the
 * stream upstream runs to its end (and its counters see every byte); otherwise runTool destroys the stream.
 */
class ChildInput extends Writable {
  private gone = false;
  private draining = false;

  constructor(private readonly stdin: Writable) {
    super();
    const off = () => {
      this.gone = true;
      this.emit('child-gone');
    };
    stdin.on('error', off);
    stdin.once('close', off);
  }

  drainRest(): void {
    this.draining = true;
    this.emit('drain-rest');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.gone) return this.afterChild(done);
    if (this.stdin.write(chunk)) return done();
    const settle = () => {
      this.stdin.off('drain', settle);
      this.off('child-gone', settle);
      if (this.gone) this.afterChild(done);
      else done();
    };
    this.stdin.on('drain', settle);
    this.on('child-gone', settle);
  }

  /** The child is gone: the next chunk is dropped once runTool said the exit was clean (never, when it destroys this). */
  private afterChild(done: () => void): void {
    if (this.draining) done();
    else this.once('drain-rest', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.gone) this.stdin.end();
    done();
  }

  // Destroyed (the input failed or was dropped): the child's stdin is closed by runTool, after it stopped the child.
  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    done(err);
  }
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
