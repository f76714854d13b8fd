import { setTimeout as sleep } from 'node:timers/promises';
import type { Db, IndexSpecification } from 'mongodb';
import { isAbortError } from '../../../core/errors.js';
import type { ArchiveCollection } from '../archive-inspector.js';

/**
 * FerretDB v1's SQLite backend runs each statement on one of a pool of SQLite connections, and each connection
 * caches the schema. A connection left idle since a collection was dropped (mongorestore --drop) still holds the
 * dropped table's indexes in that cache; SQLite checks a CREATE INDEX name against the cache before it notices
 * the schema changed, so when FerretDB happens to pick such a connection (another statement holds the usual one:
 * its own capped-collection cleanup, which runs every minute, or another client), createIndexes fails with
 * "SQL logic error: index <table>_<name> already exists" although neither the database file nor listIndexes has
 * that index. Any statement on that connection reloads its schema (FerretDB's own error path runs one), so the
 * same createIndexes succeeds when tried again.
 */
export const STALE_SQLITE_SCHEMA = /SQL logic error: index \S+ already exists/;
const STALE_SCHEMA_RETRIES = 4;

/**
 * FerretDB v1 accepts only key, name and unique as index options, and refuses the `ns` option mongorestore
 * adds: after `mongorestore --noIndexRestore`, the archive's indexes are created here. Other options
 * (TTL, partial, sparse, collation...) cannot be kept: the index is created without them, with a warning.
 * A failed creation is a warning too; the database-indexes check then reports the index missing.
 */
export async function createIndexesThroughDriver(
  db: Db,
  collections: ArchiveCollection[],
  warnings: string[],
  signal?: AbortSignal,
): Promise<{ created: number; failed: string[] }> {
  let created = 0;
  const failed: string[] = [];
  for (const c of collections) {
    for (const index of c.indexes) {
      signal?.throwIfAborted();
      if (index.name === '_id_') continue;
      const dropped = Object.keys(index.options);
      if (dropped.length) {
        warnings.push(`index ${c.collection}.${index.name}: FerretDB does not support ${dropped.join(', ')}; created without`);
      }
      for (let attempt = 0; ; attempt++) {
        try {
          await db.collection(c.collection).createIndex(index.key as IndexSpecification, {
            name: index.name,
            ...(index.unique ? { unique: true } : {}),
          });
          created++;
          break;
        } catch (err) {
          if (isAbortError(err)) throw err;
          if (attempt < STALE_SCHEMA_RETRIES && STALE_SQLITE_SCHEMA.test((err as Error).message)) {
            // A read makes the pooled SQLite connection FerretDB hands out next reload its schema too.
            await db.collection(c.collection).findOne({}, { projection: { _id: 1 } }).catch(() => undefined);
            await sleep(20 * (attempt + 1), undefined, { signal });
            continue;
          }
          failed.push(`${c.collection}.${index.name}`);
          warnings.push(`index ${c.collection}.${index.name} could not be created: ${(err as Error).message.split('\n')[0]}`);
          break;
        }
      }
    }
  }
  return { created, failed };
}
