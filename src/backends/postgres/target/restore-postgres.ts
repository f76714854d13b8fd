import type { PostgresComponent } from '../../../core/config/load.js';
import type { PostgresRestoreInput, PostgresRestoreOutcome } from './restore-types.js';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { integrityError, isAbortError, TykdrError } from '../../../core/errors.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { compressedStaged, inflateStaged, streamStaged, type CompressedStaged } from '../../../core/restore/staging.js';
import { checkDatabaseCounts, checkDatabaseIndexes } from './postgres-checks.js';
import { insertStats } from '../catalog.js';
import { connectPg, dbnameConninfo, describeEndpoint, explainPgError, libpqEnv, targetEndpoint, type PgClient, type PgEndpoint } from '../connection.js';
import { majorLabel, majorOf, toolPath, toolVersion, versionNum } from '../versions.js';
import { readDumpFacts } from './dump-facts.js';
import { ArchiveRechunker } from '../archive-rechunk.js';
import { writeDataOffsets } from '../archive-rows.js';
import { planExcludedTables } from './keep-excluded.js';
import { restoreGlobals } from './restore-globals.js';
import { runTool } from './run-tool.js';
import { formatDuration, parseDuration } from '../../../core/duration.js';
import { connectMaintenance, createDatabase, isMissingDatabase, missingRoles, requireServerAtLeast, rolesNotActable } from './target-database.js';



/**
 * Restores one PostgreSQL artifact into the component's restore target (`restore.target` over its connection).
 *
 * Database dumps: `pg_restore --clean --if-exists --jobs N` into the target database, created first when missing.
 * Every object of the dump is dropped and recreated, so the target ends up holding the snapshot's tables with the
 * snapshot's rows; objects not in the dump stay. Excluded (analytics) tables whose data the dump does not hold are
 * left as the target has them, rows, indexes and sequences included, and created empty only where the target lacks
 * them (`pg_restore --use-list`, see keep-excluded.ts).
 *
 * Contract:
 * - Refuses before changing anything (targetError): a target server of an older major version than the dump's
 *   source, a pg_restore older than the pg_dump that wrote the archive, and (restore.owners: keep) roles the dump
 *   names that the target lacks.
 * - Owners and GRANTs: kept when every role the dump names exists on the target; otherwise (restore.owners: auto)
 *   `--no-owner --no-privileges`, so the restore user owns everything, with a warning naming the missing roles.
 * - pg_restore runs to the end even when a statement fails (no --exit-on-error: one failed GRANT must not leave the
 *   database half restored); a non-zero exit then throws a targetError with the error count and the first errors.
 * - Checks never throw: a failed check is a result. Never puts a password in details, checks or errors.
 */
