import { chmod, chown, copyFile, cp, lstat, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isAbortError, TykdrError } from '../../../core/errors.js';
import { runShell } from './shell-command.js';

export type TargetState = 'down' | 'loading' | 'up';

const POLL_MS = 25;

export interface RdbSwapOptions {
  /** The staged RDB file or AOF folder; moved into place (it no longer exists there afterwards unless rolled back). */
  staged: string;
  /** 'file': an RDB (dbfilename); 'folder': an AOF folder (appenddirname). */
  kind: 'file' | 'folder';
  dataDir: string;
  /** Its name inside dataDir: dbfilename or appenddirname. */
  destName: string;
  stopCommand: string;
  startCommand: string;
  /** Config path of the restore section, for messages: "components.redis.restore". */
  where: string;
  /** "host:port" of the target. */
  display: string;
  /** Limit for the stop command and for Redis to stop answering. */
  stopTimeoutMs: number;
  /** Limit for the start command and for Redis to load the file. */
  loadTimeoutMs: number;
  probe: (signal?: AbortSignal) => Promise<TargetState>;
  /** Called once the restored data is in place, just before the start command (work kept off the stop's path begins here). */
  beforeStart?: () => void;
  /** Runs once Redis is up on the restored file; throwing rolls the swap back (e.g. it loaded an AOF instead). */
  afterLoad?: () => Promise<void>;
  signal?: AbortSignal;
  progress?: (phase: string) => void;
}

export interface RdbSwapResult {
  /** Where the target's previous RDB (or AOF folder) was moved, or null when it had none. */
  previousFile: string | null;
  placedBy: 'rename' | 'copy';
  /** Redis was not running when the swap began: the stop command was not run. */
  wasDown: boolean;
  stopMs: number;
  startMs: number;
}

/** "20261121T093012Z", as snapshot ids are written. */
export function fileTimestamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * Polls the target until it reaches `want` or the time is up; resolves with the last state seen. Every 25 ms:
 * the restore's RTO ends when the load does, and a probe (connect, INFO persistence) costs well under 1 ms.
 */
async function waitFor(o: RdbSwapOptions, want: TargetState, ms: number, signal?: AbortSignal): Promise<TargetState> {
  const deadline = Date.now() + ms;
  let state = await o.probe(signal);
  while (state !== want && Date.now() < deadline) {
    signal?.throwIfAborted();
    await new Promise((r) => setTimeout(r, POLL_MS));
    state = await o.probe(signal);
  }
  return state;
}

/**
 * Self-managed restore: stop Redis, move its RDB (or AOF folder) aside as `<name>.tykdr-<ts>.bak` (see asideName), put the
 * staged one in its place (same owner as what it replaces; a file also keeps its mode), start Redis and
 * wait until it has loaded. Contract: when anything fails after the old data was moved aside (including
 * an abort), it is put back and Redis is started again before the error is thrown; the error says whether
 * that worked. The rollback ignores the signal.
 */
