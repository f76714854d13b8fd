import { z } from 'zod';
import { badInput } from '../../core/errors.js';
import type { ManifestComponent } from '../../core/manifest.js';

/**
 * The manifest's `source` for a mongo component (docs/FORMAT.md). Written by MongoSource, read by the
 * restore and its checks. No secrets: the URI appears only without its password.
 */
const index = z.object({
  name: z.string(),
  key: z.record(z.string(), z.unknown()),
  unique: z.boolean().optional(),
});

const collection = z.object({
  /** Only when not a plain collection: "view", "timeseries". */
  type: z.string().optional(),
  /** Documents in the archive: exactly what a restore puts back. */
  documents: z.number().int().nonnegative(),
  /** The driver's estimatedDocumentCount just before mongodump started (null: the collection appeared since). */
  documents_before_dump: z.number().int().nonnegative().nullable(),
  /** BSON bytes of the documents in the archive. */
  bytes: z.number().int().nonnegative(),
  capped: z.boolean().optional(),
  /** Capped collections: size in bytes and maximum document count (when set). */
  size: z.number().optional(),
  max: z.number().optional(),
  indexes: z.array(index),
});

export const mongoFactsSchema = z.object({
  address: z.string(),
  uri: z.string(),
  database: z.string(),
  server_version: z.string(),
  ferretdb_version: z.string().optional(),
  tool_version: z.string(),
  archive_format: z.string(),
  parallel_collections: z.number(),
  exclude_patterns: z.array(z.string()),
  /** Collections that existed and were left out (analytics, by default). */
  excluded: z.array(z.string()),
  collections: z.record(z.string(), collection),
  total_documents: z.number(),
});

export type MongoFacts = z.infer<typeof mongoFactsSchema>;
export type MongoCollectionFacts = z.infer<typeof collection>;
export type MongoIndexFacts = z.infer<typeof index>;

export function readMongoFacts(entry: ManifestComponent, component: string): MongoFacts {
  const parsed = mongoFactsSchema.safeParse(entry.source);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badInput(
      `the snapshot's manifest entry for ${component} is not a tykdr mongo entry: source.${issue.path.join('.')}: ${issue.message}`,
      'restore it with the tykdr version that wrote it, or by hand with mongorestore --archive (docs/FORMAT.md)',
    );
  }
  return parsed.data;
}