export async function restorePostgres(input: PostgresRestoreInput): Promise<PostgresRestoreOutcome> {
  if (input.manifest.kind === 'postgres-globals') return restoreGlobals(input);
  const c = input.component;
  const ep = targetEndpoint(c);
  const facts = readDumpFacts(input.manifest, c.name);
  const warnings: string[] = [];
  const details: Record<string, unknown> = {
    target: `${ep.host}:${ep.port}`,
    database: ep.database,
    source: `${facts.address}/${facts.database}`,
    source_server_version: facts.server_version,
    warnings,
  };
  const source = { text: facts.server_version, num: facts.server_version_num };

  const restoreTool = await toolVersion({ binDir: c.binDir, tool: 'pg_restore', configPath: `components.${c.name}`, kind: 'targetError', wantMajor: source.num, signal: input.signal });
  const dumpToolNum = versionNum(facts.pg_dump_version);
  if (dumpToolNum !== null && majorOf(restoreTool.num) < majorOf(dumpToolNum)) {
    throw new TykdrError('targetError', `components.${c.name}: pg_restore ${restoreTool.text} cannot read an archive written by pg_dump ${facts.pg_dump_version}`, {
      fix: `install postgresql-client-${majorLabel(dumpToolNum)} or set components.${c.name}.binDir`,
    });
  }
  details.pg_restore_version = restoreTool.text;

  // Look before changing anything: versions and roles, then create the database when it is missing.
  let db: PgClient | null = null;
  try {
    let exists = true;
    try {
      db = await connectPg(ep);
    } catch (err) {
      if (!isMissingDatabase(err)) throw err;
      exists = false;
    }
    const probe = db ?? (await connectMaintenance(ep)).db;
    try {
      details.target_server_version = (await requireServerAtLeast(probe, ep, source)).text;
      const { missing, notActable } = await (async () => {
        const m = await missingRoles(probe, facts.roles);
        return { missing: m, notActable: await rolesNotActable(probe, facts.roles.filter((r) => !m.includes(r))) };
      })().catch((err: unknown) => {
        throw explainPgError(err, ep);
      });
      details.owners = ownersDecision(c, ep, missing, notActable, warnings);
      if (missing.length) details.missing_roles = missing;
      if (notActable.length) details.roles_not_usable = notActable;
      if (!exists) {
        await createDatabase(probe, ep, facts.encoding);
        details.database_created = true;
      }
    } finally {
      if (probe !== db) await probe.end();
    }
    db ??= await connectPg(ep);

    // The archive as a plaintext file: the staged file, or (staged still compressed) inflated on first need.
    let plainFile: string | null = input.stagedCompression ? null : input.stagedFile;
    const archiveFile = async () => (plainFile ??= await inflateArchive(input, c.name, details));

    // Excluded tables the target has keep their rows: pg_restore gets a list without them (see keep-excluded.ts).
    const keep = await planExcludedTables({
      db,
      excluded: facts.excluded_tables,
      pgRestore: toolPath(c.binDir, 'pg_restore'),
      archiveFile,
      workDir: input.workDir,
      component: c.name,
      signal: input.signal,
    }).catch((err: unknown) => {
      throw err instanceof TykdrError || isAbortError(err) ? err : explainPgError(err, ep);
    });
    details.excluded_tables_kept = keep.kept;
    details.excluded_tables_created = keep.created;
    if (keep.keptObjects.length) details.kept_objects = keep.keptObjects;
    if (keep.createdParts.length) details.created_on_kept_tables = keep.createdParts;

    // The tables there before pg_restore: database-counts may take the count of a table it created from the statistics.
    const before = input.checks.includes('database-counts') ? ((await insertStats(db)) ?? undefined) : undefined;
    const args = ['--clean', '--if-exists', `--jobs=${c.restore.jobs}`, '--no-password'];
    if (details.owners !== 'kept') args.push('--no-owner', '--no-privileges');
    if (keep.listFile) args.push(`--use-list=${keep.listFile}`);
    args.push(`--dbname=${dbnameConninfo(ep.database)}`);
    // One job reads the archive in order: a pipe does, so it is decompressed as pg_restore reads it (no plaintext
    // file to write first). Parallel jobs seek, so they get the file.
    if (plainFile === null && c.restore.jobs > 1) await archiveFile();
    const streamed = plainFile === null ? streamStaged(stagedArchive(input)) : null;
    // Its row-sized data chunks merged on the way: pg_restore sends each chunk as one CopyData message (archive-rechunk.ts).
    const rechunker = streamed ? new ArchiveRechunker() : null;
    if (streamed) pipeline(streamed.stream, rechunker!).catch(() => undefined);
    if (plainFile !== null) args.push(plainFile);
    details.jobs = c.restore.jobs;
    details.pg_restore_input = streamed ? `stdin (the staged ${input.stagedCompression} archive decompressed as read)` : 'file';
    const stallMs = parseDuration(c.stallTimeout ?? '60s') ?? 60_000;
    const run = await runTool(toolPath(c.binDir, 'pg_restore'), args, {
      env: libpqEnv(ep),
      secrets: ep.password ? [ep.password.reveal()] : [],
      signal: input.signal,
      stall: { ms: stallMs, busy: () => serverWorksForUs(ep, Math.min(stallMs, 10_000)) },
      ...(rechunker ? { stdin: rechunker } : {}),
    });
    details.restore_ms = run.durationMs;
    if (rechunker) details.copy_chunks = copyChunks(rechunker);
    if (run.inputError) {
      throw integrityError(
        `components.${c.name}: reading the staged archive failed while pg_restore read it (${run.inputError.message}); pg_restore was stopped, the database is partly restored`,
        'restore again (it replaces every object of the dump); if it fails the same way, restore from another snapshot',
        run.inputError,
      );
    }
    if (run.stalledMs !== undefined) {
      throw new TykdrError(
        'targetError',
        `components.${c.name}: pg_restore into ${describeEndpoint(ep)} stalled: no progress for ${formatDuration(run.stalledMs)} ` +
          `(components.${c.name}.stallTimeout is ${c.stallTimeout ?? '60s'}) and the server was not working for it; pg_restore was stopped, the database is partly restored`,
        {
          fix: `check the network path to ${ep.host}:${ep.port} and that PostgreSQL answers; on a slow link raise components.${c.name}.stallTimeout; then restore again (it replaces every object of the dump, so it can be repeated)`,
        },
      );
    }
    const errors = run.lines.filter((l) => /^pg_restore: error:/.test(l));
    // pg_restore's own total counts a failed statement of a parallel worker twice: count the statements it printed.
    const failedStatements = errors.filter((l) => /could not execute query/.test(l)).length;
    const ignored =
      failedStatements > 0 && run.lines.length === run.lineCount
        ? failedStatements
        : Number(/errors ignored on restore: (\d+)/.exec(run.lines.join('\n'))?.[1] ?? errors.length);
    details.pg_restore_errors = ignored;
    for (const l of run.lines) if (/^pg_restore: warning:/.test(l) && !/errors ignored/.test(l)) warnings.push(l);
    if (run.code !== 0 || run.signal) {
      const shown = errors.slice(0, 3).map((l) => l.replace(/^pg_restore: error: /, '')).join(' | ') || run.lines.slice(-3).join(' | ');
      const orphans = keep.kept.length > 0 && errors.some((l) => /violates foreign key constraint/.test(l));
      throw new TykdrError(
        'targetError',
        `components.${c.name}: pg_restore into ${describeEndpoint(ep)} ${run.signal ? `was killed by ${run.signal}` : `exited with code ${run.code}`}` +
          `${ignored ? ` after ${ignored} failed statement${ignored === 1 ? '' : 's'} (the rest of the dump was restored)` : ''}: ${shown || '(no message)'}` +
          (orphans ? `. Rows of the tables kept on the target (${keep.kept.join(', ')}) reference rows the snapshot does not have; those rows are untouched` : ''),
        {
          fix: orphans
            ? 'delete the rows that reference rows the snapshot lacks (or add the foreign key again with NOT VALID), then restore again'
            : 'fix the cause shown and restore again: the restore replaces every object of the dump, so it can be repeated',
        },
      );
    }
    // A streamed archive is checked whole once read: its plaintext size is the manifest's (zstd checked its frame too).
    if (streamed && streamed.bytes() !== input.manifest.artifact.plaintext_bytes) {
      throw integrityError(
        `components.${c.name}: the staged archive decompressed to ${streamed.bytes()} bytes, the manifest says ${input.manifest.artifact.plaintext_bytes}; the database was restored from it`,
        'restore from another snapshot',
      );
    }
    details.tables = Object.keys(facts.tables).length;
    details.rows_in_snapshot = Object.values(facts.tables).reduce((a, b) => a + b, 0);
    details.excluded_tables = facts.excluded_tables;

    const checks: CheckResult[] = [];
    for (const name of input.checks) {
      if (name === 'database-counts') checks.push(await checkDatabaseCounts({ db, component: c.name, facts, before, signal: input.signal }));
      if (name === 'database-indexes') checks.push(await checkDatabaseIndexes({ db, component: c.name, facts, signal: input.signal }));
    }
    return { details, checks };
  } catch (err) {
    if (isAbortError(err) || err instanceof TykdrError) throw err;
    throw new TykdrError('targetError', `components.${c.name}: restoring into ${describeEndpoint(ep)} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await db?.end();
  }
}

/**
 * The staged archive decompressed into the work folder, for the paths that read a file (pg_restore --jobs, the list of
 * excluded tables kept): its row chunks merged on the way (archive-rechunk.ts), then the data offsets of the merged
 * file written into its table of contents, so that parallel workers seek to their table (a streamed archive has none).
 */
async function inflateArchive(input: PostgresRestoreInput, component: string, details: Record<string, unknown>): Promise<string> {
  const file = path.join(input.workDir, 'archive.pgdump');
  const rechunker = new ArchiveRechunker();
  await inflateStaged(stagedArchive(input), file, `components.${component}`, input.signal, rechunker);
  details.copy_chunks = copyChunks(rechunker);
  const offsets = rechunker.dataOffsets();
  details.data_offsets_written = offsets ? await writeDataOffsets(file, offsets).catch(() => 0) : 0;
  return file;
}

/** What the rechunker did, for the step's details. */
function copyChunks(r: ArchiveRechunker): Record<string, unknown> {
  return r.passedThrough === null ? { in_archive: r.chunksIn, sent: r.chunksOut } : { merged: false, why: r.passedThrough };
}

/** The staged archive as streamStaged and inflateStaged (core/restore/staging.ts) read it. */
function stagedArchive(input: PostgresRestoreInput): CompressedStaged {
  return compressedStaged(input.stagedFile, input.stagedCompression!, input.manifest.artifact);
}

/**
 * Asked when pg_restore seems stalled: true when the server is running a statement for a tykdr session (not
 * waiting to read from it), i.e. pg_restore waits on honest work. False when the server cannot be asked
 * within `timeoutMs` either.
 */
async function serverWorksForUs(ep: PgEndpoint, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let db: PgClient | undefined;
  let over = false;
  const ask = (async () => {
    db = await connectPg(ep);
    if (over) {
      db.destroy?.();
      return false;
    }
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'tykdr' AND pid <> pg_backend_pid() AND datname = $1
         AND state = 'active' AND coalesce(wait_event, '') <> 'ClientRead'`,
      [ep.database],
    );
    return Number(rows[0]?.n ?? 0) > 0;
  })();
  ask.catch(() => undefined);
  try {
    return await Promise.race([ask, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))]);
  } finally {
    clearTimeout(timer);
    // A connection that hangs would keep the process alive: dropped, not closed politely.
    over = true;
    db?.destroy?.();
  }
}

