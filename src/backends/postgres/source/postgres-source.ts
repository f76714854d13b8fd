import type { PostgresComponent } from '../../../core/config/load.js';
import { parseDuration } from '../../../core/duration.js';
import { integrityError, sourceUnreachable, TykdrError } from '../../../core/errors.js';
import type { Source, SourceArtifact, SourceFacts } from '../../../core/interfaces/source.js';
import { countRows, listIndexes, listTables, matchTables, referencedRoles, serverVersion, tableKey, type TableRef } from '../catalog.js';
import { connectPg, describeEndpoint, explainPgError, libpqEnv, qualified, sourceEndpoint, type PgClient, type PgEndpoint } from '../connection.js';
import { compileTablePattern, exactTablePattern } from '../table-patterns.js';
import { ArchiveRowCounter } from '../archive-rows.js';
import { lastLines, spawnToolStream, type ToolExit } from './tool-stream.js';
import { bigStdout } from './stdout-buffer.js';
import { requireToolForServer, toolPath, toolVersion, type PgVersion } from '../versions.js';

/** What the backup's transaction saw, at the snapshot pg_dump dumps. */
interface SnapshotView {
  id: string;
  takenAt: Date;
  tables: TableRef[];
  /** "schema.table" keys whose data pg_dump leaves out (schema kept). */
  excluded: Set<string>;
  indexes: Record<string, string[]>;
  roles: string[];
}

/**
 * The Dashboard's PostgreSQL database as a `pg_dump -Fc` archive streamed from pg_dump's stdout (no temp file).
 *
 * Consistency: tykdr opens a REPEATABLE READ, READ ONLY transaction, takes ACCESS SHARE locks on every user table
 * (so no TRUNCATE or DDL can slip in), exports its snapshot with pg_export_snapshot() and hands it to pg_dump
 * (--snapshot). Every dumped table's rows are counted exactly from the archive as it streams (its COPY data: one
 * newline per row, see ../archive-rows.ts), so counts and dump describe the same instant, `consistent_at`, without a
 * second scan of the tables; a table the counter cannot follow is counted with count(*) in the same transaction,
 * which stays open (locks held) until the counts are done.
 *
 * Analytics tables matching `excludeTables` keep their schema (the Dashboard expects them) but not their data
 * (--exclude-table-data, with the exact names tykdr resolved in the snapshot). pg_dump's own compression is off
 * (-Z 0): tykdr's zstd does it faster and better, and the staged file restores without inflating.
 */
export class PostgresSource implements Source {
  readonly kind = 'postgres';
  readonly component: string;
  private readonly ep: PgEndpoint;

  constructor(private readonly cfg: PostgresComponent) {
    this.component = cfg.name;
    this.ep = sourceEndpoint(cfg);
  }

  async check(signal?: AbortSignal): Promise<void> {
    const db = await connectPg(this.ep);
    try {
      await this.versions(db, signal);
    } finally {
      await db.end();
    }
  }

