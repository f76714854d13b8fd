import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCleanups } from '../helpers/cleanups.js';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { pruneSnapshots } from '../../src/core/retention/prune.js';

const { tempDir } = useCleanups();

/**
 * A delete killed between a snapshot's last file and its folder leaves the folder, empty. It is no snapshot (list
 * never shows it); the store lists it as an unfinished write, and prune removes it once older than incompleteGrace.
 */
describe('local store: an empty folder a killed delete left', () => {
  it('is not listed, is an unfinished write, and goes once older than the grace (a young one stays)', async () => {
    const root = await tempDir('tykdr-empty-folder-');
    const old = path.join(root, 'snapshots', '20200101T000000Z-000001');
    const young = path.join(root, 'snapshots', '20200102T000000Z-000002');
    await mkdir(old, { recursive: true });
    await mkdir(young, { recursive: true });
    await utimes(old, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    // An incomplete snapshot (an object, no manifest), older than the grace: prune removes it as such.
    await mkdir(path.join(root, 'snapshots', '20200103T000000Z-000003'));
    await writeFile(path.join(root, 'snapshots', '20200103T000000Z-000003', 'redis.rdb.zst.age'), 'x');
    const store = new LocalStore(root);
    const listed: string[] = [];
    for await (const o of store.list('snapshots/')) listed.push(o.key);
    expect(listed).toEqual(['snapshots/20200103T000000Z-000003/redis.rdb.zst.age']);
    const unfinished: string[] = [];
    for await (const u of store.listUnfinished('')) unfinished.push(`${u.key} ${u.id}`);
    expect(unfinished.sort()).toEqual(['snapshots/20200101T000000Z-000001/ (empty folder)', 'snapshots/20200102T000000Z-000002/ (empty folder)']);
    const policy = { keepLast: 5, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, incompleteGrace: '1d' };
    const r = await pruneSnapshots({ store, policy, confirm: true });
    expect(r.unfinished.entries.map((e) => [e.key, e.stale, e.action])).toEqual([
      ['snapshots/20200101T000000Z-000001/', true, 'removed'],
      ['snapshots/20200102T000000Z-000002/', false, undefined],
    ]);
    expect(r.snapshots.filter((e) => !e.keep).map((e) => e.id)).toEqual(['20200103T000000Z-000003']);
    expect((await readdir(path.join(root, 'snapshots'))).sort()).toEqual(['20200102T000000Z-000002']);
  });
});
