import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import type { Config } from '../../src/core/config/load.js';
import { manifestKey } from '../../src/core/layout.js';
import { serializeManifest } from '../../src/core/manifest.js';
import { BackupState } from '../../src/daemon/backup-state.js';
import { useCleanups } from '../helpers/cleanups.js';
import { redisManifest } from '../helpers/manifest-fixture.js';

/*
 * The daemon's view of the last backup of each component, read from the store. Snapshot ids sort by their second,
 * then a random suffix: two snapshots of one second may sort either way, so the newest is not always read first.
 */
const { tempDir } = useCleanups();

const manifest = redisManifest;

const config = { components: { redis: { tier: 'critical' } }, tiers: { critical: { rtoMs: 60_000, rpoMs: 60_000 } } } as unknown as Config;

describe('BackupState.refresh', () => {
  it('finds the newest snapshot of a component among several of the same second, whichever way their ids sort', async () => {
    const store = new LocalStore(await tempDir('state'));
    // Same second; the older one (consistent at .100) has the id that sorts last, so it is read first.
    const older = manifest('20261206T191108Z-ffffff', '2026-12-06T19:11:08.100Z');
    const newer = manifest('20261206T191108Z-000000', '2026-12-06T19:11:08.900Z');
    const earlier = manifest('20261206T191000Z-aaaaaa', '2026-12-06T19:10:00.000Z');
    for (const m of [older, newer, earlier]) await store.put(manifestKey(m.id), Readable.from([Buffer.from(serializeManifest(m))]));
    const state = new BackupState(config);
    const { read } = await state.refresh(store);
    expect(state.get('redis')).toMatchObject({ lastSnapshot: newer.id, lastSuccessAt: new Date('2026-12-06T19:11:08.900Z') });
    // Both of the newest second were read, the earlier second's was not.
    expect(read).toBe(2);
  });
});
