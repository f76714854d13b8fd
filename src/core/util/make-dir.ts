import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * `mkdir -p`, one level at a time. Node 20's `mkdir(dir, { recursive: true })` spins at 100% CPU in a
 * libuv thread on a path under /proc (where mkdir answers ENOENT for ever), and reports ENOENT instead of
 * ENOSPC on a file system out of inodes; this walks up to the first folder that exists and creates the
 * rest, so every failure rejects with the real errno (ENOENT, ENOSPC, EACCES, ENOTDIR, EROFS) and the
 * path it was for. Resolves when `dir` is a folder (it may already exist). Bounded by the path's depth.
 */
export async function makeDir(dir: string, mode?: number): Promise<void> {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let d = abs; ; d = path.dirname(d)) {
    try {
      const s = await stat(d);
      if (!s.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${d}'`), { code: 'ENOTDIR', path: d });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (path.dirname(d) === d) throw err; // the root itself is missing: nothing to create it in
      missing.push(d);
    }
  }
  for (const d of missing.reverse()) {
    try {
      await mkdir(d, mode === undefined ? undefined : { mode });
    } catch (err) {
      // Made meanwhile by someone else (a concurrent put into the same snapshot folder): fine if a folder.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(d)).isDirectory()) continue;
      throw err;
    }
  }
}
