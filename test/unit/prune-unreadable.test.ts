import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCleanups } from '../helpers/cleanups.js';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { TykdrError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/interfaces/store.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';

const { tempDir } = useCleanups();

/**
 * A snapshot whose manifest is there but could not be read (the store failed) is not known to be incomplete: prune
 * must not delete it as one after retention.incompleteGrace, nor count retention without it. It prunes nothing.
 */
describe('prune with a manifest the store could not give', () => {
  it('refuses (a store error naming the snapshot) and deletes nothing', async () => {
    const root = await tempDir('tykdr-prune-unreadable-');
    // Two old snapshots with a manifest object (content does not matter here) and an object each.
    const ids = ['20200101T000000Z-000001', '20200102T000000Z-000002'];
    for (const id of ids) {
      await mkdir(path.join(root, 'snapshots', id), { recursive: true });
      await writeFile(path.join(root, 'snapshots', id, 'manifest.json'), '{}');
      await writeFile(path.join(root, 'snapshots', id, 'redis.rdb.zst.age'), 'x');
    }
    const local = new LocalStore(root);
    // The newest one's manifest: the store fails to give it (a reset, as S3 after its retries).
    const failing = Object.assign(Object.create(local) as Store, {
      stat: async (key: string, o?: { signal?: AbortSignal }) => {
        if (key.includes(ids[1]!)) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
        return local.stat(key, o);
      },
    });
    const policy = { keepLast: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: '1d' };
    const err = await pruneSnapshots({ store: failing, policy, confirm: true }).then(() => null, (e: unknown) => e as TykdrError);
    expect(err).toBeInstanceOf(TykdrError);
    expect(err!.kind).toBe('storeError');
    expect(err!.message).toMatch(/manifest of snapshot 20200102T000000Z-000002 .* could not be read \(read ECONNRESET\); nothing was pruned/);
    expect((await readdir(path.join(root, 'snapshots'))).sort()).toEqual(ids);
    // The same store answering: the malformed manifests make both damaged, kept as evidence, not pruned as unfinished.
    const ok = await pruneSnapshots({ store: local, policy, confirm: true });
    expect(ok.snapshots.map((e) => [e.id, e.keep])).toEqual([
      [ids[1], true],
      [ids[0], true],
    ]);
    expect((await readdir(path.join(root, 'snapshots'))).sort()).toEqual(ids);
    // Without their manifests they are unfinished backups, older than the grace: they go.
    for (const id of ids) await rm(path.join(root, 'snapshots', id, 'manifest.json'));
    await pruneSnapshots({ store: local, policy, confirm: true });
    expect(await readdir(path.join(root, 'snapshots')).catch(() => [])).toEqual([]);
  });
});
