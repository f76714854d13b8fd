import { createWriteStream } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../../backends/stores/store.js';
import { createDecryptStream } from '../age/index.js';
import { integrityError, TykdrError } from '../errors.js';
import { artifactKey } from '../layout.js';
import type { Manifest } from '../manifest.js';
import { createDecompressor, Tap } from '../pipeline.js';
import type { DecryptionKeys } from './decryption-keys.js';

export interface StagedArtifact {
  component: string;
  /** The plaintext (RDB file, tar) on local disk, mode 0600. */
  file: string;
  plaintextBytes: number;
  storedBytes: number;
}

/**
 * Downloads one artifact and turns it back into its plaintext in the staging folder, streaming:
 * store -> SHA-256 tap -> age decrypt -> decompress -> file. It resolves only when the SHA-256 and size
 * of the stored bytes match the manifest and age authenticated every chunk; otherwise the staged file
 * is deleted and it rejects with an integrityError. Nothing here touches a restore target.
 */
export async function stageArtifact(opts: {
  store: Store;
  manifest: Manifest;
  component: string;
  dir: string;
  keys: DecryptionKeys;
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
}): Promise<StagedArtifact> {
  const entry = opts.manifest.components[opts.component];
  if (!entry) throw integrityError(`snapshot ${opts.manifest.id} has no component "${opts.component}"`);
  const a = entry.artifact;
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  const file = path.join(opts.dir, `${opts.component}.${a.format}`);
  const stored = new Tap({ sha256: true, onBytes: opts.onBytes });
  const plain = new Tap();
  try {
    const body = await opts.store.get(artifactKey(opts.manifest.id, a.name), { signal: opts.signal });
    await pipeline(
      body,
      stored,
      createDecryptStream({ identities: opts.keys.identities, passphrase: opts.keys.passphrase?.reveal() }),
      createDecompressor(a.compression),
      plain,
      createWriteStream(file, { flags: 'wx', mode: 0o600 }),
      { signal: opts.signal },
    );
  } catch (err) {
    await unlink(file).catch(() => undefined);
    if (err instanceof TykdrError && err.kind === 'integrityError') {
      throw integrityError(`${a.name} in snapshot ${opts.manifest.id}: ${err.message}`, err.fix ?? 'use another snapshot', err);
    }
    if ((err as { code?: string }).code?.startsWith('ZSTD') || (err as { code?: string }).code === 'Z_DATA_ERROR') {
      throw integrityError(`${a.name}: decompression failed (${(err as Error).message})`, 'use another snapshot', err);
    }
    throw err;
  }
  const sha = stored.sha256Hex();
  if (sha !== a.sha256 || stored.bytes !== a.stored_bytes || plain.bytes !== a.plaintext_bytes) {
    await unlink(file).catch(() => undefined);
    throw integrityError(
      `${a.name} in snapshot ${opts.manifest.id} does not match its manifest: sha256 ${sha.slice(0, 16)}… (manifest ${a.sha256.slice(0, 16)}…), ` +
        `${stored.bytes} stored bytes (manifest ${a.stored_bytes}), ${plain.bytes} plaintext bytes (manifest ${a.plaintext_bytes})`,
      'the object was altered or replaced in the store; restore from another snapshot',
    );
  }
  return { component: opts.component, file, plaintextBytes: plain.bytes, storedBytes: stored.bytes };
}
