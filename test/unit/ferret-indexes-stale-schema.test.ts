import type { Db } from 'mongodb';
import { describe, expect, it } from 'vitest';
import type { ArchiveCollection } from '../../src/backends/mongo/archive-inspector.js';
import { createIndexesThroughDriver } from '../../src/backends/mongo/target/ferret-indexes.js';

const STALE = 'SQL logic error: index tyk_analytics_users_5d649433_email_unique already exists (1)';
const collections = [
  { db: 'tyk_analytics', collection: 'tyk_analytics_users', type: 'collection', indexes: [{ name: 'email_unique', key: { email_address: 1 }, unique: true, options: {} }] },
] as unknown as ArchiveCollection[];

/** A Db whose createIndex fails with the given messages, in order, then succeeds. */
function fakeDb(errors: string[]) {
  const calls = { createIndex: 0, findOne: 0 };
  const db = {
    collection: () => ({
      createIndex: async () => {
        const e = errors[calls.createIndex++];
        if (e) throw new Error(`[msg_createindexes.go:155 handler.(*Handler).MsgCreateIndexes] ${e}`);
        return 'email_unique';
      },
      findOne: async () => {
        calls.findOne++;
        return null;
      },
    }),
  } as unknown as Db;
  return { db, calls };
}

describe('createIndexesThroughDriver and FerretDB SQLite stale schema', () => {
  it('tries again when a pooled SQLite connection reports an index that does not exist', async () => {
    const { db, calls } = fakeDb([STALE, STALE]);
    const warnings: string[] = [];
    expect(await createIndexesThroughDriver(db, collections, warnings)).toEqual({ created: 1, failed: [] });
    expect(calls).toEqual({ createIndex: 3, findOne: 2 });
    expect(warnings).toEqual([]);
  });

  it('gives up after a few tries, and never retries other errors', async () => {
    const stuck = fakeDb(Array(10).fill(STALE));
    const w1: string[] = [];
    expect(await createIndexesThroughDriver(stuck.db, collections, w1)).toEqual({ created: 0, failed: ['tyk_analytics_users.email_unique'] });
    expect(stuck.calls.createIndex).toBe(5);
    expect(w1[0]).toContain('already exists');
    const dup = fakeDb(['E11000 duplicate key error']);
    const w2: string[] = [];
    expect(await createIndexesThroughDriver(dup.db, collections, w2)).toEqual({ created: 0, failed: ['tyk_analytics_users.email_unique'] });
    expect(dup.calls.createIndex).toBe(1);
  });

  it('stops waiting when aborted', async () => {
    const { db } = fakeDb(Array(10).fill(STALE));
    const ac = new AbortController();
    const p = createIndexesThroughDriver(db, collections, [], ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });
});
