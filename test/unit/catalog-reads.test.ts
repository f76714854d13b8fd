import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { listSnapshots } from '../../src/core/catalog.js';
import type { ObjectInfo, Store } from '../../src/core/interfaces/store.js';

/**
 * listSnapshots reads every manifest (the order is by manifest time): from a store far away, one after another, that
 * was a round trip per snapshot before a restore of "latest" could begin. They are read several at a time.
 */
describe('listSnapshots', () => {
  it('reads manifests several at a time, and lists every snapshot newest first', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `20261207T05${String(Math.floor(i / 60)).padStart(2, '0')}${String(i % 60).padStart(2, '0')}Z-${String(i).padStart(6, '0')}`);
    let inFlight = 0;
    let most = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const store = {
      location: 'fake://far/',
      async *list(): AsyncIterable<ObjectInfo> {
        for (const id of ids) yield { key: `snapshots/${id}/manifest.json`, size: 10, modified: new Date() };
      },
      async stat(key: string) {
        return { key, size: 10, modified: new Date() };
      },
      async get() {
        inFlight++;
        most = Math.max(most, inFlight);
        await gate;
        inFlight--;
        return Readable.from([Buffer.from('not json')]);
      },
    } as unknown as Store;
    const listing = listSnapshots(store);
    await expect.poll(() => most).toBe(16);
    release();
    const list = await listing;
    expect(most).toBe(16);
    expect(list.map((s) => s.id)).toEqual([...ids].reverse());
    expect(list.every((s) => !s.complete && /not valid JSON/.test(s.problem ?? ''))).toBe(true);
  });
});
