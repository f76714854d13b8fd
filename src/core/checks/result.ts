import { isAbortError } from '../errors.js';
import type { CheckResult, CheckStatus } from '../restore/types.js';

/** A check's result, timed from `startedAt` (ms since the epoch) to now. */
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
