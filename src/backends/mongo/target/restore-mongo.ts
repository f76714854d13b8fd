import type { MongoClient } from 'mongodb';
import type { MongoComponent } from '../../../core/config/load.js';
import { isAbortError, TykdrError } from '../../../core/errors.js';
import type { ManifestComponent } from '../../../core/manifest.js';
import { sleep } from '../../../core/util/abort.js';
import type { CheckResult } from '../../../core/restore/types.js';
import { readArchivePrelude, type ArchivePrelude } from '../archive-inspector.js';
import { connectMongo, endpoint, explainMongoError, serverFacts, type MongoEndpoint } from '../client.js';
import { readMongoFacts } from '../facts.js';
import { failureSummary, findTool, spawnTool } from '../tools.js';
import { displayHosts, displayUri, scrubMongoText, toolUri } from '../uri.js';
import { checkDatabaseCounts, checkDatabaseIndexes, MONGO_CHECKS, type MongoCheckName } from './mongo-checks.js';
import { createIndexesThroughDriver, STALE_SQLITE_SCHEMA } from './ferret-indexes.js';

/** mongorestore runs at most this often when FerretDB's stale SQLite schema fails it (ferret-indexes.ts). */
const MONGORESTORE_ATTEMPTS = 3;

export interface MongoRestoreInput {
  component: MongoComponent;
  /** The snapshot's entry for this component. */
  manifest: ManifestComponent;
  /** The staged plaintext archive, already SHA-256 verified and decrypted. */
  stagedFile: string;
  /** Scratch folder; the caller removes it afterwards. */
  workDir: string;
  /** Checks to run after the restore (names that are not MongoDB checks are ignored). */
  checks: string[];
  signal?: AbortSignal;
}

export interface MongoRestoreOutcome {
  /** Target (without credentials), databases, FerretDB handling, documents restored, indexes created, warnings. */
  details: Record<string, unknown>;
  /** One result per requested MongoDB check, in the order requested. */
  checks: CheckResult[];
}

/**
 * Restores one MongoDB database from a staged mongodump archive with mongorestore, then runs the checks.
 *
 * - `mongorestore --archive --drop --nsInclude=SRC.*` (`--nsFrom/--nsTo` when restore.database renames it):
 *   each collection of the snapshot is dropped and recreated with its options (capped ones capped) and
 *   documents. Collections the snapshot does not hold (analytics left out at backup) are left as they are.
 * - FerretDB (restore.ferretdb, or detected: its buildInfo has `ferretdbVersion`): one collection and one
 *   insertion worker at a time, no index restore by mongorestore (FerretDB refuses the `ns` option it sends);
 *   the indexes are then created through the driver with key, name and unique only.
 * - Throws badInput (mongorestore missing; nothing touched), targetError (unreachable, refused, mongorestore
 *   failed), integrityError (the staged file is not an archive) or an AbortError. Checks never throw.
 * - Never puts the URI's password in details, checks or errors.
 */
