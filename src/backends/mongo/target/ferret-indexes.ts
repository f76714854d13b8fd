import type { Db, IndexSpecification } from 'mongodb';
import { isAbortError } from '../../../core/errors.js';
import type { ArchiveCollection } from '../archive-inspector.js';

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
      try {
        await db.collection(c.collection).createIndex(index.key as IndexSpecification, {
          name: index.name,
          ...(index.unique ? { unique: true } : {}),
        });
        created++;
      } catch (err) {
        if (isAbortError(err)) throw err;
        failed.push(`${c.collection}.${index.name}`);
        warnings.push(`index ${c.collection}.${index.name} could not be created: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  }
  return { created, failed };
}
