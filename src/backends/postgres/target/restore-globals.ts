import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isAbortError, TykdrError } from '../../../core/errors.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { checkRoles } from './postgres-checks.js';
import { dbnameConninfo, describeEndpoint, explainPgError, libpqEnv, targetEndpoint } from '../connection.js';
import { toolPath, toolVersion } from '../versions.js';
import { readGlobalsFacts } from './dump-facts.js';
import type { PostgresRestoreInput, PostgresRestoreOutcome } from './restore-types.js';
import { runTool } from './run-tool.js';
import { connectMaintenance, requireServerAtLeast } from './target-database.js';

/** Unquotes the role of a `CREATE ROLE x;` / `ALTER ROLE x WITH ...` line, or null for other lines. */
function roleStatement(line: string): { verb: 'CREATE' | 'ALTER WITH'; role: string } | null {
  const m = /^(CREATE|ALTER) ROLE ("(?:[^"]|"")+"|[^\s;"]+)(;| WITH )/.exec(line);
  if (!m || (m[1] === 'ALTER' && m[3] !== ' WITH ')) return null;
  const role = m[2]!.startsWith('"') ? m[2]!.slice(1, -1).replace(/""/g, '"') : m[2]!;
  return { verb: m[1] === 'CREATE' ? 'CREATE' : 'ALTER WITH', role };
}

/**
 * Restores a `postgres-globals` artifact (pg_dumpall --globals-only SQL) into the target server with psql.
 *
 * Decisions:
 * - psql runs with ON_ERROR_STOP=0: pg_dumpall writes `CREATE ROLE x;` then `ALTER ROLE x WITH ... PASSWORD ...`,
 *   so on a server where x already exists the CREATE fails ("already exists") and the ALTER still brings the role to
 *   the snapshot's attributes and password. Those errors are counted as roles already present; any other error
 *   (permission denied, a tablespace folder missing) fails the restore with the errors listed.
 * - The restoring user's own CREATE/ALTER ROLE lines are left out, so the restore never changes the password or
 *   attributes of the connection it runs on (the database restore that follows uses the same credentials).
 * - Needs a superuser on the target (superuser roles and passwords can only be set by one).
 */
export async function restoreGlobals(input: PostgresRestoreInput): Promise<PostgresRestoreOutcome> {
  const c = input.component;
  const ep = targetEndpoint(c);
  const facts = readGlobalsFacts(input.manifest, `${c.name}-globals`);
  const warnings: string[] = [];
  const details: Record<string, unknown> = { target: `${ep.host}:${ep.port}`, source_server_version: facts.server_version, warnings };
  const psql = await toolVersion({ binDir: c.binDir, tool: 'psql', configPath: `components.${c.name}`, kind: 'targetError', signal: input.signal });
  details.psql_version = psql.text;

  const { db, database } = await connectMaintenance(ep);
  try {
    details.target_server_version = (await requireServerAtLeast(db, ep, { text: facts.server_version, num: facts.server_version_num })).text;
    const me = (await db.query<{ u: string }>('SELECT current_user AS u').catch((err: unknown) => { throw explainPgError(err, ep); })).rows[0]!.u;

    // Keep the restoring role as it is on the target; write the rest (it holds password hashes) 0600 in workDir.
    const sql = await readFile(input.stagedFile, 'utf8');
    const kept: string[] = [];
    let skippedOwn = false;
    for (const line of sql.split('\n')) {
      const st = roleStatement(line);
      if (st && st.role === me) skippedOwn = true;
      else kept.push(line);
    }
    if (skippedOwn) details.own_role_left_unchanged = me;
    await mkdir(input.workDir, { recursive: true, mode: 0o700 });
    const file = path.join(input.workDir, 'globals.sql');
    await writeFile(file, kept.join('\n'), { mode: 0o600 });

    const run = await runTool(toolPath(c.binDir, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=0', '-f', file, `--dbname=${dbnameConninfo(database)}`], {
      env: libpqEnv(ep, database),
      secrets: ep.password ? [ep.password.reveal()] : [],
      signal: input.signal,
    });
    details.restore_ms = run.durationMs;
    const errors = run.lines.filter((l) => /\bERROR:/.test(l)).map((l) => l.replace(/^psql:[^:]*:\d+: /, ''));
    const existed = errors.map((e) => /role "(.+)" already exists/.exec(e)?.[1]).filter((r): r is string => r !== undefined);
    const other = errors.filter((e) => !/role ".+" already exists/.test(e));
    const inSnapshot = facts.roles.filter((r) => r !== me);
    Object.assign(details, {
      roles_in_snapshot: facts.roles.length,
      roles_created: inSnapshot.length - existed.length,
      roles_already_present: existed,
      tablespaces: facts.tablespaces,
      statements_failed: other.length,
    });
    if (run.code !== 0 || run.signal || other.length > 0) {
      throw new TykdrError(
        'targetError',
        `components.${c.name}-globals: psql into ${describeEndpoint(ep, database)} ${other.length ? `had ${other.length} failed statement${other.length === 1 ? '' : 's'}` : `exited with code ${run.code ?? run.signal}`}` +
          `: ${(other.length ? other : run.lines).slice(0, 3).join(' | ') || '(no message)'}`,
        { fix: `restoring roles needs a superuser on the target (components.${c.name}.restore.target.username); fix the cause shown and restore again` },
      );
    }
    if (existed.length) warnings.push(`${existed.length} roles already existed; their attributes and passwords were set to the snapshot's`);

    const checks: CheckResult[] = [];
    if (input.checks.includes('database-counts')) {
      checks.push(await checkRoles({ db, component: `${c.name}-globals`, roles: facts.roles, signal: input.signal }));
    }
    return { details, checks };
  } catch (err) {
    if (isAbortError(err) || err instanceof TykdrError) throw err;
    throw new TykdrError('targetError', `components.${c.name}-globals: restoring roles into ${describeEndpoint(ep, database)} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await db.end();
  }
}
