import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MongoClient } from 'mongodb';
import type { ArchiveCollection } from '../../src/backends/mongo/archive-inspector.js';
import { createIndexesThroughDriver } from '../../src/backends/mongo/target/ferret-indexes.js';
import { startFerret, type FerretServer } from '../helpers/mongo.js';

/**
 * FerretDB v1 (SQLite backend) with a pooled SQLite connection whose cached schema predates a collection drop,
 * made on purpose: another client's open cursor holds one connection while the collection is dropped and created
 * again on another (what mongorestore --drop does); once the cursor closes, its connection is the pool's next. A
 * CREATE INDEX on it fails with "index ... already exists" for an index that neither the file nor listIndexes has.
 * In CI this came from FerretDB's own minutely capped-collection cleanup holding a connection (restore-crash-mongo
 * failed once so). The restore's index step tries again after a read, which makes that connection reload its schema.
 */
let ferret: FerretServer;
let other: MongoClient;
let restorer: MongoClient;

const EMAIL = [{ db: 'tyk_analytics', collection: 'tyk_analytics_users', type: 'collection', indexes: [{ name: 'email_unique', key: { email_address: 1 }, unique: true, options: {} }] }] as unknown as ArchiveCollection[];
const docs = () => Array.from({ length: 8 }, (_, i) => ({ email_address: `user${i}@acme.example` }));

beforeAll(async () => {
  ferret = await startFerret();
  other = await ferret.client();
  restorer = await ferret.client();
  await other.db('tyk_analytics').collection('big').insertMany(Array.from({ length: 500 }, (_, i) => ({ i })));
  const users = restorer.db('tyk_analytics').collection('tyk_analytics_users');
  await users.insertMany(docs());
  await users.createIndex({ email_address: 1 }, { name: 'email_unique', unique: true });
}, 120_000);

afterAll(async () => {
  await other?.close().catch(() => undefined);
  await restorer?.close().catch(() => undefined);
  await ferret?.stop();
});

/** Drops and recreates tyk_analytics_users while another client's cursor holds a SQLite connection, then frees it. */
async function staleConnectionOnTop(): Promise<void> {
  const users = restorer.db('tyk_analytics').collection('tyk_analytics_users');
  const cursor = other.db('tyk_analytics').collection('big').find({}, { batchSize: 2 });
  await cursor.next();
  await users.drop();
  await users.insertMany(docs());
  await cursor.close();
}

describe('FerretDB: createIndexes on a pooled SQLite connection with a stale schema', () => {
  it('the premise: a plain createIndex then fails with "already exists" although listIndexes has no such index', async () => {
    await staleConnectionOnTop();
    const users = restorer.db('tyk_analytics').collection('tyk_analytics_users');
    const err = await users.createIndex({ email_address: 1 }, { name: 'email_unique', unique: true }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/SQL logic error: index tyk_analytics_users_\w+_email_unique already exists/);
    // (FerretDB's error path ran a statement on that connection, so it sees the schema again.)
    expect((await users.listIndexes().toArray()).map((i) => i.name)).toEqual(['_id_']);
    await users.createIndex({ email_address: 1 }, { name: 'email_unique', unique: true });
  }, 60_000);

  it('the restore\'s index step creates the index all the same, with no warning, three times in a row', async () => {
    for (let round = 0; round < 3; round++) {
      await staleConnectionOnTop();
      const warnings: string[] = [];
      const res = await createIndexesThroughDriver(restorer.db('tyk_analytics'), EMAIL, warnings);
      expect(res, `round ${round}: ${warnings.join('; ')}`).toEqual({ created: 1, failed: [] });
      expect(warnings).toEqual([]);
      const names = (await restorer.db('tyk_analytics').collection('tyk_analytics_users').listIndexes().toArray()).map((i) => i.name);
      expect(names.sort()).toEqual(['_id_', 'email_unique']);
    }
  }, 60_000);
});