export async function restoreMongo(input: MongoRestoreInput): Promise<MongoRestoreOutcome> {
  const { component: c, signal } = input;
  const facts = readMongoFacts(input.manifest, c.name);
  const bin = await findTool(c, 'mongorestore');
  const ep = endpoint(c, 'target');
  const from = facts.database;
  const to = c.restore.database ?? c.database;
  const prelude = await readArchivePrelude(input.stagedFile, signal);
  const warnings: string[] = [];
  const details: Record<string, unknown> = {
    target: displayHosts(ep.parsed),
    uri: displayUri(ep.parsed),
    database: to,
    source_database: from,
    warnings,
  };
  const client = await connectMongo(ep, signal);
  try {
    let server;
    try {
      server = await serverFacts(client);
    } catch (err) {
      throw explainMongoError(err, ep, 'buildInfo');
    }
    const ferret = c.restore.ferretdb || server.ferretdbVersion !== undefined;
    details.target_server_version = server.version;
    details.ferretdb = ferret
      ? { version: server.ferretdbVersion ?? 'unknown', detected: server.ferretdbVersion !== undefined, configured: c.restore.ferretdb }
      : false;
    if (ferret && prelude.concurrentCollections > 1) {
      warnings.push(
        `the archive was dumped ${prelude.concurrentCollections} collections at a time; mongorestore restores an archive with at least as many at once, which FerretDB may refuse (SQLite busy): back up with parallelCollections: 1`,
      );
    }
    const db = client.db(to);
    details.collections_before = (await db.listCollections({}, { nameOnly: true }).toArray().catch((err: unknown) => {
      throw explainMongoError(err, ep, `listing the collections of database "${to}"`);
    })).map((i) => i.name).sort();

    const started = Date.now();
    const what = `${from} into database "${to}" at ${displayHosts(ep.parsed)}`;
    let out: Record<string, unknown>;
    for (let attempt = 1; ; attempt++) {
      try {
        out = await runMongorestore(bin, ep, restoreArgs(input.stagedFile, from, to, ferret), signal, what);
        break;
      } catch (err) {
        // FerretDB's stale SQLite schema (ferret-indexes.ts) can meet the _id index of a collection mongorestore creates
        // too: it runs again (--drop makes that safe), after a read that makes the pooled connections see the schema.
        if (!ferret || attempt >= MONGORESTORE_ATTEMPTS || !(err instanceof TykdrError) || !STALE_SQLITE_SCHEMA.test(err.message)) throw err;
        warnings.push(`mongorestore met FerretDB's stale SQLite schema ("index ... already exists" for an index it does not have): run again (attempt ${attempt + 1})`);
        await db.listCollections({}, { nameOnly: true }).toArray().catch(() => undefined);
        await sleep(100 * attempt, signal);
      }
    }
    details.restore_ms = Date.now() - started;
    Object.assign(details, out);
    if (ferret) {
      details.indexes = await createIndexesThroughDriver(db, collectionsOf(prelude, from), warnings, signal);
    }
    const checks = await runChecks(input.checks, client, to, facts, signal);
    return { details, checks };
  } catch (err) {
    if (isAbortError(err) || err instanceof TykdrError) throw err;
    throw explainMongoError(err, ep, 'the restore');
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** mongorestore's namespace patterns treat * and \ specially. */
const nsEscape = (db: string) => db.replace(/[\\*]/g, '\\$&');

export function restoreArgs(file: string, from: string, to: string, ferret: boolean): string[] {
  return [
    `--archive=${file}`,
    '--drop',
    `--nsInclude=${nsEscape(from)}.*`,
    ...(from !== to ? [`--nsFrom=${nsEscape(from)}.*`, `--nsTo=${nsEscape(to)}.*`] : []),
    '--stopOnError',
    ...(ferret ? ['--noIndexRestore', '--numParallelCollections=1', '--numInsertionWorkersPerCollection=1'] : []),
  ];
}

function collectionsOf(prelude: ArchivePrelude, db: string) {
  return prelude.collections.filter((x) => x.db === db && x.type === 'collection');
}

async function runMongorestore(bin: string, ep: MongoEndpoint, args: string[], signal: AbortSignal | undefined, what: string): Promise<Record<string, unknown>> {
  signal?.throwIfAborted();
  const child = await spawnTool(bin, toolUri(ep.parsed), args);
  child.stdout.resume();
  const onAbort = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', onAbort, { once: true });
  let r;
  try {
    r = await child.done;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  signal?.throwIfAborted();
  const lines = child.stderrTail.lines().map((l) => scrubMongoText(l, [ep.parsed.password, ep.secret.reveal()]));
  const summary = lines.map((l) => /(\d+) document\(s\) restored successfully\. (\d+) document\(s\) failed to restore/.exec(l)).find(Boolean);
  const out: Record<string, unknown> = {};
  if (summary) {
    out.documents_restored = Number(summary[1]);
    out.documents_failed = Number(summary[2]);
  }
  if (r.code !== 0) {
    throw new TykdrError(
      'targetError',
      `mongorestore ${r.code !== null ? `exited with code ${r.code}` : `was killed by ${r.signal}`} restoring ${what}: ${failureSummary(lines)}`,
      { fix: `check ${ep.configPath}, that its user may write the database (the "restore" role), and mongorestore's message; collections restored before the failure stay restored` },
    );
  }
  return out;
}

async function runChecks(wanted: string[], client: MongoClient, database: string, facts: ReturnType<typeof readMongoFacts>, signal?: AbortSignal): Promise<CheckResult[]> {
  const names = wanted.filter((n): n is MongoCheckName => (MONGO_CHECKS as readonly string[]).includes(n));
  const input = { db: client.db(database), facts, signal };
  const out: CheckResult[] = [];
  for (const name of names) out.push(name === 'database-counts' ? await checkDatabaseCounts(input) : await checkDatabaseIndexes(input));
  return out;
}
