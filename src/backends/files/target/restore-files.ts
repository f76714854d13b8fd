import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, rename } from 'node:fs/promises';
import path from 'node:path';
import { list as listTar, extract as extractTar, type ReadEntry } from 'tar';
import type { FilesComponent } from '../../../core/config/load.js';
import { badInput, integrityError, TykdrError } from '../../../core/errors.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { destinationOf } from '../../../core/restore/destination.js';
import { makeDir } from '../../../core/util/make-dir.js';

interface TarEntryInfo {
  /** Entry path as in the tar: absolute path without the leading "/". */
  name: string;
  type: 'file' | 'dir' | 'symlink';
  sha256?: string;
  linkpath?: string;
}

export interface FilesRestoreOutcome {
  details: Record<string, unknown>;
  checks: CheckResult[];
}

/**
 * Reads the staged tarball once without extracting anything: every entry must lie under the roots the
 * snapshot recorded, with no ".." and no absolute names, and links must stay inside those roots.
 * Hashes regular files so the restore can be verified afterwards.
 */
export async function inspectTarball(tarFile: string, roots: string[], component: string): Promise<TarEntryInfo[]> {
  const entries: TarEntryInfo[] = [];
  const problems: string[] = [];
  const inside = (abs: string) => roots.some((r) => abs === r || abs.startsWith(r.endsWith('/') ? r : `${r}/`));
  await listTar({
    file: tarFile,
    onReadEntry: (e: ReadEntry) => {
      const name = e.path.replace(/\/$/, '');
      const abs = path.posix.join('/', name);
      if (name.startsWith('/') || name.split('/').includes('..') || !inside(abs)) {
        problems.push(`entry "${e.path}" is outside the snapshot's roots (${roots.join(', ')})`);
      }
      if (e.type === 'SymbolicLink') {
        const target = path.posix.resolve(path.posix.dirname(abs), e.linkpath ?? '');
        if (!inside(target)) problems.push(`symlink "${e.path}" points outside the roots, to ${target}`);
        entries.push({ name, type: 'symlink', linkpath: e.linkpath });
        e.resume();
      } else if (e.type === 'Directory') {
        entries.push({ name, type: 'dir' });
        e.resume();
      } else if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') {
        const info: TarEntryInfo = { name, type: 'file' };
        const h = createHash('sha256');
        e.on('data', (c: Buffer) => h.update(c));
        e.on('end', () => (info.sha256 = h.digest('hex')));
        entries.push(info);
      } else {
        problems.push(`entry "${e.path}" has unsupported type ${e.type}`);
        e.resume();
      }
    },
  });
  if (problems.length > 0) {
    throw integrityError(`components.${component}: the tarball is unsafe to extract: ${problems.slice(0, 3).join('; ')}`, 'use another snapshot');
  }
  return entries;
}

/**
 * Extracts a config tarball to the original roots or under `to`. Existing files that would be
 * overwritten (and differ) are first renamed to "<name>.tykdr-aside-<restoreId>" next to themselves.
 * Modes, mtimes and symlinks are restored exactly (owners too when running as root).
 */
export async function restoreFiles(opts: {
  component: FilesComponent;
  manifest: ManifestComponent;
  tarFile: string;
  to?: string;
  restoreId: string;
  signal?: AbortSignal;
}): Promise<FilesRestoreOutcome> {
  opts.signal?.throwIfAborted();
  const roots = (opts.manifest.source.roots as string[] | undefined) ?? opts.component.roots;
  const entries = await inspectTarball(opts.tarFile, roots, opts.component.name);
  opts.signal?.throwIfAborted();
  const aside: string[] = [];
  for (const e of entries) {
    if (e.type === 'dir') continue;
    const dest = destinationOf(e.name, opts.to);
    const st = await lstat(dest).catch(() => null);
    if (!st) continue;
    if (st.isDirectory()) {
      throw badInput(`components.${opts.component.name}: ${dest} is a folder, but the snapshot has a ${e.type} there`, 'move it away first');
    }
    if (e.type === 'file' && st.isFile() && (await sha256File(dest)) === e.sha256) continue;
    const kept = `${dest}.tykdr-aside-${opts.restoreId}`;
    await rename(dest, kept);
    aside.push(kept);
  }
  const to = opts.to === '/' ? undefined : opts.to;
  try {
    if (to !== undefined) {
      await makeDir(to);
      await extractTar({ file: opts.tarFile, cwd: to, ...EXTRACT });
    } else {
      // node-tar refuses every entry when cwd is "/", so each root is extracted into itself,
      // with the root's own path components stripped from the entry names.
      for (const root of roots) {
        const prefix = path.relative('/', root);
        await makeDir(root);
        await extractTar({
          file: opts.tarFile,
          cwd: root,
          strip: prefix.split('/').length,
          filter: (p: string) => p.replace(/\/$/, '').startsWith(`${prefix}/`),
          ...EXTRACT,
        });
        const rootEntry = await modeOf(opts.tarFile, prefix);
        if (rootEntry !== null) await chmod(root, rootEntry);
      }
    }
  } catch (err) {
    throw new TykdrError('targetError', `components.${opts.component.name}: extracting into ${to ?? roots.join(', ')} failed: ${(err as Error).message}`, {
      fix: 'check free space and permissions of the destination; files kept aside are listed in the report',
      cause: err,
    });
  }
  const started = Date.now();
  const mismatched: string[] = [];
  let files = 0;
  for (const e of entries) {
    if (e.type !== 'file') continue;
    files++;
    const got = await sha256File(destinationOf(e.name, opts.to)).catch(() => 'missing');
    if (got !== e.sha256) mismatched.push(destinationOf(e.name, opts.to));
  }
  const check: CheckResult = {
    name: 'files-restored',
    status: mismatched.length === 0 ? 'passed' : 'failed',
    detail:
      mismatched.length === 0
        ? `${files} file(s) restored under ${opts.to ?? roots.join(', ')} and identical to the snapshot`
        : `${mismatched.length} of ${files} restored file(s) differ from the snapshot: ${mismatched.slice(0, 3).join(', ')}`,
    evidence: { files, expected_files: opts.manifest.source.files, mismatched: mismatched.length },
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - started,
  };
  return {
    details: {
      destination: opts.to ?? 'original roots',
      roots,
      files,
      directories: entries.filter((e) => e.type === 'dir').length,
      symlinks: entries.filter((e) => e.type === 'symlink').length,
      kept_aside: aside,
    },
    checks: [check],
  };
}

/** Exact modes and mtimes; owners when root; any entry error fails the extraction (no silent warnings). */
const EXTRACT = {
  chmod: true,
  processUmask: 0,
  preserveOwner: process.getuid?.() === 0,
  preservePaths: false,
  unlink: true,
  strict: true,
} as const;

async function modeOf(tarFile: string, name: string): Promise<number | null> {
  let mode: number | null = null;
  await listTar({
    file: tarFile,
    onReadEntry: (e: ReadEntry) => {
      if (e.path.replace(/\/$/, '') === name && e.mode !== undefined) mode = e.mode & 0o7777;
      e.resume();
    },
  });
  return mode;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}
