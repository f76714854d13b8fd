import { readdir, readFile } from 'node:fs/promises';
import { runCli, type CliResult } from './cli.js';

/**
 * Helpers for kill -9 tests: a seeded random source, a CLI run killed at a chosen moment of an observed
 * phase, and the processes a killed run may have left behind.
 */

/** A small seeded PRNG (mulberry32): the same seed gives the same kill points on every run. */
export function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Processes whose command line names this fragment (a staging folder: scratch servers, tools, tykdr itself). */
export async function processesUsing(fragment: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(fragment)) out.push(`${pid}: ${cmd.replace(/\0/g, ' ').trim()}`);
  }
  return out;
}

export async function eventually(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * When the kill clock starts: the first time `mark` appears on stderr, or the first time `probe` (polled
 * every 10 ms while the run lasts) resolves true: a phase seen from outside (a marker key in the target,
 * the target going down, a file set aside), so kill points land in the phase that writes.
 */
export interface KillTrigger {
  mark?: string;
  probe?: () => Promise<boolean>;
}

export interface KilledRun extends CliResult {
  killed: boolean;
  /** When the trigger fired (ms since epoch), or null when it never did. */
  triggeredAt: number | null;
  endedAt: number;
}

/** Runs the CLI and SIGKILLs it `afterMs` after the trigger fires; resolves once it is gone. */
export async function runAndKill(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }, trigger: KillTrigger, afterMs: number): Promise<KilledRun> {
  let triggeredAt: number | null = null;
  let seen = '';
  let timer: NodeJS.Timeout | undefined;
  let kill: ((sig: NodeJS.Signals) => void) | undefined;
  let done = false;
  const fire = () => {
    if (triggeredAt !== null || done) return;
    triggeredAt = Date.now();
    timer = setTimeout(() => kill?.('SIGKILL'), afterMs);
  };
  const polling = (async () => {
    if (!trigger.probe) return;
    while (!done && triggeredAt === null) {
      if (kill && (await trigger.probe().catch(() => false))) fire();
      else await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const res = await runCli(args, {
    cwd: opts.cwd,
    env: opts.env,
    onStderr: (chunk, k) => {
      kill ??= k;
      seen += chunk;
      if (trigger.mark !== undefined && seen.includes(trigger.mark)) fire();
    },
    onSpawn: (k) => (kill ??= k),
  });
  done = true;
  clearTimeout(timer);
  await polling;
  return { ...res, killed: res.signal === 'SIGKILL', triggeredAt, endedAt: Date.now() };
}
