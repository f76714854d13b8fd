import { access, constants, lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Minimatch } from 'minimatch';
import { badInput, sourceUnreachable } from '../../../core/errors.js';

export interface FileSelection {
  /** Absolute paths in tar order: directories before their contents. */
  entries: string[];
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

/**
 * Walks the configured roots and selects what the tarball will hold. Everything that could fail later
 * is checked here first, so a bad path fails the backup before any object is written:
 * unreadable files, missing roots, and symlinks that point outside the configured roots.
 */
export async function selectFiles(opts: {
  component: string;
  roots: string[];
  include: string[];
  exclude: string[];
  signal?: AbortSignal;
}): Promise<FileSelection> {
  const include = opts.include.map((g) => new Minimatch(g, { dot: true }));
  const exclude = opts.exclude.map((g) => new Minimatch(g, { dot: true }));
  const realRoots: string[] = [];
  // One rule for roots (README, components.files): a root that cannot be reached (missing, a symlink loop or a
  // dangling link, no permission) is an unreachable source, exit 3; one that exists but is not a folder (a file,
  // a link to a folder: it would be archived as a link) is bad config, exit 2.
  for (const root of opts.roots) {
    let isDir: boolean;
    let isLink: boolean;
    try {
      isLink = (await lstat(root)).isSymbolicLink();
      isDir = (await stat(root)).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'does not exist' : code === 'ELOOP' ? 'is a symlink loop' : `cannot be read (${code ?? String(err)})`;
      throw sourceUnreachable(
        `components.${opts.component}.roots: ${root} ${why}`,
        code === 'EACCES' ? 'give tykdr read and execute permission on the folder' : `fix the path in components.${opts.component}.roots: it must be a folder tykdr can read`,
        err,
      );
    }
    if (isLink && isDir) {
      const real = await realpath(root);
      throw badInput(`components.${opts.component}.roots: ${root} is a symlink to ${real}`, `list ${real} in roots instead`);
    }
    if (!isDir) throw badInput(`components.${opts.component}.roots: ${root} is not a folder`, 'list folders in roots');
    realRoots.push(await realpath(root));
  }
  const inside = (p: string) => realRoots.some((r) => p === r || p.startsWith(r + path.sep));
  const sel: FileSelection = { entries: [], files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const dirsAdded = new Set<string>();
  const addDirs = (root: string, dir: string) => {
    const chain: string[] = [];
    for (let d = dir; !dirsAdded.has(d); d = path.dirname(d)) {
      chain.unshift(d);
      if (d === root || d === path.dirname(d)) break;
    }
    for (const d of chain) {
      if (dirsAdded.has(d)) continue;
      dirsAdded.add(d);
      sel.entries.push(d);
      sel.directories++;
    }
  };

  const walk = async (root: string, dir: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (err) {
      throw sourceUnreachable(
        `components.${opts.component}: cannot list ${dir} (${(err as NodeJS.ErrnoException).code ?? err})`,
        'give tykdr read and execute permission on the folder, or exclude it',
        err,
      );
    }
    for (const name of names) {
      const abs = path.join(dir, name);
      const rel = path.relative(root, abs).split(path.sep).join('/');
      if (exclude.some((m) => m.match(rel))) continue;
      const st = await lstat(abs);
      if (st.isDirectory()) {
        await walk(root, abs);
        continue;
      }
      if (!include.some((m) => m.match(rel))) continue;
      if (st.isSymbolicLink()) {
        const target = path.resolve(dir, await readlink(abs));
        let resolved = target;
        try {
          resolved = await realpath(abs);
        } catch {
          // A dangling link is archived as a link; its lexical target must still be inside the roots.
        }
        if (!inside(resolved) && !inside(target)) {
          throw badInput(
            `components.${opts.component}: symlink ${abs} points to ${resolved}, outside the configured roots`,
            `add the target's folder to components.${opts.component}.roots, or exclude "${rel}"`,
          );
        }
        addDirs(root, dir);
        sel.entries.push(abs);
        sel.symlinks++;
      } else if (st.isFile()) {
        try {
          await access(abs, constants.R_OK);
        } catch (err) {
          throw sourceUnreachable(
            `components.${opts.component}: cannot read ${abs} (${(err as NodeJS.ErrnoException).code ?? err})`,
            `give tykdr read permission, or add "${rel}" to components.${opts.component}.exclude`,
            err,
          );
        }
        addDirs(root, dir);
        sel.entries.push(abs);
        sel.files++;
        sel.bytes += st.size;
      }
      // Sockets, FIFOs and devices are not configuration: passed over.
    }
  };
  for (const root of opts.roots) {
    addDirs(root, root);
    await walk(root, root);
  }
  return sel;
}
