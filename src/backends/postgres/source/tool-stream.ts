import { spawn } from 'node:child_process';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { scrub } from '../../../core/util/text.js';
import { watchChild } from '../../../core/util/watchdog.js';

/** How a dump tool ended: what the stream's owner needs to judge it. */
export interface ToolExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Bytes the tool wrote to stdout. */
  bytes: number;
  /** The first bytes of its output (up to 16) and the last (up to 256): format checks. */
  head: Buffer;
  tail: Buffer;
  /** Its stderr, secrets scrubbed (the last 64 KiB). */
  stderr: string;
}

export interface ToolStreamOptions {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Values scrubbed from stderr before anyone sees it (the password). */
  secrets: string[];
  /**
   * Judges the ended tool: returns the error the stream fails with, or null when the output is whole. Called once,
   * after the tool exited and its stdout ended, before the stream ends.
   */
  judge(exit: ToolExit): Error | null;
  /** Sees every chunk of output as it passes (e.g. to count statements). */
  inspect?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

const STDERR_KEEP = 64 * 1024;
const KILL_GRACE_MS = 2000;

/**
 * Streams a dump tool's stdout (pg_dump, pg_dumpall) with its exit status as part of the data.
 *
 * Contract:
 * - The returned stream ends only after the tool exited and `judge` accepted it: a non-zero exit, a death by signal,
 *   error lines, or an empty output make the stream error instead, so a pipeline consuming it never completes.
 * - Destroying the stream (a downstream failure) or aborting `signal` kills the tool (SIGTERM, then SIGKILL).
 * - Never echoes a secret: stderr is scrubbed before `judge` sees it.
 */
export function spawnToolStream(opts: ToolStreamOptions): Transform {
  const child = spawn(opts.command, opts.args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env });
  watchChild(child);
  let bytes = 0;
  let head = Buffer.alloc(0);
  let tail = Buffer.alloc(0);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    stderr += d;
    if (stderr.length > STDERR_KEEP * 2) stderr = stderr.slice(-STDERR_KEEP);
  });
  let spawnError: Error | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      resolve({ code: null, signal: null });
    });
    // 'close' waits for stdio to end too, so stderr is complete.
    child.once('close', (code, signal) => resolve({ code, signal }));
  });

  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, KILL_GRACE_MS).unref();
  };

  const out = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      bytes += chunk.length;
      opts.inspect?.(chunk);
      if (head.length < 16) head = Buffer.concat([head, chunk.subarray(0, 16 - head.length)]);
      // Only the chunk's last 256 bytes are copied: the tail, not the stream.
      tail = Buffer.concat([tail, chunk.length > 256 ? chunk.subarray(-256) : chunk]).subarray(-256);
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      void exited.then(({ code, signal }) => {
        if (spawnError) return done(spawnError);
        const err = opts.judge({ code, signal, bytes, head, tail, stderr: scrub(stderr, opts.secrets) });
        done(err ?? undefined);
      });
    },
    destroy(err: Error | null, done: (error: Error | null) => void) {
      kill();
      done(err);
    },
  });
  const onAbort = () => out.destroy(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error('aborted'));
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  void exited.then(() => opts.signal?.removeEventListener('abort', onAbort));
  // stdout errors reach the consumer through `out` (pipeline destroys it with them).
  pipeline(child.stdout, out).catch(() => undefined);
  return out;
}

/** The last `n` non-empty lines of a tool's stderr, joined with " | ": for error messages. */
export function lastLines(stderr: string, n = 3): string {
  return stderr.split('\n').map((l) => l.trim()).filter(Boolean).slice(-n).join(' | ');
}
