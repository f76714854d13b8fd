import path from 'node:path';
import { badInput, TykdrError, type ErrorKind } from '../../core/errors.js';
import { runCommand } from '../../core/util/run-command.js';

/**
 * PostgreSQL version numbers as server_version_num: 150018 for 15.18, 90624 for 9.6.24. A major version is
 * 15 (10 and later) or 9.6 (before 10). Dumps move forward only: pg_dump must be at least the server's major
 * version, and a dump loads into the same or a newer major version.
 */
export interface PgVersion {
  /** As printed: "15.18", "11.0", "9.6.24". */
  text: string;
  num: number;
}

/** server_version_num of a "15.18" / "9.6.24" / "16beta2" string, or null. */
export function versionNum(text: string): number | null {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  if (!m) return null;
  const a = Number(m[1]);
  const b = Number(m[2] ?? 0);
  return a >= 10 ? a * 10000 + b : a * 10000 + b * 100 + Number(m[3] ?? 0);
}

/** The major version part of a version number: 150000 for 150018, 90600 for 90624. */
export function majorOf(num: number): number {
  return num >= 100000 ? Math.floor(num / 10000) * 10000 : Math.floor(num / 100) * 100;
}

/** "15" or "9.6". */
export function majorLabel(num: number): string {
  return num >= 100000 ? String(Math.floor(num / 10000)) : `${Math.floor(num / 10000)}.${Math.floor(num / 100) % 100}`;
}

/** The binary: `binDir/name`, or `name` looked up on PATH. */
export function toolPath(binDir: string | undefined, name: string): string {
  return binDir ? path.join(binDir, name) : name;
}

export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs `TOOL --version` and parses "pg_dump (PostgreSQL) 15.18 (Debian ...)". A missing or broken binary is an
 * error of `kind` naming where it was looked for and which package to install for `wantMajor`.
 */
export async function toolVersion(opts: {
  binDir: string | undefined;
  tool: string;
  configPath: string;
  kind: Extract<ErrorKind, 'badInput' | 'targetError'>;
  /** The major version needed, for the fix ("install postgresql-client-15"). */
  wantMajor?: number;
  signal?: AbortSignal;
}): Promise<PgVersion> {
  const bin = toolPath(opts.binDir, opts.tool);
  const where = opts.binDir ? `in ${opts.configPath}.binDir (${opts.binDir})` : 'on PATH';
  const pkg = `postgresql-client-${opts.wantMajor ? majorLabel(opts.wantMajor) : 'N'}`;
  const fix = `install ${pkg} (Debian/Ubuntu: apt-get install ${pkg}) or set ${opts.configPath}.binDir to a folder with ${opts.tool}`;
  const res = await runCommand(`${shellQuote(bin)} --version`, { timeoutMs: 15_000, signal: opts.signal });
  const out = `${res.stdoutTail}${res.stderrTail}`;
  if (res.code === 127 || /not found|No such file/i.test(res.stderrTail)) {
    throw new TykdrError(opts.kind, `${opts.configPath}: ${opts.tool} was not found ${where}`, { fix });
  }
  const m = /\(PostgreSQL\)\s+(\d+(?:\.\d+){0,2})/.exec(out);
  const num = m ? versionNum(m[1]!) : null;
  if (res.code !== 0 || !m || num === null) {
    throw new TykdrError(opts.kind, `${opts.configPath}: ${bin} --version did not print a PostgreSQL version (exit ${res.code ?? res.signal}: ${JSON.stringify(out.trim().slice(0, 200))})`, { fix });
  }
  return { text: m[1]!, num };
}

/** Refuses (badInput) a pg_dump / pg_dumpall older than the server's major version: it cannot dump it. */
export function requireToolForServer(tool: string, v: PgVersion, server: PgVersion, configPath: string): void {
  if (majorOf(v.num) >= majorOf(server.num)) return;
  const fix = `install postgresql-client-${majorLabel(server.num)} or set ${configPath}.binDir`;
  throw badInput(`${configPath}: ${tool} ${v.text} cannot dump PostgreSQL ${server.text}: ${fix}`, `${tool} must be at least the server's major version (${majorLabel(server.num)}): ${fix}`);
}
