import { z } from 'zod';

/**
 * The manifest: the last object of a snapshot, plain JSON (no secrets, readable without keys).
 * Field names are snake_case; docs/FORMAT.md documents each one. Parsing is lenient about unknown
 * fields (newer tykdr versions may add some) but strict about the ones restore relies on.
 */
export const MANIFEST_FORMAT = 'tykdr-snapshot/1';

const artifact = z.object({
  /** Object name inside the snapshot folder. */
  name: z.string(),
  /** What the plaintext is: rdb, tar, ... */
  format: z.string(),
  compression: z.enum(['zstd', 'gzip']),
  encryption: z.literal('age'),
  plaintext_bytes: z.number().int().nonnegative(),
  stored_bytes: z.number().int().nonnegative(),
  /** SHA-256 (hex) of the stored object: the encrypted bytes exactly as in the store. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Store requests sent again after transient failures (resets, 5xx, throttling) while uploading it. */
  store_retries: z.number().int().nonnegative().optional(),
});

const component = z.object({
  kind: z.string(),
  /** The tykdr.yaml component this artifact belongs to, when it is an extra one (e.g. "pg" for "pg-globals"). */
  config_component: z.string().optional(),
  tier: z.string(),
  objective: z.object({ rto_seconds: z.number(), rpo_seconds: z.number() }),
  /** The point in time the data is consistent at: RPO is measured from here. */
  consistent_at: z.string(),
  started_at: z.string(),
  duration_ms: z.number(),
  artifact,
  /** Facts about the source (redis_version, rdb_version, key counts, file counts...). */
  source: z.record(z.string(), z.unknown()),
});

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  id: z.string(),
  created_at: z.string(),
  completed_at: z.string(),
  tool: z.object({ name: z.literal('tykdr'), version: z.string() }),
  host: z.string(),
  encryption: z.object({
    scheme: z.literal('age-v1'),
    recipients: z.array(z.object({ fingerprint: z.string() })),
    passphrase: z.boolean(),
  }),
  /** Tyk facts that must travel with the Redis data: hash_keys, hash_key_function, secret fingerprint. */
  tyk: z.record(z.string(), z.unknown()).optional(),
  /** Largest difference between the components' consistent points, in ms. */
  consistency_spread_ms: z.number(),
  components: z.record(z.string(), component),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestComponent = z.infer<typeof component>;
export type ManifestArtifact = z.infer<typeof artifact>;

export function serializeManifest(m: Manifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}
