import { isAbortError } from '../core/errors.js';
import { setTimeout as delay } from 'node:timers/promises';
import type { CheckResult, CheckStatus } from '../core/restore/types.js';

/** The error a verify function rejects with when its AbortSignal fires (`isAbortError` recognises it). */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const err = new Error('the check was aborted', { cause: reason });
  err.name = 'AbortError';
  return err;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Waits `ms`, or rejects with an AbortError as soon as `signal` aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw err;
  }
}

export function checkResult(
  name: string,
  status: CheckStatus,
  detail: string,
  evidence: Record<string, unknown> | undefined,
  startedAt: number,
): CheckResult {
  const now = Date.now();
  const result: CheckResult = { name, status, detail, finishedAt: new Date(now).toISOString(), durationMs: now - startedAt };
  if (evidence !== undefined) result.evidence = evidence;
  return result;
}

/** Runs a check body; an error other than an abort becomes a failed result ("could not run: ..."). */
export async function guarded(name: string, started: number, body: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return await body();
  } catch (err) {
    if (isAbortError(err)) throw err;
    return checkResult(name, 'failed', `could not run: ${(err as Error).message.split('\n')[0]}`, undefined, started);
  }
}

/** `base` + `path` with exactly one slash between them; a path on the base (e.g. behind a proxy) is kept. */
export function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, '') + (path.startsWith('/') ? path : `/${path}`);
}

const CREDENTIAL_PARAM = /key|token|secret|pass|auth|sig|credential|session|code/i;

/**
 * A URL fit for reports: user-info removed and the values of credential-like query parameters
 * (apikey, token, signature, ...) replaced. Unparseable input is reduced to "(invalid URL)".
 */
export function safeUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return '(invalid URL)';
  }
  u.username = '';
  u.password = '';
  for (const name of [...new Set(u.searchParams.keys())]) {
    if (CREDENTIAL_PARAM.test(name)) u.searchParams.set(name, 'redacted');
  }
  return u.toString();
}

/** Replaces every occurrence of each secret in `text` (for text echoed by a server). */
export function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('[redacted]');
  return out;
}

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One line, at most `max` characters: for quoting server answers in a detail. */
export function oneLine(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export interface PollOptions {
  timeoutMs: number;
  intervalMs: number;
  signal?: AbortSignal;
}

export interface PollOutcome<T> {
  done: boolean;
  /** The last state an attempt reported. */
  state: T;
  attempts: number;
  elapsedMs: number;
}

/**
 * Calls `attempt` every `intervalMs` until it reports done or `timeoutMs` runs out; always at least once,
 * and once more at the deadline. `attempt` gets the time left, to bound its own request (give it a floor:
 * the last attempt starts with ~0 ms left). Rejects only with an AbortError (or whatever `attempt` throws).
 */
export async function poll<T>(
  opts: PollOptions,
  attempt: (remainingMs: number) => Promise<{ done: boolean; state: T }>,
): Promise<PollOutcome<T>> {
  const started = Date.now();
  const deadline = started + opts.timeoutMs;
  let attempts = 0;
  for (;;) {
    throwIfAborted(opts.signal);
    attempts++;
    const { done, state } = await attempt(Math.max(deadline - Date.now(), 0));
    const left = deadline - Date.now();
    if (done || left <= 0) return { done, state, attempts, elapsedMs: Date.now() - started };
    await sleep(Math.min(opts.intervalMs, left), opts.signal);
  }
}
