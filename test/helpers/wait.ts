/**
 * Waiting on a condition instead of sleeping for a fixed time: polls `cond` every `intervalMs` until it
 * returns a truthy value (which is returned), and fails with `what` (and `detail()`, if given) after
 * `timeoutMs`. An error thrown by `cond` ends the wait at once: catch it in `cond` when it means
 * "not yet" (e.g. a server that is not up).
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: { timeoutMs: number; what: string; intervalMs?: number; detail?: () => string | Promise<string> },
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as Exclude<T, false | 0 | '' | null | undefined>;
    if (Date.now() > deadline) {
      const detail = opts.detail ? `\n${await opts.detail()}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** Resolves after `ms`: only for a delay that is itself the point of a test (say why where it is used). */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