/** "kept" or "skipped": whether pg_restore sets the dump's owners and GRANTs (see restore.owners). */
function ownersDecision(c: PostgresComponent, ep: PgEndpoint, missing: string[], notActable: string[], warnings: string[]): 'kept' | 'skipped' {
  const mode = c.restore.owners;
  if (mode === 'skip') return 'skipped';
  if (missing.length === 0 && notActable.length === 0) return 'kept';
  const list = (rs: string[]) => rs.map((r) => `"${r}"`).join(', ');
  const why = [
    ...(missing.length ? [`roles ${list(missing)} do not exist on ${ep.host}:${ep.port}`] : []),
    ...(notActable.length ? [`user "${ep.username}" is neither a superuser nor a member of ${list(notActable)}, so it cannot make them owners`] : []),
  ].join('; ');
  if (mode === 'keep') {
    throw new TykdrError('targetError', `components.${c.name}: cannot keep the dump's owners (restore.owners is keep): ${why}`, {
      fix: `restore the snapshot's globals first (components.${c.name}.globals: true) and restore as a superuser, create the roles, or set components.${c.name}.restore.owners: skip`,
    });
  }
  warnings.push(
    `${why}: restored with --no-owner --no-privileges, so user "${ep.username}" owns every object; ` +
      `grant the Dashboard's database user access, or restore the globals first (as a superuser) and restore again`,
  );
  return 'skipped';
}

