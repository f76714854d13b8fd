import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { badInput } from '../../../core/errors.js';
import { PACKAGE_ROOT } from '../../../core/util/package-root.js';
import { minRedisForRdb } from '../formats/rdb-versions.js';
import { maxDumpVersion } from '../protocol/server-info.js';

const execFileP = promisify(execFile);

/**
 * Which server binary runs the scratch server of a restore (the one place tykdr still needs one: an AOF
 * snapshot, whose increments are commands, not RDB values; and the evidence of a file-mode restore).
 *
 * The scratch server must load the snapshot (its RDB version at least the snapshot's) and, in live mode,
 * write DUMP payloads the target RESTOREs (its RDB version at most what the target takes). A Redis 6.2
 * target of a Redis 6.2 AOF snapshot therefore needs a Redis 6.2 (or older, RDB 9) scratch server; a
 * Valkey 8.1 AOF snapshot (RDB 11) needs Valkey 7.2+ or Redis 7.2, not Debian's Redis 7.0.
 */
export interface ServerBinary {
  path: string;
  product: 'Redis' | 'Valkey';
  /** The product's own release, from `<bin> --version` ("6.2.14", "8.1.8"). */
  version: string;
  /** The RDB version of its DUMP payloads, which is also the newest RDB it loads; null when its release is unknown. */
  rdbVersion: number | null;
}

export const binaryName = (b: ServerBinary) => `${b.product} ${b.version}`;

/** What `<bin> --version` says: product and release. `setting` names the config path in errors. */
export async function describeBinary(bin: string, setting: string, signal?: AbortSignal): Promise<ServerBinary> {
  try {
    const { stdout } = await execFileP(bin, ['--version'], { signal, timeout: 10_000 });
    const m = /v=(\d+\.\d+\.\d+)/.exec(stdout);
    if (!m) throw new Error(`unexpected output: ${stdout.trim().slice(0, 120)}`);
    const product = /^\s*valkey/i.test(stdout) ? 'Valkey' : 'Redis';
    const version = m[1]!;
    return { path: bin, product, version, rdbVersion: maxDumpVersion({ product, version, redisCompatVersion: version }) };
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw badInput(
      `${setting} "${bin}" cannot be run (${code === 'ENOENT' ? 'not found' : (err as Error).message.split('\n')[0]})`,
      `install redis-server (apt-get install redis-server) or set ${setting} to its path`,
      err,
    );
  }
}

/** tykdr's own tool cache (scripts/tools.sh installs the server matrix there): <install root>/.tools/bin. */
const TOOLS_BIN = path.join(PACKAGE_ROOT, '.tools', 'bin');
const SERVER_NAME = /^(redis|valkey)-server(-\d+(\.\d+)*)?$/;

/** Where tykdr looks for a scratch server's binary: PATH, the configured binary's folder, tykdr's tool cache. */
export function searchDirs(configured: string, env: NodeJS.ProcessEnv = process.env): string[] {
  return [...(env.PATH ?? '').split(path.delimiter).filter(Boolean), ...(configured.includes('/') ? [path.dirname(configured)] : []), TOOLS_BIN];
}

/** Every redis-server / valkey-server (plain or with a version suffix) on PATH, beside `configured`, and in tykdr's tool cache. */
export async function findServerBinaries(configured: string, dirs = searchDirs(configured)): Promise<string[]> {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => SERVER_NAME.test(n)).sort()) {
      const file = path.join(dir, name);
      const real = await realpath(file).catch(() => null);
      if (real === null || seen.has(real) || !(await access(file, constants.X_OK).then(() => true, () => false))) continue;
      seen.add(real);
      out.push(file);
    }
  }
  return out;
}

export interface ScratchNeeds {
  /** RDB version the scratch server must load (0: a command-only AOF, any server). */
  snapshotRdb: number;
  writtenBy: string;
  /** A multi-part AOF folder (Redis 7+): a server before Redis 7.0 cannot load it. */
  multiPart?: boolean;
  /** Newest DUMP version the target RESTOREs (live mode), with its name; absent when the scratch only reads (file modes). */
  target?: { maxRdb: number | null; name: string };
}

/**
 * The configured binary when it fits; otherwise, when the configured one is the default name
 * (`redis-server`), the fitting binary closest to the snapshot's RDB version among those found on PATH and
 * in tykdr's tool cache. An explicitly configured binary that does not fit is refused (badInput), as is a
 * search that finds none, naming what was found and what is needed.
 */
export async function chooseScratchBinary(
  configured: string,
  setting: string,
  needs: ScratchNeeds,
  signal?: AbortSignal,
  dirs = searchDirs(configured),
): Promise<{ binary: ServerBinary; picked: boolean }> {
  const fits = (b: ServerBinary) =>
    (!needs.multiPart || !isSingleFileEra(b)) &&
    (b.rdbVersion === null || (b.rdbVersion >= needs.snapshotRdb && (needs.target?.maxRdb == null || b.rdbVersion <= needs.target.maxRdb)));
  const explicit = configured !== 'redis-server';
  let own: ServerBinary | null = null;
  try {
    own = await describeBinary(configured, setting, signal);
  } catch (err) {
    if (explicit) throw err;
  }
  if (own && fits(own)) return { binary: own, picked: false };
  const need = needRange(needs);
  if (own && explicit) {
    throw badInput(
      `${setting} "${configured}" is ${binaryName(own)} (RDB version ${own.rdbVersion}), but this restore needs a server ${need}`,
      `set ${setting} to such a server${needs.target ? ' (the same release as the target is always right when it is not older than the snapshot)' : ''}, or leave it at its default "redis-server" to let tykdr find one on PATH`,
    );
  }
  const found: ServerBinary[] = [];
  for (const file of await findServerBinaries(configured, dirs)) {
    const b = await describeBinary(file, setting, signal).catch((err: Error) => (err.name === 'AbortError' ? Promise.reject(err) : null));
    if (b) found.push(b);
  }
  const fitting = found.filter((b) => b.rdbVersion !== null && fits(b)).sort((a, b) => a.rdbVersion! - b.rdbVersion!);
  if (fitting[0]) return { binary: fitting[0], picked: true };
  const seen = found.map((b) => `${binaryName(b)} (${b.path})`).join(', ') || 'none';
  throw badInput(
    `no redis-server or valkey-server on PATH can serve as this restore's scratch server: it needs one ${need}; found: ${seen}`,
    `install one (for RDB version ${needs.snapshotRdb}: Redis ${minRedisForRdb(needs.snapshotRdb) ?? 'newer'} or newer${needs.target ? `, and not newer than the target, ${needs.target.name}` : ''}) and set ${setting} to its path`,
  );
}

/** Redis before 7.0: one AOF file, no multi-part folder (appenddirname). */
export function isSingleFileEra(b: ServerBinary): boolean {
  return b.product === 'Redis' && Number(b.version.split('.')[0]) < 7;
}

function needRange(needs: ScratchNeeds): string {
  const load = needs.multiPart && needs.snapshotRdb === 0 ? 'of Redis 7.0 or later (or Valkey) that loads the multi-part AOF folder' : needs.snapshotRdb > 0 ? `that loads RDB version ${needs.snapshotRdb} (the snapshot, written by ${needs.writtenBy})` : 'that loads the snapshot';
  if (!needs.target || needs.target.maxRdb === null) return load;
  return `${load} and writes DUMP payloads the target, ${needs.target.name}, RESTOREs (RDB version ${needs.target.maxRdb} or older)`;
}
