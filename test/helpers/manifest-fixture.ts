import { Readable } from 'node:stream';
import { LocalStore } from '../../src/backends/stores/local-store.js';
import { generateIdentity, parseIdentity } from '../../src/core/age/keys.js';
import { artifactKey } from '../../src/core/layout.js';
import type { Manifest } from '../../src/core/manifest.js';
import { MANIFEST_FORMAT } from '../../src/core/manifest.js';
import { writeArtifact } from '../../src/core/pipeline.js';
import type { DecryptionKeys } from '../../src/core/restore/decryption-keys.js';

/** A valid manifest of one Redis component (its artifact's bytes are not stored): for catalogue and daemon tests. */
export function redisManifest(id: string, consistentAt: string): Manifest {
  return {
    format: MANIFEST_FORMAT,
    id,
    created_at: consistentAt,
    completed_at: consistentAt,
    tool: { name: 'tykdr', version: '0.1.0' },
    host: 'test',
    encryption: { scheme: 'age-v1', recipients: [{ fingerprint: 'f' }], passphrase: false },
    consistency_spread_ms: 0,
    components: {
      redis: {
        kind: 'redis',
        tier: 'critical',
        objective: { rto_seconds: 60, rpo_seconds: 60 },
        consistent_at: consistentAt,
        started_at: consistentAt,
        duration_ms: 10,
        artifact: { name: 'redis.rdb.zst.age', format: 'rdb', compression: 'zstd', encryption: 'age', plaintext_bytes: 1, stored_bytes: 1, sha256: '0'.repeat(64) },
        source: {},
      },
    },
  };
}

/**
 * One artifact written to a local store in `dir` as a backup writes it (zstd, age to a new identity), with the
 * manifest fields staging reads: for tests of the read and stage paths.
 */
export async function storedArtifact(o: { dir: string; id: string; component: string; name: string; format: string; plaintext: Buffer; level?: number }): Promise<{
  store: LocalStore;
  keys: DecryptionKeys;
  manifest: Manifest;
  key: string;
  storedBytes: number;
}> {
  const id = generateIdentity();
  const store = new LocalStore(o.dir);
  const key = artifactKey(o.id, o.name);
  const w = await writeArtifact({ source: Readable.from([o.plaintext]), store, key, compression: { algorithm: 'zstd', level: o.level ?? 3 }, keys: { recipients: [id.recipient] } });
  const manifest = {
    id: o.id,
    components: {
      [o.component]: { artifact: { name: o.name, format: o.format, compression: 'zstd', encryption: 'age', sha256: w.sha256, stored_bytes: w.storedBytes, plaintext_bytes: w.plaintextBytes } },
    },
  } as unknown as Manifest;
  return { store, keys: { identities: [parseIdentity(id.identity)] }, manifest, key, storedBytes: w.storedBytes };
}