  async open(signal?: AbortSignal): Promise<SourceArtifact> {
    const c = this.cfg;
    const db = await connectPg(this.ep);
    let released = false;
    // Ending the session ends its transaction; a count still running is cut off.
    const release = async () => {
      if (released) return;
      released = true;
      await db.end();
    };
    const env = libpqEnv(this.ep);
    // Probed while the snapshot is taken (it never rejects).
    const spawnWith = bigStdout(toolPath(c.binDir, 'pg_dump'), env);
    try {
      const { server, dump } = await this.versions(db, signal);
      const size = await db.query<{ n: string; enc: string }>(
        'SELECT pg_database_size(d.oid)::text AS n, pg_encoding_to_char(d.encoding) AS enc FROM pg_database d WHERE d.datname = current_database()',
      );
      const snap = await this.takeSnapshot(db);
      const counted = snap.tables.filter((t) => t.kind === 'r' && !snap.excluded.has(tableKey(t)));
      const excluded = snap.tables.filter((t) => snap.excluded.has(tableKey(t)));
      const lockMs = parseDuration(c.lockTimeout) ?? 60_000;
      const warnings: string[] = [];
      // Rows are counted from the dump itself as it streams (../archive-rows.ts): the same snapshot, no second scan.
      const counter = new ArchiveRowCounter();
      let dumped!: () => void;
      let stopped!: (err: Error) => void;
      const whole = new Promise<void>((resolve, reject) => {
        dumped = resolve;
        stopped = reject;
      });
      // pg_dump's stdout gets a 1 MiB buffer where stdbuf works (stdout-buffer.ts): 64 KiB reads instead of ~8 KB ones.
      const dumpTool = (await spawnWith)([
        '--format=custom', '--compress=0', '--no-password', `--snapshot=${snap.id}`, `--lock-wait-timeout=${lockMs}`,
        ...excluded.map((t) => `--exclude-table-data=${exactTablePattern(t.schema, t.name)}`),
      ]);
      const stream = spawnToolStream({
        command: dumpTool.command,
        args: dumpTool.args,
        env,
        secrets: c.password ? [c.password.reveal()] : [],
        signal,
        inspect: (chunk) => counter.push(chunk),
        judge: (exit) => {
          const err = this.judgeDump(exit, warnings);
          if (!err) dumped();
          return err;
        },
      });
      // Once pg_dump's output was judged whole: the counts it holds; a table the counter could not follow (or an
      // archive it does not understand) is counted with count(*) in the snapshot, whose transaction is still open.
      const rows = (async () => {
        await whole;
        const fromDump = counter.finish();
        const out: Record<string, number> = {};
        for (const t of counted) {
          const n = fromDump?.get(tableKey(t));
          if (n !== undefined) {
            out[tableKey(t)] = n;
            continue;
          }
          if (released) throw new Error('the backup was stopped');
          out[tableKey(t)] = await countRows(db, t);
        }
        return out;
      })().catch((err: unknown) => {
        throw err instanceof TykdrError ? err : explainPgError(err, this.ep);
      });
      rows.catch((err: unknown) => stream.destroy(err as Error));
      // The session (and its snapshot) ends when pg_dump is done and every table is counted; at once when the
      // stream failed, was aborted or was destroyed by the pipeline. finish() needs only the counts.
      // One 'close' listener (the pipeline adds its own; more would trip Node's listener warning).
      const closed = new Promise<void>((resolve) =>
        stream.once('close', () => {
          stopped(new Error('the backup was stopped'));
          if (!stream.readableEnded) void release();
          resolve();
        }),
      );
      void Promise.allSettled([rows, closed]).then(release);
      return {
        stream,
        format: 'pgdump',
        consistentAt: snap.takenAt,
        finish: async (): Promise<SourceFacts> => {
          const counts = await rows;
          const offsets = counter.dataOffsets();
          const total = Object.values(counts).reduce((a, b) => a + b, 0);
          const partitioned = snap.tables.filter((t) => t.kind === 'p' && !snap.excluded.has(tableKey(t))).map(tableKey);
          return {
            source: {
              address: `${this.ep.host}:${this.ep.port}`,
              database: this.ep.database,
              user: this.ep.username,
              server_version: server.text,
              server_version_num: server.num,
              pg_dump_version: dump.text,
              database_bytes: Number(size.rows[0]?.n ?? 0),
              encoding: size.rows[0]?.enc,
              dump_format: 'custom',
              consistency: 'pg_dump --snapshot of a REPEATABLE READ transaction (table locks held); rows counted from the dump\'s data',
              exclude_patterns: c.excludeTables,
              tables: counts,
              total_rows: total,
              excluded_tables: excluded.map(tableKey),
              ...(partitioned.length ? { partitioned_tables: partitioned } : {}),
              // Where each data block starts in the archive: a restore writes them into the staged copy (see
              // writeDataOffsets) so pg_restore --jobs can seek.
              ...(offsets ? { data_offsets: offsets } : {}),
              indexes: snap.indexes,
              roles: snap.roles,
              ...(warnings.length ? { warnings } : {}),
            },
          };
        },
      };
    } catch (err) {
      await release();
      throw explainPgError(err, this.ep);
    }
  }

  private async versions(db: PgClient, signal?: AbortSignal): Promise<{ server: PgVersion; dump: PgVersion }> {
    const server = await serverVersion(db).catch((err: unknown) => {
      throw explainPgError(err, this.ep);
    });
    const dump = await toolVersion({ binDir: this.cfg.binDir, tool: 'pg_dump', configPath: `components.${this.cfg.name}`, kind: 'badInput', wantMajor: server.num, signal });
    requireToolForServer('pg_dump', dump, server, `components.${this.cfg.name}`);
    return { server, dump };
  }

