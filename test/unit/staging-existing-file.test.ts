import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { generateIdentity, parseIdentity } from '../../src/core/age/keys.js';
import { artifactKey } from '../../src/core/layout.js';
import type { Manifest } from '../../src/core/manifest.js';
import { writeArtifact } from '../../src/core/pipeline.js';
import { stageArtifact } from '../../src/core/restore/staging.js';

/**
 * The stage opens its file with 'wx' (never over an existing file). When that open fails because the file exists, the
 * file is someone else's: the failed stage must leave it as it was, where it used to remove it with its own partial
 * files. A stage that did open its file and then failed still removes it (staging-store-failure.test.ts and
 * store-full.test.ts).
 */
describe('a stage whose file already exists', () => {
  let dir: string;
  let store: LocalStore;
  const id = generateIdentity();
  const keys = { identities: [parseIdentity(id.identity)] };
  let manifest: Manifest;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tykdr-staging-exists-'));
    store = new LocalStore(path.join(dir, 'store'));
    const key = artifactKey('20260101T000000Z-aaaaaa', 'config.tar.zst.age');
    const w = await writeArtifact({ source: Readable.from([randomBytes(100_000)]), store, key, compression: { algorithm: 'zstd', level: 3 }, keys: { recipients: [id.recipient] } });
    manifest = {
      id: '20260101T000000Z-aaaaaa',
      components: {
        config: { artifact: { name: 'config.tar.zst.age', format: 'tar', compression: 'zstd', encryption: 'age', sha256: w.sha256, stored_bytes: w.storedBytes, plaintext_bytes: w.plaintextBytes } },
      },
    } as unknown as Manifest;
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fails with EEXIST and leaves the existing file as it was', async () => {
    const staging = path.join(dir, 'staged');
    await mkdir(staging);
    const theirs = path.join(staging, 'config.tar');
    await writeFile(theirs, 'not the stage\'s file');
    const err = await stageArtifact({ store, manifest, component: 'config', dir: staging, keys }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(await readFile(theirs, 'utf8')).toBe('not the stage\'s file');
  });

  it('stages into an empty folder (the same artifact, so the failure above was the existing file)', async () => {
    const staging = path.join(dir, 'staged-empty');
    const s = await stageArtifact({ store, manifest, component: 'config', dir: staging, keys });
    expect(s.plaintextBytes).toBe(100_000);
    expect(await readdir(staging)).toEqual(['config.tar']);
  });
});
