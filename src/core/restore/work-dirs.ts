import { mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { badInput } from '../errors.js';
import { makeDir } from '../util/make-dir.js';

/** Prefixes of the private folders restores and drills make under the staging folder. */
export const WORK_DIR_PREFIXES = ['tykdr-restore-', 'tykdr-drill-'] as const;
const OWNER = '.tykdr-owner.json';
/** A work folder being made (before its owner file is in): holds no data. */
const NEW_PREFIX = '.tykdr-new-';

interface Owner {
  pid: number;
  host: string;
  started_at: string;
}

/**
 * A private folder under the staging folder (created if missing), marked with its owner (pid, host) so a
 * later run can tell a folder left by a killed run from one in use. A folder that cannot be made is bad input.
 */
export async function makeWorkDir(stagingDir: string | undefined, prefix: (typeof WORK_DIR_PREFIXES)[number] | `${(typeof WORK_DIR_PREFIXES)[number]}${string}`): Promise<string> {
  const base = stagingDir ?? tmpdir();
  try {
    await makeDir(base);
    // Made under a name no sweep mistakes for a work folder, marked, then renamed: a work folder always has its
    // owner file (a run killed in between leaves an empty, ownerless NEW_PREFIX folder the next sweep removes).
    const fresh = await mkdtemp(path.join(base, NEW_PREFIX));
    const owner: Owner = { pid: process.pid, host: hostname(), started_at: new Date().toISOString() };
    await writeFile(path.join(fresh, OWNER), JSON.stringify(owner), { mode: 0o600 });
    const dir = path.join(base, `${prefix}${path.basename(fresh).slice(NEW_PREFIX.length)}`);
    await rename(fresh, dir);
    return dir;
  } catch (err) {
    throw badInput(
      `cannot create a staging folder in ${base} (${(err as NodeJS.ErrnoException).code ?? err})`,
      'set restore.stagingDir to a writable folder with room for the largest artifact',
      err,
    );
  }
}

/** True when a process with this pid exists on this host. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the work folders of restores and drills that were killed (their owner process is gone): they
 * may hold decrypted snapshots. Folders of live runs, and of other hosts sharing the folder, are left
 * alone. A folder without an owner file (a run killed between mkdtemp and writing it) counts as stale
 * after an hour. Returns one line per folder removed, for the output.
 */
export async function sweepStaleWorkDirs(stagingDir: string | undefined): Promise<string[]> {
  const base = stagingDir ?? tmpdir();
  const names = await readdir(base).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (name.startsWith(NEW_PREFIX)) {
      // A folder whose making was cut short holds no data: removed once its maker is gone (or after a minute).
      const dir = path.join(base, name);
      const maker = await readFile(path.join(dir, OWNER), 'utf8').then((t) => JSON.parse(t) as Owner, () => null);
      const st = await stat(dir).catch(() => null);
      const gone = maker ? maker.host === hostname() && maker.pid !== process.pid && !processAlive(maker.pid) : st !== null && Date.now() - st.mtimeMs > 60_000;
      if (gone) await removeWorkDir(dir).catch(() => undefined);
      continue;
    }
    if (!WORK_DIR_PREFIXES.some((p) => name.startsWith(p))) continue;
    const dir = path.join(base, name);
    let owner: Owner | null = null;
    try {
      owner = JSON.parse(await readFile(path.join(dir, OWNER), 'utf8')) as Owner;
    } catch {
      const st = await stat(dir).catch(() => null);
      if (!st?.isDirectory() || Date.now() - st.mtimeMs < 3_600_000) continue;
    }
    if (owner && (owner.host !== hostname() || owner.pid === process.pid || processAlive(owner.pid))) continue;
    const who = `left by a killed tykdr run${owner ? ` (pid ${owner.pid}, started ${owner.started_at})` : ''}`;
    try {
      await removeWorkDir(dir);
      removed.push(`removed ${dir}, ${who}: it may have held decrypted snapshot data`);
    } catch (err) {
      removed.push(`warning: could not remove ${dir}, ${who}: ${(err as Error).message}; it may hold decrypted snapshot data: remove it by hand`);
    }
  }
  return removed;
}

/**
 * Removes a work folder and everything in it. Retried: a child process still finishing a write into it (a
 * tool being stopped) makes a single recursive removal fail with ENOTEMPTY or EBUSY.
 */
export async function removeWorkDir(dir: string): Promise<void> {
  // The owner file goes last: a run killed while removing its folder leaves one the next sweep knows as a dead
  // run's (a recursive rm may take the owner file first, and an ownerless folder is kept for an hour).
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name !== OWNER) await rm(path.join(dir, name), { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
  // Empty but for its owner file, it takes a being-made name before that file goes: a run killed between the file's
  // removal and the folder's leaves an empty NEW_PREFIX folder, which the next sweep removes, not an ownerless work
  // folder, which it would keep for an hour.
  let last = dir;
  if (!path.basename(dir).startsWith(NEW_PREFIX)) {
    const renamed = path.join(path.dirname(dir), `${NEW_PREFIX}gone-${path.basename(dir)}`);
    last = await rename(dir, renamed).then(() => renamed, () => dir);
  }
  await rm(last, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}
