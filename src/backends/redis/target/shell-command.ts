import { TykdrError } from '../../../core/errors.js';
import { runCommand } from '../../../core/util/run-command.js';

/**
 * Runs an operator's stop/start command (`/bin/sh -c`, own process group, killed on timeout or abort; see
 * runCommand) and turns anything but exit 0 into a targetError with the exit code and the last lines it
 * printed on stderr. The command text itself is never echoed (it may hold a password): messages name it by
 * its config path (`what`). A daemon it starts is not waited for: only the shell's exit counts.
 */
export async function runShell(command: string, what: string, timeoutMs: number, signal?: AbortSignal): Promise<{ durationMs: number }> {
  let res;
  try {
    res = await runCommand(command, { timeoutMs, signal });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new TykdrError('targetError', `${what} could not be started: ${(err as Error).message}`, { cause: err });
  }
  const tail = res.stderrTail.split('\n').map((l) => l.trim()).filter(Boolean).slice(-3).join(' | ');
  const printed = tail ? `; it printed: ${tail}` : '';
  if (res.timedOut) {
    throw new TykdrError('targetError', `${what} did not finish within ${Math.round(timeoutMs / 1000)} s and was killed${printed}`, {
      fix: `check ${what} by hand; it must return once the action is done`,
    });
  }
  if (res.code !== 0) {
    throw new TykdrError('targetError', `${what} failed with exit code ${res.code ?? `signal ${res.signal}`}${printed}`, {
      fix: `run ${what} by hand as the user tykdr runs as, and fix what it reports`,
    });
  }
  return { durationMs: res.durationMs };
}