/**
 * For --dry-run and the overwrite confirmation: what the target holds now, without changing it. Tables named in
 * `excluded` ("schema.table", the snapshot's excluded_tables) are counted apart: a restore keeps them.
 */
export async function inspectPostgresTarget(
  component: PostgresComponent,
  excluded: readonly string[] = [],
): Promise<{ address: string; database: string; serverVersion: string; exists: boolean; tables: number; estimatedRows: number; keptTables: number; keptRows: number }> {
  const ep = targetEndpoint(component);
  const base = { address: `${ep.host}:${ep.port}`, database: ep.database };
  let db: PgClient;
  try {
    db = await connectPg(ep);
  } catch (err) {
    if (!isMissingDatabase(err)) throw err;
    const { db: admin } = await connectMaintenance(ep);
    try {
      const v = await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
      return { ...base, serverVersion: (v.rows[0]?.v ?? '').split(' ')[0]!, exists: false, tables: 0, estimatedRows: 0, keptTables: 0, keptRows: 0 };
    } finally {
      await admin.end();
    }
  }
  try {
    const { rows } = await db.query<{ kept: boolean; t: string; r: string }>(
      `SELECT n.nspname || '.' || c.relname = ANY($1::text[]) AS kept,
              count(*)::text AS t, coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint::text AS r
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
        GROUP BY 1`,
      [excluded],
    );
    const replaced = rows.find((r) => !r.kept);
    const kept = rows.find((r) => r.kept);
    const v = (await db.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]?.v ?? '';
    return {
      ...base,
      serverVersion: v.split(' ')[0]!,
      exists: true,
      tables: Number(replaced?.t ?? 0),
      estimatedRows: Number(replaced?.r ?? 0),
      keptTables: Number(kept?.t ?? 0),
      keptRows: Number(kept?.r ?? 0),
    };
  } catch (err) {
    throw explainPgError(err, ep);
  } finally {
    await db.end();
  }
}
