import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { TykdrError } from '../../src/core/errors.js';
import type { Manifest } from '../../src/core/manifest.js';
import type { DecryptionKeys } from '../../src/core/restore/decryption-keys.js';
import { readArtifact, stageArtifact } from '../../src/core/restore/staging.js';
import { storedArtifact } from '../helpers/manifest-fixture.js';

/**
 * A store that fails the download itself (the object is gone, the store is unreachable) must reject the
 * read with its storeError: before the fix, the decode side's clean-up then destroyed a stream nobody
 * listened on, and the uncaught 'error' event ended the process (exit 1 instead of 4).
 */
describe('reading an artifact when the store fails the download', () => {
  let dir: string;
  let store: LocalStore;
  let keys: DecryptionKeys;
  let manifest: Manifest;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tykdr-staging-'));
    const a = await storedArtifact({ dir: path.join(dir, 'store'), id: '20260101T000000Z-aaaaaa', component: 'config', name: 'config.tar.zst.age', format: 'tar', plaintext: randomBytes(100_000) });
    ({ store, keys, manifest } = a);
    await store.delete(a.key); // the object is gone: `get` rejects
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('readArtifact rejects with the store error, and nothing else is thrown later', async () => {
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const err = await readArtifact({ store, manifest, component: 'config', keys, sink }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TykdrError);
    expect((err as TykdrError).kind).toBe('storeError');
    // An uncaught 'error' event would surface here (vitest fails the run on unhandled errors).
    await new Promise((r) => setTimeout(r, 200));
  });

  it('stageArtifact rejects with the store error and leaves no staged file', async () => {
    const staging = path.join(dir, 'staged');
    const err = await stageArtifact({ store, manifest, component: 'config', dir: staging, keys }).catch((e: unknown) => e);
    expect((err as TykdrError).kind).toBe('storeError');
    expect(await readdir(staging)).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
  });
});
