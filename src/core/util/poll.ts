import { sleep, throwIfAborted } from './abort.js';

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
