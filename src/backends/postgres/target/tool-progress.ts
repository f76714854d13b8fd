import { readFile } from 'node:fs/promises';

/**
 * Bytes a process and its descendants have read and written so far (rchar + wchar of /proc/<pid>/io: files,
 * pipes and sockets), for telling a tool that works from one that waits on a stalled connection. pg_restore
 * --jobs forks its workers, hence the descendants. 0 where /proc is not readable (the caller then judges
 * progress by other signs).
 */
export async function ioOfTree(pid: number): Promise<number> {
  let total = 0;
  const seen = new Set<number>();
  const walk = async (p: number): Promise<void> => {
    if (seen.has(p) || seen.size > 64) return;
    seen.add(p);
    const io = await readFile(`/proc/${p}/io`, 'utf8').catch(() => '');
    for (const m of io.matchAll(/^(rchar|wchar): (\d+)$/gm)) total += Number(m[2]);
    const children = await readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => '');
    for (const c of children.split(/\s+/).filter(Boolean)) await walk(Number(c));
  };
  await walk(pid);
  return total;
}