export async function swapRdbFile(o: RdbSwapOptions): Promise<RdbSwapResult> {
  const dest = path.join(o.dataDir, o.destName);
  o.progress?.('stop');
  const stopStarted = Date.now();
  // A Redis that is already down (a disaster, or a restore killed after it stopped Redis) is not stopped
  // again: stop commands such as `redis-cli shutdown` fail when nothing answers.
  const wasDown = (await o.probe(o.signal).catch(() => 'up')) === 'down';
  if (!wasDown) {
    try {
      await runShell(o.stopCommand, `${o.where}.stopCommand`, o.stopTimeoutMs, o.signal);
    } catch (err) {
      // Nothing was changed; if the failed stop left Redis down, bring it back as it was.
      if ((await o.probe().catch(() => 'up')) === 'down') await runShell(o.startCommand, `${o.where}.startCommand`, o.loadTimeoutMs).catch(() => undefined);
      throw err;
    }
  }
  if ((await waitFor(o, 'down', o.stopTimeoutMs, o.signal)) !== 'down') {
    throw new TykdrError('targetError', `${o.where}.stopCommand finished, but Redis at ${o.display} still answers: its data file was not replaced`, {
      fix: `make ${o.where}.stopCommand stop the Redis at ${o.display} (e.g. systemctl stop redis-server)`,
    });
  }
  const stopMs = Date.now() - stopStarted;

  let previousFile: string | null = null;
  let placed = false;
  let placedBy: RdbSwapResult['placedBy'] = 'rename';
  try {
    o.progress?.('swap');
    const old = await stat(dest).catch(() => null);
    const owner = old ?? (await stat(o.dataDir));
    if (old) {
      previousFile = await asideName(dest);
      await rename(dest, previousFile);
    }
    if (o.kind === 'file') await chmod(o.staged, old ? old.mode & 0o777 : 0o600);
    if (process.getuid?.() === 0) await chownTree(o.staged, owner.uid, owner.gid);
    try {
      await rename(o.staged, dest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      placedBy = 'copy';
      const tmp = `${dest}.tykdr-tmp`;
      if (o.kind === 'file') {
        await copyFile(o.staged, tmp);
        await fsyncPath(tmp);
      } else {
        await rm(tmp, { recursive: true, force: true });
        await cp(o.staged, tmp, { recursive: true, preserveTimestamps: true });
        for (const f of await readdir(tmp)) await fsyncPath(path.join(tmp, f));
        if (process.getuid?.() === 0) await chownTree(tmp, owner.uid, owner.gid);
      }
      await rename(tmp, dest);
    }
    placed = true;
    await fsyncPath(o.dataDir);

    o.progress?.('start');
    o.beforeStart?.();
    const startStarted = Date.now();
    await runShell(o.startCommand, `${o.where}.startCommand`, o.loadTimeoutMs, o.signal);
    const state = await waitFor(o, 'up', Math.max(0, o.loadTimeoutMs - (Date.now() - startStarted)), o.signal);
    if (state !== 'up') {
      const what = o.kind === 'file' ? 'RDB' : 'AOF';
      throw new TykdrError('targetError', `Redis at ${o.display} did not ${state === 'down' ? 'answer' : `finish loading the restored ${what}`} within ${o.where}.loadTimeout after ${o.where}.startCommand`, {
        fix: `check the Redis log; raise ${o.where}.loadTimeout if a large ${what} needs longer to load`,
      });
    }
    await o.afterLoad?.();
    return { previousFile, placedBy, wasDown, stopMs, startMs: Date.now() - startStarted };
  } catch (err) {
    const note = await rollback(o, dest, previousFile, placed && placedBy === 'rename');
    if (isAbortError(err)) throw err;
    const e = err instanceof TykdrError ? err : new TykdrError('targetError', `restoring ${o.destName} into ${o.dataDir} failed: ${(err as Error).message}`, { cause: err });
    throw new TykdrError(e.kind === 'badInput' ? 'badInput' : 'targetError', `${e.message}. ${note}`, { fix: e.fix, cause: err });
  }
}

/**
 * `<dest>.tykdr-<second>.bak`, or with `-2`, `-3`... when taken: a rename replaces a file in its way, and the
 * set-aside data of a swap earlier in the same second (a --resume right after a killed restore) holds the data from
 * before the restore. The check and the rename are two steps: two restores swapping one target's file at the same
 * moment are not guarded against here (they would fight over the data file itself anyway).
 */
async function asideName(dest: string): Promise<string> {
  const base = `${dest}.tykdr-${fileTimestamp()}`;
  for (let n = 1; ; n++) {
    const name = n === 1 ? `${base}.bak` : `${base}-${n}.bak`;
    if ((await lstat(name).catch(() => null)) === null) return name;
  }
}

/** Undoes a swap as far as possible and says what state the target is in. */
async function rollback(o: RdbSwapOptions, dest: string, previousFile: string | null, movedStaged: boolean): Promise<string> {
  await runShell(o.stopCommand, `${o.where}.stopCommand`, o.stopTimeoutMs).catch(() => undefined);
  await waitFor(o, 'down', o.stopTimeoutMs).catch(() => undefined);
  try {
    const ours = await lstat(dest).catch(() => null);
    if (ours) {
      // Hand the staged data back to the caller when it was moved, else drop the copy.
      const drop = () => (o.kind === 'file' ? unlink(dest) : rm(dest, { recursive: true, force: true }));
      if (movedStaged) await rename(dest, o.staged).catch(drop);
      else await drop();
    }
    await rm(`${dest}.tykdr-tmp`, { recursive: true, force: true });
    if (previousFile) await rename(previousFile, dest);
    await fsyncPath(o.dataDir);
  } catch (err) {
    return `Rolling back failed too (${(err as Error).message}): ${previousFile ? `the previous ${o.destName} is at ${previousFile}` : `there was no previous ${o.destName}`}; Redis was left stopped`;
  }
  const what = previousFile ? `the previous ${o.destName} was put back` : `the target had no ${o.destName}; the restored one was removed`;
  try {
    await runShell(o.startCommand, `${o.where}.startCommand`, o.loadTimeoutMs);
    const state = await waitFor(o, 'up', o.loadTimeoutMs);
    if (state === 'up') return `Rolled back: ${what} and Redis at ${o.display} answers again`;
    return `Rolled back: ${what}, but Redis at ${o.display} is ${state === 'down' ? 'not answering' : 'still loading'}`;
  } catch (err) {
    return `Rolled back: ${what}, but starting Redis again failed (${(err as Error).message})`;
  }
}

/** Gives a file, or a folder and everything in it, to uid:gid (so the Redis user can read and append). */
async function chownTree(p: string, uid: number, gid: number): Promise<void> {
  await chown(p, uid, gid);
  if (!(await lstat(p)).isDirectory()) return;
  for (const n of await readdir(p)) await chownTree(path.join(p, n), uid, gid);
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
