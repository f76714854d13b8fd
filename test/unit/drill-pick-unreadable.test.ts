import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { pickRandomSnapshot } from '../../src/core/drill/pick.js';
import { TykdrError } from '../../src/core/errors.js';
import type { Store } from '../../src/core/interfaces/store.js';
import { newSnapshotId } from '../../src/core/layout.js';
import { serializeManifest } from '../../src/core/manifest.js';
import { useCleanups } from '../helpers/cleanups.js';
import { redisManifest } from '../helpers/manifest-fixture.js';

const { tempDir } = useCleanups();

/**
 * `drill --pick random`: a snapshot in the window whose manifest the store failed to give may be complete. The pick
 * must not be made without it (the seed would name another pick, and the drill would pass over it in silence).
 */
describe('random drill pick with a manifest the store could not give', () => {
  const now = new Date('2026-12-07T12:00:00Z');
  const hours = (h: number) => new Date(now.getTime() - h * 3_600_000);

  /** A store of `ids`: the first has a valid manifest, the others one the store fails to give when `failing`. */
  async function storeWith(ids: string[], failing: string): Promise<Store> {
    const root = await tempDir('tykdr-pick-unreadable-');
    for (const [i, id] of ids.entries()) {
      await mkdir(path.join(root, 'snapshots', id), { recursive: true });
      const m = i === 0 ? serializeManifest(redisManifest(id, hours(1).toISOString())) : '{}';
      await writeFile(path.join(root, 'snapshots', id, 'manifest.json'), m);
    }
    const local = new LocalStore(root);
    return Object.assign(Object.create(local) as Store, {
      stat: async (key: string, o?: { signal?: AbortSignal }) => {
        if (key.includes(failing)) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
        return local.stat(key, o);
      },
    });
  }

  it('in the window: a store error naming the snapshot and the way round, though another could be picked', async () => {
    const recent = newSnapshotId(hours(2));
    const store = await storeWith([newSnapshotId(hours(1)), recent], recent);
    const err = await pickRandomSnapshot(store, { within: '1d', withinMs: 86_400_000, seed: 1 }, now).then(() => null, (e: unknown) => e as TykdrError);
    expect(err).toBeInstanceOf(TykdrError);
    expect(err!.kind).toBe('storeError');
    expect(err!.message).toMatch(new RegExp(`the manifest of snapshot ${recent} in .* could not be read \\(read ECONNRESET\\), so no random pick within 1d can be made`));
    expect(err!.fix).toContain(`--snapshot ${recent}`);
  });

  it('outside the window it does not matter, nor does a malformed manifest: the pick is made from the rest', async () => {
    const old = newSnapshotId(hours(48));
    const good = newSnapshotId(hours(1));
    const malformed = newSnapshotId(hours(3));
    const store = await storeWith([good, old, malformed], old);
    const picked = await pickRandomSnapshot(store, { within: '1d', withinMs: 86_400_000, seed: 1 }, now);
    expect(picked.manifest.id).toBe(good);
    expect(picked.candidates).toBe(1);
  });
});
