import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { listSnapshots, resolveSnapshot } from '../../src/core/catalog.js';
import { TykdrError } from '../../src/core/errors.js';
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

describe('resolveSnapshot latest', () => {
  const manifestOf = (id: string) =>
    JSON.stringify({
      format: 'x', id,
    });
  /** A store of three snapshots, newest first: `newest` decides what reading the newest manifest does. */
  function store(newest: 'store-fails' | 'malformed', older: string) {
    const ids = ['20261207T050000Z-000003', older];
    return {
      location: 'fake://far/',
      async *list(): AsyncIterable<ObjectInfo> {
        for (const id of ids) yield { key: `snapshots/${id}/manifest.json`, size: 10, modified: new Date() };
      },
      async stat(key: string) {
        if (newest === 'store-fails' && key.includes(ids[0]!)) throw Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' });
        return { key, size: 10, modified: new Date() };
      },
      async get(key: string) {
        return Readable.from([Buffer.from(key.includes(ids[0]!) ? '{"broken": ' : manifestOf(older))]);
      },
    } as unknown as Store;
  }

  it('a newer manifest the store failed to give is an error, never an older snapshot chosen in silence', async () => {
    const err = await resolveSnapshot(store('store-fails', '20261207T040000Z-000002'), 'latest').then(() => null, (e: unknown) => e as TykdrError);
    expect(err).toBeInstanceOf(TykdrError);
    expect(err!.kind).toBe('storeError');
    expect(err!.message).toMatch(/the manifest of snapshot 20261207T050000Z-000003 in fake:\/\/far\/ could not be read \(connect ECONNRESET\)/);
    expect(err!.fix).toMatch(/--snapshot ID/);
  });

  it('a newer manifest that is malformed is passed over (that snapshot is incomplete), as before', async () => {
    // The older one is malformed for the schema too, so none is complete: the answer is "no complete snapshot", not the store's error.
    const err = await resolveSnapshot(store('malformed', '20261207T040000Z-000002'), 'latest').then(() => null, (e: unknown) => e as TykdrError);
    expect(err!.kind).toBe('badInput');
    expect(err!.message).toMatch(/no complete snapshot in fake:\/\/far\//);
  });

  it('a listing stopped by its signal ends with the abort, not with a verdict', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(resolveSnapshot(store('malformed', '20261207T040000Z-000002'), 'latest', ac.signal)).rejects.toThrow(/abort/i);
  });
});

describe('listSnapshots at scale', () => {
  it('reads many manifests under a caller\'s signal without node\'s listener warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const ids = Array.from({ length: 40 }, (_, i) => `20261207T0600${String(i).padStart(2, '0')}Z-${String(i).padStart(6, '0')}`);
      // As the S3 store's transfers do: a listener on the signal for each request while it runs.
      const watch = async <T>(signal: AbortSignal | undefined, f: () => T): Promise<T> => {
        const l = () => undefined;
        signal?.addEventListener('abort', l);
        await new Promise((r) => setTimeout(r, 5));
        signal?.removeEventListener('abort', l);
        return f();
      };
      const store = {
        location: 'fake://far/',
        async *list(): AsyncIterable<ObjectInfo> {
          for (const id of ids) yield { key: `snapshots/${id}/manifest.json`, size: 10, modified: new Date() };
        },
        stat: (key: string, o?: { signal?: AbortSignal }) => watch(o?.signal, () => ({ key, size: 10, modified: new Date() })),
        get: (_key: string, o?: { signal?: AbortSignal }) => watch(o?.signal, () => Readable.from([Buffer.from('not json')])),
      } as unknown as Store;
      const list = await listSnapshots(store, new AbortController().signal);
      expect(list).toHaveLength(40);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => /MaxListeners/.test(w))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('stops starting reads once its signal aborts, and ends with the abort', async () => {
    const ac = new AbortController();
    let reads = 0;
    const ids = Array.from({ length: 100 }, (_, i) => `20261207T07${String(Math.floor(i / 60)).padStart(2, '0')}${String(i % 60).padStart(2, '0')}Z-${String(i).padStart(6, '0')}`);
    const store = {
      location: 'fake://far/',
      async *list(): AsyncIterable<ObjectInfo> {
        for (const id of ids) yield { key: `snapshots/${id}/manifest.json`, size: 10, modified: new Date() };
      },
      async stat(key: string) {
        if (++reads === 20) ac.abort(new Error('stopped by the test'));
        await new Promise((r) => setTimeout(r, 2));
        return { key, size: 10, modified: new Date() };
      },
      get: async () => Readable.from([Buffer.from('not json')]),
    } as unknown as Store;
    await expect(listSnapshots(store, ac.signal)).rejects.toThrow(/stopped by the test/);
    expect(reads).toBeLessThan(40);
  });
});
