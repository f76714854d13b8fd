import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { Readable } from 'node:stream';
import { listSnapshots } from '../../src/core/catalog.js';
import { manifestKey } from '../../src/core/layout.js';
import { serializeManifest } from '../../src/core/manifest.js';
import { chooseSnapshot } from '../../src/core/restore/restore.js';
import { useCleanups } from '../helpers/cleanups.js';
import { redisManifest } from '../helpers/manifest-fixture.js';

const { tempDir } = useCleanups();

/**
 * The catalogue tells a damaged manifest (not JSON, malformed, or naming another snapshot: that snapshot cannot be
 * restored as it is) from one written in a newer format (this version cannot read it; nothing is wrong with it) and
 * from a snapshot without a manifest (a backup that did not finish). verify --all fails only on the first.
 */
describe('listSnapshots: damaged manifests', () => {
  it('marks not-JSON and malformed manifests damaged; a newer format and a missing manifest are not', async () => {
    const root = await tempDir('tykdr-catalog-damaged-');
    const put = async (id: string, name: string, body: string) => {
      await mkdir(path.join(root, 'snapshots', id), { recursive: true });
      await writeFile(path.join(root, 'snapshots', id, name), body);
    };
    await put('20261201T000000Z-000001', 'manifest.json', 'not json {');
    await put('20261202T000000Z-000002', 'manifest.json', JSON.stringify({ format: 'tykdr-snapshot/1', id: '20261202T000000Z-000002' }));
    await put('20261203T000000Z-000003', 'manifest.json', JSON.stringify({ format: 'tykdr-snapshot/2', id: '20261203T000000Z-000003' }));
    await put('20261204T000000Z-000004', 'redis.rdb.zst.age', 'x');
    // Not a newer version: an older or garbled one is a damaged manifest.
    await put('20261205T000000Z-000005', 'manifest.json', JSON.stringify({ format: 'tykdr-snapshot/0', id: '20261205T000000Z-000005' }));
    await put('20261206T000000Z-000006', 'manifest.json', JSON.stringify({ format: 'tykdr-snapshot/x', id: '20261206T000000Z-000006' }));
    const byId = new Map((await listSnapshots(new LocalStore(root))).map((s) => [s.id, s]));
    expect(byId.get('20261201T000000Z-000001')).toMatchObject({ complete: false, damaged: true, problem: expect.stringMatching(/not valid JSON/) });
    expect(byId.get('20261202T000000Z-000002')).toMatchObject({ complete: false, damaged: true, problem: expect.stringMatching(/malformed/) });
    const newer = byId.get('20261203T000000Z-000003')!;
    expect(newer).toMatchObject({ complete: false, problem: expect.stringMatching(/format tykdr-snapshot\/2; this tykdr reads tykdr-snapshot\/1/) });
    expect(newer.damaged).toBeUndefined();
    expect(newer.unreadable).toBeUndefined();
    expect(newer.newerFormat).toBe(true);
    expect(byId.get('20261201T000000Z-000001')!.newerFormat).toBeUndefined();
    const unfinished = byId.get('20261204T000000Z-000004')!;
    expect(unfinished).toMatchObject({ complete: false, problem: expect.stringMatching(/no manifest/) });
    expect(unfinished.damaged).toBeUndefined();
    for (const id of ['20261205T000000Z-000005', '20261206T000000Z-000006']) {
      expect(byId.get(id)).toMatchObject({ complete: false, damaged: true, problem: expect.stringMatching(/malformed/) });
      expect(byId.get(id)!.newerFormat).toBeUndefined();
    }
  });
});

describe('choosing the latest snapshot past a damaged one', () => {
  it('passes over a newer damaged manifest and says so (latest and --before), for the restore report', async () => {
    const root = await tempDir('tykdr-catalog-passed-');
    const store = new LocalStore(root);
    const older = '20261205T000000Z-00000a';
    const damaged = '20261206T000000Z-00000b';
    await store.put(manifestKey(older), Readable.from([Buffer.from(serializeManifest(redisManifest(older, '2026-12-05T00:00:00.000Z')))]));
    await store.put(manifestKey(damaged), Readable.from([Buffer.from('not json {')]));
    const passedOver: string[] = [];
    const m = await chooseSnapshot(store, 'latest', undefined, undefined, passedOver);
    expect(m.id).toBe(older);
    expect(passedOver).toEqual([expect.stringMatching(new RegExp(`^snapshot ${damaged}, newer, was passed over: its manifest is damaged \\(manifest of snapshot ${damaged} is not valid JSON\\)`))]);
    const before: string[] = [];
    expect((await chooseSnapshot(store, undefined, new Date('2026-12-07T00:00:00Z'), undefined, before)).id).toBe(older);
    expect(before).toHaveLength(1);
    // Named by id, nothing is passed over.
    const named: string[] = [];
    expect((await chooseSnapshot(store, older, undefined, undefined, named)).id).toBe(older);
    expect(named).toEqual([]);
  });
});

describe('choosing the latest snapshot past one a newer tykdr wrote', () => {
  it('passes over a newer snapshot whose manifest is in a newer format, and says so', async () => {
    const root = await tempDir('tykdr-catalog-newer-');
    const store = new LocalStore(root);
    const older = '20261205T000000Z-00000c';
    const newer = '20261206T000000Z-00000d';
    await store.put(manifestKey(older), Readable.from([Buffer.from(serializeManifest(redisManifest(older, '2026-12-05T00:00:00.000Z')))]));
    await store.put(manifestKey(newer), Readable.from([Buffer.from(JSON.stringify({ format: 'tykdr-snapshot/2', id: newer }))]));
    const passedOver: string[] = [];
    expect((await chooseSnapshot(store, 'latest', undefined, undefined, passedOver)).id).toBe(older);
    expect(passedOver).toEqual([
      `snapshot ${newer}, newer, was passed over: manifest of snapshot ${newer} is in format tykdr-snapshot/2; this tykdr reads tykdr-snapshot/1; restore it with the tykdr version that wrote it`,
    ]);
  });
});