  /** Opens the transaction whose snapshot pg_dump imports; it stays open (locks held) until the artifact is finished. */
  private async takeSnapshot(db: PgClient): Promise<SnapshotView> {
    const lockMs = parseDuration(this.cfg.lockTimeout) ?? 60_000;
    const lock = async (tables: TableRef[]) => {
      if (tables.length === 0) return;
      try {
        await db.query(`LOCK TABLE ${tables.map((t) => qualified(t.schema, t.name)).join(', ')} IN ACCESS SHARE MODE`);
      } catch (err) {
        if ((err as { code?: string }).code === '55P03') {
          throw sourceUnreachable(
            `components.${this.cfg.name}: ${describeEndpoint(this.ep)}: could not lock the tables within lockTimeout ${this.cfg.lockTimeout} (an ALTER TABLE, TRUNCATE or VACUUM FULL holds them)`,
            `retry when it is done, or raise components.${this.cfg.name}.lockTimeout`,
            err,
          );
        }
        throw err;
      }
    };
    for (let attempt = 1; ; attempt++) {
      // Locks come before the snapshot (a REPEATABLE READ snapshot is taken by the first query, not by LOCK).
      const before = await listTables(db);
      await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      await db.query(`SET LOCAL lock_timeout = ${lockMs}`);
      try {
        await lock(before);
      } catch (err) {
        await db.query('ROLLBACK').catch(() => undefined);
        // A table dropped between the listing and the lock: list again.
        if ((err as { code?: string }).code === '42P01' && attempt < 3) continue;
        throw err;
      }
      const takenAt = new Date();
      const { rows } = await db.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
      const tables = await listTables(db);
      const locked = new Set(before.map(tableKey));
      await lock(tables.filter((t) => !locked.has(tableKey(t))));
      const excluded = await matchTables(db, this.cfg.excludeTables.map(compileTablePattern), tables);
      return { id: rows[0]!.id, takenAt, tables, excluded, indexes: await listIndexes(db), roles: await referencedRoles(db) };
    }
  }

  /** A dump is whole only when pg_dump exited 0, reported no error, and wrote a custom-format archive. */
  private judgeDump(exit: ToolExit, warnings: string[]): Error | null {
    const where = `components.${this.cfg.name}: pg_dump of ${describeEndpoint(this.ep)}`;
    const lines = lastLines(exit.stderr);
    const fix = `run pg_dump by hand with the same settings to see the whole error; check components.${this.cfg.name}`;
    for (const l of exit.stderr.split('\n')) if (/warning:/i.test(l)) warnings.push(l.trim());
    if (exit.signal) {
      return integrityError(`${where} was killed by ${exit.signal} after ${exit.bytes} bytes: the dump is incomplete${lines ? ` (${lines})` : ''}`, fix);
    }
    if (exit.code !== 0) {
      if (/could not connect|connection to server|password authentication|does not exist|timeout expired|Connection refused|no pg_hba/i.test(exit.stderr)) {
        return sourceUnreachable(`${where} failed to connect (exit ${exit.code}): ${lines}`, `check components.${this.cfg.name} host, port, database, username and password`);
      }
      return integrityError(`${where} exited with code ${exit.code} after ${exit.bytes} bytes: ${lines || '(no message)'}`, fix);
    }
    if (/\berror:/i.test(exit.stderr)) return integrityError(`${where} reported errors although it exited 0: ${lines}`, fix);
    if (exit.bytes === 0) {
      return integrityError(`${where} exited 0 but wrote nothing: no dump`, `check that ${toolPath(this.cfg.binDir, 'pg_dump')} is the real pg_dump`);
    }
    if (!exit.head.subarray(0, 5).equals(Buffer.from('PGDMP'))) {
      return integrityError(`${where} wrote ${exit.bytes} bytes that are not a custom-format archive (they start ${JSON.stringify(exit.head.toString('latin1').slice(0, 8))})`, fix);
    }
    return null;
  }
}
