import type { Manifest } from '../../src/core/manifest.js';
import { MANIFEST_FORMAT } from '../../src/core/manifest.js';

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
