import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stageArtifact } from '../../src/core/restore/staging.js';
import { storedArtifact } from '../helpers/manifest-fixture.js';

/**
 * The stage opens its file with 'wx' (never over an existing file). When that open fails because the file exists, the
 * file is someone else's: the failed stage must leave it as it was, where it used to remove it with its own partial
 * files. A stage that did open its file and then failed still removes it (staging-store-failure.test.ts and
 * store-full.test.ts).
 */
describe('a stage whose file already exists', () => {
  let dir: string;
  let a: Awaited<ReturnType<typeof storedArtifact>>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tykdr-staging-exists-'));
    a = await storedArtifact({ dir: path.join(dir, 'store'), id: '20260101T000000Z-aaaaaa', component: 'config', name: 'config.tar.zst.age', format: 'tar', plaintext: randomBytes(100_000) });
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fails with EEXIST and leaves the existing file as it was', async () => {
    const staging = path.join(dir, 'staged');
    await mkdir(staging);
    const theirs = path.join(staging, 'config.tar');
    await writeFile(theirs, 'not the stage\'s file');
    const err = await stageArtifact({ store: a.store, manifest: a.manifest, component: 'config', dir: staging, keys: a.keys }).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(await readFile(theirs, 'utf8')).toBe('not the stage\'s file');
  });

  it('stages into an empty folder (the same artifact, so the failure above was the existing file)', async () => {
    const staging = path.join(dir, 'staged-empty');
    const s = await stageArtifact({ store: a.store, manifest: a.manifest, component: 'config', dir: staging, keys: a.keys });
    expect(s.plaintextBytes).toBe(100_000);
    expect(await readdir(staging)).toEqual(['config.tar']);
  });
});
